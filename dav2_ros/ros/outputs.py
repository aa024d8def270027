"""What the node publishes for one prediction: metric depth (invalid → NaN in place),
colour at output size, the reused messages of the image outputs and of ``points``, the
metric scale used.

Messages and their data buffers are reused frame after frame. That is safe once
``publish()`` has returned: rclpy converts the Python message into a C message (``data``
copied with one memcpy) and the RMW serialises that into its own history before
``publish()`` returns; with Fast DDS's asynchronous publication the send thread works
from that serialised copy too. ``test/test_ros_message_data.py`` checks it across
processes: each buffer is overwritten right after ``publish()`` and every reader still
gets what was published. One worker thread fills and publishes them.
"""

from __future__ import annotations

import array
from typing import TYPE_CHECKING

import cv2
import numpy as np
from sensor_msgs.msg import Image, LaserScan, PointCloud2
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension

from dav2_ros.geometry import ByteBuffer, CloudPacker, RayCache
from dav2_ros.geometry.laserscan import ScanGeometry, ScanSettings, depth_to_scan, scan_frame_id
from dav2_ros.geometry.lens import LensModel, rays_for
from dav2_ros.ros import conversions
from dav2_ros.scale.source import SCALE_FIELDS, ScaleReading

if TYPE_CHECKING:  # the engines pull in torch; a process that only publishes needs none
    from dav2_ros.engines import Prediction


def metric_depth_m(prediction: Prediction) -> np.ndarray | None:
    """Depth in metres with NaN for invalid pixels, or None when the model is relative.

    In place on ``prediction.values``: the frame's own array (the resize's new array, or
    the engine's output for this frame), which nothing reads before this. Relative
    disparity is never depth (REP 118): ``ScaleSource`` turns it into metres.
    """
    if prediction.depth_type != "metric":
        return None
    depth_m = prediction.values
    if depth_m.dtype != np.float32 or not depth_m.flags.writeable:
        depth_m = depth_m.astype(np.float32)  # a copy we own (an fp16 or read-only output)
    nan_where_invalid(depth_m)
    return depth_m


def inverse_depth(depth_m: np.ndarray) -> np.ndarray:
    """1/depth (1/m), NaN where depth is NaN or 0: a metric model's disparity for ``scale.*``."""
    with np.errstate(divide="ignore"):
        inverse = np.reciprocal(depth_m, dtype=np.float32)
    inverse[~np.isfinite(inverse)] = np.nan
    return inverse


def nan_where_invalid(depth_m: np.ndarray) -> None:
    """Negative and infinite depths → NaN, in place (NaN stays NaN).

    A model's output is almost always all valid: a min and a max (NaN propagates through
    both) prove that in a quarter of the time the mask would take.
    """
    if depth_m.size == 0:
        return
    if depth_m.min() >= 0 and depth_m.max() < np.inf:
        return
    with np.errstate(invalid="ignore"):
        valid = (depth_m >= 0) & (depth_m < np.inf)
    np.copyto(depth_m, np.float32(np.nan), where=~valid)


def rgb_at(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """The camera image resized to the output resolution (area filter when shrinking)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


class ImageOutput:
    """One image topic's message and data buffer, refilled every frame (publish first)."""

    def __init__(self) -> None:
        self.msg = Image()
        self.buffer = ByteBuffer()

    def fill(self, array: np.ndarray, encoding: str, header: Header) -> Image:
        return conversions.fill_image(self.msg, array, encoding, header, self.buffer)


class CloudOutput:
    """``points``: rays per lens (camera_info) and stride (``RayCache``), records written
    straight into one reused buffer (``CloudPacker``), one ``PointCloud2`` refilled every
    frame."""

    def __init__(self, stride: int, max_range_m: float) -> None:
        self.stride, self.max_range_m = stride, max_range_m
        self.rays = RayCache()
        self.packer = CloudPacker()
        self.msg = PointCloud2()

    def fill(
        self, depth_m: np.ndarray, lens: LensModel, rgb: np.ndarray | None, header: Header
    ) -> PointCloud2:
        """The depth_image_proc-style organised cloud of ``depth_m`` (``lens``: its camera,
        sized as ``depth_m``; ``rgb``: colours at its size, or None for xyz only)."""
        rays = self.rays.rays(rays_for(lens, self.stride))
        cloud = self.packer.pack(depth_m, rays, self.stride, self.max_range_m, rgb)
        return conversions.fill_cloud(self.msg, cloud, header)


class ScanOutput:
    """``scan``: the LaserScan of the depth's rows around the optical centre; the pixel →
    bin geometry is computed once per lens (camera_info), one message refilled per frame."""

    def __init__(self, settings: ScanSettings) -> None:
        self.settings = settings
        self._lens: LensModel | None = None
        self._geometry: ScanGeometry | None = None
        self.msg = LaserScan()

    def fill(self, depth_m: np.ndarray, lens: LensModel, header: Header) -> LaserScan:
        """The scan of ``depth_m`` (metres, NaN invalid; ``lens`` sized as it), stamped
        like the depth, in ``scan.output_frame`` (default: the depth's frame without
        ``_optical``). Raises ``ScanHeightError`` when ``scan.height`` does not fit the
        image."""
        if self._geometry is None or lens != self._lens:
            self._geometry = ScanGeometry.for_lens(lens, self.settings.height_px)
            self._lens = lens
        scan = depth_to_scan(depth_m, self._geometry, self.settings)
        msg = self.msg
        msg.header.stamp = header.stamp
        msg.header.frame_id = scan_frame_id(header.frame_id, self.settings.output_frame)
        msg.angle_min, msg.angle_max = scan.angle_min, scan.angle_max
        msg.angle_increment, msg.time_increment = scan.angle_increment, scan.time_increment
        msg.scan_time = scan.scan_time
        msg.range_min, msg.range_max = scan.range_min, scan.range_max
        # float32 sequence: an array.array takes the bytes as they are (no per-value check)
        msg.ranges = array.array("f", scan.ranges.astype(np.float32, copy=False).tobytes())
        return msg


def scale_msg(reading: ScaleReading) -> Float64MultiArray:
    """``depth/scale``: the fields of ``SCALE_FIELDS``, named in ``layout.dim[0].label``."""
    values = reading.values()
    msg = Float64MultiArray(data=values)
    msg.layout.dim = [
        MultiArrayDimension(label=",".join(SCALE_FIELDS), size=len(values), stride=len(values))
    ]
    return msg
