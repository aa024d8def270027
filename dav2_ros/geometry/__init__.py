"""ROS-free camera geometry: intrinsics, rays, back-projection (Open3D reference and the
packer that writes records directly), PointCloud2 layout, PLY files (Open3D)."""

from dav2_ros.geometry.backproject import backproject_organised, limit_range
from dav2_ros.geometry.byte_buffer import ByteBuffer
from dav2_ros.geometry.cloud_packer import CloudPacker
from dav2_ros.geometry.intrinsics import CameraIntrinsics, IntrinsicsError
from dav2_ros.geometry.ply import write_ply
from dav2_ros.geometry.pointcloud import (
    FLOAT32,
    PackedCloud,
    PointField,
    point_fields,
)
from dav2_ros.geometry.rays import PinholeRays, RayCache, RayGrid, RaySource

__all__ = [
    "FLOAT32",
    "ByteBuffer",
    "CameraIntrinsics",
    "CloudPacker",
    "IntrinsicsError",
    "PackedCloud",
    "PinholeRays",
    "PointField",
    "RayCache",
    "RayGrid",
    "RaySource",
    "backproject_organised",
    "limit_range",
    "point_fields",
    "write_ply",
]
