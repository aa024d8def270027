"""Per-pixel viewing rays (x/z, y/z) of a depth grid, computed once per camera and reused.

A point at depth Z (metres along the optical axis) on the ray of pixel (u, v) is
(X, Y, Z) = (x_over_z[v, u] * Z, y_over_z[v, u] * Z, Z). Where the rays come from is a
``RaySource``: ``PinholeRays`` (K of a camera_info, the depth grid's size and stride) is
the only one today; undistorted rays of a distorted camera (plumb_bob, equidistant...)
are another source with the same ``rays()``, and the packer never needs to know.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dav2_ros.geometry.intrinsics import CameraIntrinsics, IntrinsicsError


@dataclass(frozen=True, eq=False)  # arrays: compared and hashed by identity
class RayGrid:
    """x/z and y/z of every point of a (height x width) grid, float32, read-only."""

    x_over_z: np.ndarray
    y_over_z: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.x_over_z.shape


class RaySource(Protocol):
    """Something that knows the rays of one grid; equal sources have equal rays.

    Sources must be hashable and compare by value: that is the cache key.
    """

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(height, width) of the grid the rays are for."""
        ...

    def rays(self) -> RayGrid:
        """Compute the rays (the expensive part, done once per source)."""
        ...


@dataclass(frozen=True)
class PinholeRays:
    """Rays of ``depth[::stride, ::stride]`` for a pinhole camera (no distortion).

    ``intrinsics`` describe the full depth image. The arithmetic is Open3D's
    ``create_vertex_map`` in float32 on the subsampled intrinsics (``(j - cx') / fx'``),
    so the points equal Open3D's within float32 rounding (the reference of the tests).
    """

    intrinsics: CameraIntrinsics
    stride: int = 1

    def __post_init__(self) -> None:
        if not self.intrinsics.is_calibrated:
            raise IntrinsicsError(
                f"camera is not calibrated (fx={self.intrinsics.fx}, fy={self.intrinsics.fy})"
            )
        if self.stride < 1:
            raise IntrinsicsError(f"stride must be >= 1, got {self.stride}")

    @property
    def grid_shape(self) -> tuple[int, int]:
        grid = self.intrinsics.subsampled(self.stride)
        return grid.height, grid.width

    def rays(self) -> RayGrid:
        grid = self.intrinsics.subsampled(self.stride)
        f32 = np.float32
        cols = (np.arange(grid.width, dtype=f32) - f32(grid.cx)) / f32(grid.fx)
        rows = (np.arange(grid.height, dtype=f32) - f32(grid.cy)) / f32(grid.fy)
        # Full grids (not broadcast views): the packer's multiply then streams both operands.
        x_over_z = np.ascontiguousarray(np.broadcast_to(cols, (grid.height, grid.width)))
        y_over_z = np.ascontiguousarray(np.broadcast_to(rows[:, None], (grid.height, grid.width)))
        x_over_z.flags.writeable = False
        y_over_z.flags.writeable = False
        return RayGrid(x_over_z, y_over_z)


class RayCache:
    """The rays of the last few sources (one per camera and stride in practice)."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._grids: OrderedDict[Hashable, RayGrid] = OrderedDict()
        self.computed = 0  # how many times rays were actually computed (a cache miss)

    def rays(self, source: RaySource) -> RayGrid:
        grid = self._grids.get(source)
        if grid is None:
            grid = source.rays()
            if grid.shape != tuple(source.grid_shape):
                raise ValueError(f"{source!r} made rays of shape {grid.shape}")
            self.computed += 1
            self._grids[source] = grid
            while len(self._grids) > self.capacity:
                self._grids.popitem(last=False)
        else:
            self._grids.move_to_end(source)
        return grid
