"""PointCloud2 layout of depth_image_proc and numpy packing of organised clouds (no ROS).

xyz: fields x, y, z FLOAT32 at offsets 0, 4, 8, point_step 16.
xyz+rgb: the same plus ``rgb`` (0x00RRGGBB reinterpreted as FLOAT32) at offset 16,
point_step 32, as depth_image_proc's ``point_cloud_xyzrgb`` writes it.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass

import numpy as np

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


@dataclass(frozen=True)
class PointField:
    name: str
    offset: int
    datatype: int
    count: int = 1


@dataclass(frozen=True)
class PackedCloud:
    """Everything a PointCloud2 needs apart from its header."""

    height: int
    width: int
    fields: tuple[PointField, ...]
    point_step: int
    row_step: int
    data: bytes | array.array  # array.array('B'): a reused buffer (geometry.cloud_packer)
    is_bigendian: bool
    is_dense: bool = False  # organised clouds carry NaN points


def point_fields(with_rgb: bool) -> tuple[tuple[PointField, ...], int]:
    """(fields, point_step) of the depth_image_proc layout."""
    xyz = (PointField("x", 0, FLOAT32), PointField("y", 4, FLOAT32), PointField("z", 8, FLOAT32))
    if with_rgb:
        return (*xyz, PointField("rgb", 16, FLOAT32)), 32
    return xyz, 16


def pack_organised_cloud(xyz_m: np.ndarray, rgb: np.ndarray | None = None) -> PackedCloud:
    """HxWx3 float32 points (+ HxWx3 uint8 RGB) → bytes in the layout above."""
    if xyz_m.ndim != 3 or xyz_m.shape[2] != 3:
        raise ValueError(f"expected HxWx3 points, got shape {xyz_m.shape}")
    height, width = xyz_m.shape[:2]
    if rgb is not None and rgb.shape != (height, width, 3):
        raise ValueError(f"colours must be {height}x{width}x3 to match the points, got {rgb.shape}")
    fields, point_step = point_fields(rgb is not None)
    # One float32 record per point: point_step / 4 slots; unused padding stays 0.
    records = np.zeros((height, width, point_step // 4), dtype=np.float32)
    records[:, :, :3] = xyz_m
    if rgb is not None:
        # 0x00RRGGBB as a native uint32: write the bytes directly (5x faster than shifts).
        rgb_bytes = records.view(np.uint8)[:, :, 16:20]
        if sys.byteorder == "little":
            rgb_bytes[:, :, :3] = rgb[:, :, ::-1]  # B, G, R, 0
        else:
            rgb_bytes[:, :, 1:] = rgb  # 0, R, G, B
    return organised_cloud_of(height, width, rgb is not None, records.tobytes())


def organised_cloud_of(
    height: int, width: int, with_rgb: bool, data: bytes | array.array
) -> PackedCloud:
    """A ``PackedCloud`` of ``data`` already in the layout above (native byte order)."""
    fields, point_step = point_fields(with_rgb)
    return PackedCloud(
        height=height,
        width=width,
        fields=fields,
        point_step=point_step,
        row_step=point_step * width,
        data=data,
        is_bigendian=sys.byteorder == "big",
    )
