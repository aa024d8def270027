"""ROS-free camera geometry: intrinsics, back-projection (Open3D), PointCloud2 packing,
PLY files (Open3D)."""

from dav2_ros.geometry.backproject import backproject_organised, limit_range
from dav2_ros.geometry.intrinsics import CameraIntrinsics, IntrinsicsError
from dav2_ros.geometry.ply import write_ply
from dav2_ros.geometry.pointcloud import (
    FLOAT32,
    PackedCloud,
    PointField,
    pack_organised_cloud,
    point_fields,
)

__all__ = [
    "FLOAT32",
    "CameraIntrinsics",
    "IntrinsicsError",
    "PackedCloud",
    "PointField",
    "backproject_organised",
    "limit_range",
    "pack_organised_cloud",
    "point_fields",
    "write_ply",
]
