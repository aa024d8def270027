"""What the node publishes for one prediction, as pure functions the node calls: metric
depth, colour at output size, the point cloud (``organised_cloud``: depth + intrinsics +
colour → the bytes of a PointCloud2), the metric scale used."""

from __future__ import annotations

import cv2
import numpy as np
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from dav2_ros.engines import Prediction
from dav2_ros.geometry import (
    CameraIntrinsics,
    PackedCloud,
    backproject_organised,
    limit_range,
    pack_organised_cloud,
)
from dav2_ros.scale.source import SCALE_FIELDS, ScaleReading


def metric_depth_m(prediction: Prediction) -> np.ndarray | None:
    """Depth in metres with NaN for invalid pixels, or None when the model is relative.

    Relative disparity is never depth (REP 118): ``ScaleSource`` turns it into metres.
    """
    if prediction.depth_type != "metric":
        return None
    depth_m = np.asarray(prediction.values, dtype=np.float32)
    invalid = ~np.isfinite(depth_m) | (depth_m < 0)
    if invalid.any():
        depth_m = depth_m.copy()
        depth_m[invalid] = np.nan
    return depth_m


def rgb_at(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """The camera image resized to the output resolution (area filter when shrinking)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def organised_cloud(
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    stride: int,
    max_range_m: float,
    rgb: np.ndarray | None,
) -> PackedCloud:
    """depth_image_proc-style organised cloud of ``depth_m`` (intrinsics at its size)."""
    xyz_m = backproject_organised(limit_range(depth_m, max_range_m), intrinsics, stride)
    colours = None if rgb is None else np.ascontiguousarray(rgb[::stride, ::stride])
    return pack_organised_cloud(xyz_m, colours)


def scale_msg(reading: ScaleReading) -> Float64MultiArray:
    """``depth/scale``: the fields of ``SCALE_FIELDS``, named in ``layout.dim[0].label``."""
    values = reading.values()
    msg = Float64MultiArray(data=values)
    msg.layout.dim = [
        MultiArrayDimension(label=",".join(SCALE_FIELDS), size=len(values), stride=len(values))
    ]
    return msg
