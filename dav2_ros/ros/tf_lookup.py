"""Cloud-to-camera transforms from a TF2 buffer, for the metric scale (ROS installs only:
``tf2_ros`` has no wheel here, so this is not exercised by the tests)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dav2_ros.scale.source import TransformLookup
from dav2_ros.scale.sparse import transform_from_quaternion


def tf_lookup(buffer: Any) -> TransformLookup:
    """``lookup(camera_frame, cloud_frame, stamp_s)`` → 4×4 T_camera_from_cloud from
    ``buffer`` (a ``tf2_ros.Buffer`` the node keeps filled); raises what TF2 raises."""
    from rclpy.time import Time

    def lookup(camera_frame: str, cloud_frame: str, stamp_s: float) -> np.ndarray:
        when = Time(nanoseconds=round(stamp_s * 1e9))
        stamped = buffer.lookup_transform(camera_frame, cloud_frame, when)
        t, q = stamped.transform.translation, stamped.transform.rotation
        return transform_from_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])

    return lookup
