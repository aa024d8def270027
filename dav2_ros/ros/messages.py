"""Outgoing messages built from numpy arrays (depth, RGB, point clouds, camera info)."""

from __future__ import annotations

import sys

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from dav2_ros.geometry import CameraIntrinsics, PackedCloud


def float_image_msg(header: Header, values: np.ndarray) -> Image:
    """HxW float32 → ``32FC1`` Image with ``header`` (depth in metres, or disparity)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    height, width = values.shape
    return Image(
        header=header,
        height=height,
        width=width,
        encoding="32FC1",
        is_bigendian=sys.byteorder == "big",
        step=width * 4,
        data=values.tobytes(),
    )


def rgb_image_msg(header: Header, rgb: np.ndarray) -> Image:
    """HxWx3 uint8 → ``rgb8`` Image."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    return Image(
        header=header, height=height, width=width, encoding="rgb8", step=width * 3,
        data=rgb.tobytes(),
    )  # fmt: skip


def pointcloud_msg(header: Header, cloud: PackedCloud) -> PointCloud2:
    fields = [
        PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
        for f in cloud.fields
    ]
    return PointCloud2(
        header=header,
        height=cloud.height,
        width=cloud.width,
        fields=fields,
        is_bigendian=cloud.is_bigendian,
        point_step=cloud.point_step,
        row_step=cloud.row_step,
        data=cloud.data,
        is_dense=cloud.is_dense,
    )


def intrinsics_of(info: CameraInfo) -> CameraIntrinsics:
    return CameraIntrinsics.from_k(info.k, info.width, info.height)


def scaled_camera_info(info: CameraInfo, header: Header, width: int, height: int) -> CameraInfo:
    """``info`` for an image ``width`` x ``height`` of the same view, stamped with ``header``.

    K, P (fx, cx, Tx and fy, cy, Ty rows) and the ROI scale like image_proc's resize.
    """
    sx, sy = intrinsics_of(info).scale_factors(width, height)
    k = np.array(info.k, dtype=np.float64).reshape(3, 3)
    k[0] *= sx
    k[1] *= sy
    p = np.array(info.p, dtype=np.float64).reshape(3, 4)
    p[0] *= sx
    p[1] *= sy
    scaled = CameraInfo(
        header=header,
        height=height,
        width=width,
        distortion_model=info.distortion_model,
        d=list(info.d),
        k=k.reshape(-1).tolist(),
        r=list(info.r),
        p=p.reshape(-1).tolist(),
        binning_x=info.binning_x,
        binning_y=info.binning_y,
    )
    roi = info.roi
    scaled.roi.x_offset = round(roi.x_offset * sx)
    scaled.roi.y_offset = round(roi.y_offset * sy)
    scaled.roi.width = round(roi.width * sx)
    scaled.roi.height = round(roi.height * sy)
    scaled.roi.do_rectify = roi.do_rectify
    return scaled
