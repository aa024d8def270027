"""PointCloud2 layout of depth_image_proc: fields, point step, a packed cloud (no ROS).

xyz: fields x, y, z FLOAT32 at offsets 0, 4, 8, point_step 16.
xyz+rgb: the same plus ``rgb`` (0x00RRGGBB reinterpreted as FLOAT32) at offset 16,
point_step 32, as depth_image_proc's ``point_cloud_xyzrgb`` writes it.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass

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
    data: array.array  # array.array('B'): the packer's reused buffer (geometry.cloud_packer)
    is_bigendian: bool
    is_dense: bool = False  # organised clouds carry NaN points


def point_fields(with_rgb: bool) -> tuple[tuple[PointField, ...], int]:
    """(fields, point_step) of the depth_image_proc layout."""
    xyz = (PointField("x", 0, FLOAT32), PointField("y", 4, FLOAT32), PointField("z", 8, FLOAT32))
    if with_rgb:
        return (*xyz, PointField("rgb", 16, FLOAT32)), 32
    return xyz, 16


def organised_cloud_of(height: int, width: int, with_rgb: bool, data: array.array) -> PackedCloud:
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
