"""Organised point clouds written straight into one reused record buffer (no ROS).

Back-projection, range limit and colour go directly into the records of the
depth_image_proc layout (``pointcloud.point_fields``): no HxWx3 point array, no
``tobytes``, no per-frame allocation. The buffer is a ``WireBuffer``, so the message
takes it without a copy (``dav2_ros.wire.fill_pointcloud2``). Rays come from a
``RayCache`` (per camera_info, resolution and stride). Open3D's ``backproject_organised``
is the reference the tests hold this to: same NaN pattern, values within 1e-6 relative.
"""

from __future__ import annotations

import sys

import numpy as np

from dav2_ros.geometry.pointcloud import PackedCloud, point_fields
from dav2_ros.geometry.rays import RayGrid
from dav2_ros.wire import WireBuffer

# 0x00RRGGBB as a native uint32 at byte 16 of a record: which byte holds which colour.
_RGB_BYTES = slice(16, 19) if sys.byteorder == "little" else slice(17, 20)
_RGB_ORDER = slice(None, None, -1) if sys.byteorder == "little" else slice(None)  # B,G,R


class CloudPacker:
    """Packs each frame's cloud into the same buffer: the previous cloud is overwritten.

    Publish (or copy) a returned cloud before packing the next one.
    """

    def __init__(self) -> None:
        self.buffer = WireBuffer()
        self._layout: tuple[int, int, int] | None = None

    def pack(
        self,
        depth_m: np.ndarray,
        rays: RayGrid,
        stride: int = 1,
        max_range_m: float = 0.0,
        rgb: np.ndarray | None = None,
    ) -> PackedCloud:
        """HxW metres (+ HxWx3 uint8 RGB of the same size) → organised cloud of the grid
        ``[::stride, ::stride]``; ``rays`` must be that grid's. Depth beyond
        ``max_range_m`` (> 0) becomes a NaN point, as do NaN depths."""
        if depth_m.ndim != 2:
            raise ValueError(f"expected an HxW depth image, got shape {depth_m.shape}")
        grid_depth = depth_m[::stride, ::stride]
        height, width = grid_depth.shape
        if rays.shape != (height, width):
            raise ValueError(
                f"rays are for a {rays.shape[1]}x{rays.shape[0]} grid but the depth image "
                f"{depth_m.shape[1]}x{depth_m.shape[0]} at stride {stride} is {width}x{height}"
            )
        if rgb is not None and rgb.shape != (*depth_m.shape, 3):
            raise ValueError(
                f"colours must be {depth_m.shape[0]}x{depth_m.shape[1]}x3 to match the depth "
                f"image, got {rgb.shape}"
            )
        fields, point_step = point_fields(rgb is not None)
        if self._layout != (height, width, point_step):  # padding must start out zero
            self.buffer, self._layout = WireBuffer(), (height, width, point_step)
        records = self.buffer.view((height, width, point_step // 4), np.float32)
        z = records[:, :, 2]
        np.copyto(z, grid_depth, casting="same_kind")
        if max_range_m > 0:
            with np.errstate(invalid="ignore"):
                np.copyto(z, np.float32(np.nan), where=z > max_range_m)
        np.multiply(rays.x_over_z, z, out=records[:, :, 0])  # NaN depth → NaN x, y
        np.multiply(rays.y_over_z, z, out=records[:, :, 1])
        if rgb is not None:
            records.view(np.uint8)[:, :, _RGB_BYTES] = rgb[::stride, ::stride, _RGB_ORDER]
        return PackedCloud(
            height=height,
            width=width,
            fields=fields,
            point_step=point_step,
            row_step=point_step * width,
            data=self.buffer.data,
            is_bigendian=sys.byteorder == "big",
        )
