"""The depth node's per-frame path before issue 13 (main at 95cfca8), frozen as the
baseline of ``bench/node_hot_path.py``: the four-neighbour resize, invalid → NaN on a
copy, ``tobytes`` + rclpy's ``data`` setter for the depth image, Open3D's vertex map +
the HxWx3 point array + ``pack_organised_cloud`` + ``tobytes`` + the setter for the cloud.
Not used by the package; only here to be measured against."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def resize_output(prediction: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear, align_corners=True: each output pixel from its four source neighbours."""
    src_h, src_w = prediction.shape

    def coords(out_size: int, in_size: int) -> np.ndarray:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return np.arange(out_size, dtype=np.float64) * scale

    ys, xs = coords(height, src_h), coords(width, src_w)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, src_h - 1), np.minimum(x0 + 1, src_w - 1)
    wy = (ys - y0).astype(np.float32)[:, None]
    wx = (xs - x0).astype(np.float32)[None, :]
    pred = prediction.astype(np.float32, copy=False)
    top = pred[y0][:, x0] * (1 - wx) + pred[y0][:, x1] * wx
    bottom = pred[y1][:, x0] * (1 - wx) + pred[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def metric_depth_m(values: np.ndarray) -> np.ndarray:
    depth_m = np.asarray(values, dtype=np.float32)
    invalid = ~np.isfinite(depth_m) | (depth_m < 0)
    if invalid.any():
        depth_m = depth_m.copy()
        depth_m[invalid] = np.nan
    return depth_m


def depth_image(depth_m: np.ndarray, header: Any) -> Any:
    from sensor_msgs.msg import Image

    pixels = np.ascontiguousarray(depth_m, dtype=np.float32)
    msg = Image(header=header, height=pixels.shape[0], width=pixels.shape[1], encoding="32FC1")
    msg.is_bigendian = sys.byteorder == "big"
    msg.step = pixels.strides[0]
    msg.data = pixels.tobytes()  # a copy, then the setter's copy
    return msg


def cloud_msg(depth_m: np.ndarray, info: Any, stride: int, max_range_m: float, rgb, header):
    from sensor_msgs.msg import PointCloud2, PointField

    from dav2_ros.geometry import backproject_organised, limit_range, point_fields
    from dav2_ros.ros.camera_info import intrinsics_of

    xyz_m = backproject_organised(limit_range(depth_m, max_range_m), intrinsics_of(info), stride)
    colours = None if rgb is None else np.ascontiguousarray(rgb[::stride, ::stride])
    height, width = xyz_m.shape[:2]
    fields, point_step = point_fields(colours is not None)
    records = np.zeros((height, width, point_step // 4), dtype=np.float32)
    records[:, :, :3] = xyz_m
    if colours is not None:
        rgb_bytes = records.view(np.uint8)[:, :, 16:20]
        if sys.byteorder == "little":
            rgb_bytes[:, :, :3] = colours[:, :, ::-1]
        else:
            rgb_bytes[:, :, 1:] = colours
    msg = PointCloud2(header=header, height=height, width=width, is_dense=False)
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in fields]  # fmt: skip
    msg.is_bigendian = sys.byteorder == "big"
    msg.point_step, msg.row_step = point_step, point_step * width
    msg.data = records.tobytes()
    return msg


def old_path(
    frame: Any, publishers: dict[str, Any], color: bool, stride: int, max_range_m: float
) -> Callable[[], dict[str, float]]:
    """One frame of the old node minus the engine: laps named as the node names them."""
    from std_msgs.msg import Header

    from dav2_ros.ros.camera_info import scaled_camera_info
    from dav2_ros.ros.conversions import image_to_rgb
    from dav2_ros.ros.outputs import rgb_at

    def run() -> dict[str, float]:
        laps: dict[str, float] = {}
        last = [time.perf_counter()]

        def lap(stage: str) -> None:
            now = time.perf_counter()
            laps[stage] = (now - last[0]) * 1e3
            last[0] = now

        def send(topic: str, msg: Any) -> None:
            lap(f"{topic} build")
            publishers[topic].publish(msg)
            lap(f"{topic} publish")

        rgb = image_to_rgb(frame.image)
        lap("decode")
        values = resize_output(frame.network_output, frame.height, frame.width)
        lap("postprocess")
        depth_m = metric_depth_m(values)
        lap("metric")
        header = Header(stamp=frame.image.header.stamp, frame_id=frame.image.header.frame_id)
        send("depth", depth_image(depth_m, header))
        info = scaled_camera_info(frame.info, header, frame.width, frame.height)
        send("depth/camera_info", info)
        colours = rgb_at(rgb, frame.height, frame.width) if color else None
        send("points", cloud_msg(depth_m, info, stride, max_range_m, colours, header))
        return laps

    return run
