"""Pinhole intrinsics from a CameraInfo-style K (3x3) and image size, and their scaling.

Scaling follows image_proc's resize node: every pixel quantity (fx, cx, ROI x/width)
is multiplied by ``new_width / width``, every y quantity by ``new_height / height``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class IntrinsicsError(ValueError):
    """Intrinsics that cannot describe the image they came with."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """fx, fy, cx, cy in pixels of an image ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_k(cls, k: Sequence[float] | np.ndarray, width: int, height: int) -> CameraIntrinsics:
        """From the row-major 3x3 K of a CameraInfo (9 numbers) and its image size."""
        k_matrix = np.asarray(k, dtype=np.float64).reshape(-1)
        if k_matrix.size != 9:
            raise IntrinsicsError(f"K must have 9 elements (row-major 3x3), got {k_matrix.size}")
        if width <= 0 or height <= 0:
            raise IntrinsicsError(f"image size must be positive, got {width}x{height}")
        return cls(
            fx=float(k_matrix[0]),
            fy=float(k_matrix[4]),
            cx=float(k_matrix[2]),
            cy=float(k_matrix[5]),
            width=int(width),
            height=int(height),
        )

    @property
    def is_calibrated(self) -> bool:
        """CameraInfo convention: ``K[0] == 0`` means uncalibrated; also reject non-finite."""
        values = (self.fx, self.fy, self.cx, self.cy)
        return bool(np.all(np.isfinite(values))) and self.fx > 0 and self.fy > 0

    def scale_factors(self, width: int, height: int) -> tuple[float, float]:
        """(sx, sy) that map this image's pixels onto an image ``width`` x ``height``."""
        if width <= 0 or height <= 0:
            raise IntrinsicsError(f"target size must be positive, got {width}x{height}")
        return width / self.width, height / self.height

    def scaled_to(self, width: int, height: int) -> CameraIntrinsics:
        """The same camera seen at another resolution (same field of view)."""
        sx, sy = self.scale_factors(width, height)
        return CameraIntrinsics(
            self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height)
        )

    def subsampled(self, stride: int) -> CameraIntrinsics:
        """Intrinsics of the grid ``image[::stride, ::stride]``.

        Pixel j of the grid is pixel ``stride*j`` of the image, so
        ``(stride*j - cx) / fx == (j - cx/stride) / (fx/stride)``: exact, no resampling.
        """
        if stride < 1:
            raise IntrinsicsError(f"stride must be >= 1, got {stride}")
        return CameraIntrinsics(
            self.fx / stride,
            self.fy / stride,
            self.cx / stride,
            self.cy / stride,
            -(-self.width // stride),
            -(-self.height // stride),
        )

    def k_matrix(self) -> np.ndarray:
        """3x3 float64 K."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )
