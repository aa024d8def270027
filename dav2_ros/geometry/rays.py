"""Per-pixel viewing rays (x/z, y/z) of a depth grid.

A point at depth Z (metres along the optical axis, REP 118) seen at grid pixel (i, j)
is ``(x_over_z[i, j] * Z, y_over_z[i, j] * Z, Z)``. Ray sources (pinhole K, or a lens
with distortion: ``geometry.lens.LensRays``) compute a ``RayGrid`` once per camera; the
point-cloud packer and the scan only multiply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)  # arrays: compared and hashed by identity
class RayGrid:
    """x/z and y/z of every point of a (height x width) grid, float32, read-only.

    NaN marks a pixel no ray belongs to (outside the lens model's invertible field).
    """

    x_over_z: np.ndarray
    y_over_z: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.x_over_z.shape
