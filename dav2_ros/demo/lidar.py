"""The demo's LiDAR: ground truth sampled on a multi-beam scan pattern (no ROS).

A VLP-16-like sensor at the camera's optical centre, axes aligned with it: ``beams``
lasers at elevations spread evenly over ``vfov_deg``, fired every ``azimuth_step_deg``.
Each beam that lands in the image reads the ground-truth range at its pixel, plus
Gaussian range noise and, for a few beams, a gross outlier (a multipath or dust
return), and is written as z-depth into a 32FC1 image registered to the camera, NaN
elsewhere: what a LiDAR projected into the camera gives ``scale.mode: sparse``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A gross outlier reads the true range times a factor drawn from this range.
OUTLIER_FACTOR = (0.3, 3.0)
MIN_RANGE_M = 0.05  # noise never makes a return negative


@dataclass(frozen=True)
class BeamPattern:
    """Scan pattern and error model of the simulated LiDAR."""

    beams: int = 16
    vfov_deg: float = 30.0  # elevations from -vfov/2 (down) to +vfov/2 (up)
    azimuth_step_deg: float = 0.4
    range_noise_m: float = 0.03  # σ of the Gaussian range error
    outlier_ratio: float = 0.01  # share of returns that are gross outliers

    def __post_init__(self) -> None:
        if self.beams < 1 or not 0 <= self.vfov_deg < 180 or self.azimuth_step_deg <= 0:
            raise ValueError(
                f"a beam pattern needs beams >= 1, 0 <= vfov_deg < 180 and azimuth_step_deg "
                f"> 0, got {self.beams}, {self.vfov_deg}, {self.azimuth_step_deg}"
            )
        if self.range_noise_m < 0 or not 0 <= self.outlier_ratio <= 1:
            raise ValueError(
                f"range_noise_m must be >= 0 and outlier_ratio in [0, 1], got "
                f"{self.range_noise_m}, {self.outlier_ratio}"
            )

    def elevations_rad(self) -> np.ndarray:
        """Beam elevations, bottom to top (positive = up, against the optical y axis)."""
        if self.beams == 1:
            return np.zeros(1)
        return np.radians(np.linspace(-self.vfov_deg / 2, self.vfov_deg / 2, self.beams))


@dataclass(frozen=True)
class BeamPixels:
    """Where the pattern's returns land in one camera: one pixel per return."""

    rows: np.ndarray  # int64
    cols: np.ndarray  # int64
    z_per_range: np.ndarray  # optical z of the unit ray: z-depth = range · this
    beam: np.ndarray  # index of the beam (elevation) of each return
    height: int
    width: int


def beam_pixels(pattern: BeamPattern, K: np.ndarray, height: int, width: int) -> BeamPixels:
    """Project every beam direction of ``pattern`` into a ``height``×``width`` camera.

    Rays are unit vectors in the optical frame (x right, y down, z forward); those in
    front of the camera that land inside the image are kept, one per pixel.
    """
    K = np.asarray(K, dtype=np.float64)
    elevation = pattern.elevations_rad()
    azimuth = np.radians(np.arange(-90.0, 90.0, pattern.azimuth_step_deg))
    el, az = np.meshgrid(elevation, azimuth, indexing="ij")
    beam = np.broadcast_to(np.arange(elevation.size)[:, None], el.shape)
    rays = np.stack([np.cos(el) * np.sin(az), -np.sin(el), np.cos(el) * np.cos(az)], axis=-1)
    rays, beam = rays.reshape(-1, 3), beam.reshape(-1)
    rays, beam = rays[rays[:, 2] > 1e-6], beam[rays[:, 2] > 1e-6]
    projected = rays @ K.T
    cols = np.rint(projected[:, 0] / projected[:, 2] - 0.5).astype(np.int64)  # pixel centres
    rows = np.rint(projected[:, 1] / projected[:, 2] - 0.5).astype(np.int64)  # at +0.5
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    rows, cols, rays, beam = rows[inside], cols[inside], rays[inside], beam[inside]
    _, first = np.unique(rows * width + cols, return_index=True)
    return BeamPixels(rows[first], cols[first], rays[first, 2], beam[first], height, width)


def sparse_depth_image(
    gt_depth_m: np.ndarray,
    pixels: BeamPixels,
    pattern: BeamPattern,
    rng: np.random.Generator,
) -> np.ndarray:
    """A 32FC1 z-depth image (m) with the LiDAR's returns at their pixels, NaN elsewhere.

    Returns only where the ground truth is valid (no return from the sky).
    """
    if gt_depth_m.shape != (pixels.height, pixels.width):
        raise ValueError(
            f"ground truth is {gt_depth_m.shape[1]}x{gt_depth_m.shape[0]}, the beam pixels "
            f"were made for {pixels.width}x{pixels.height}"
        )
    z_m = gt_depth_m[pixels.rows, pixels.cols].astype(np.float64)
    with np.errstate(invalid="ignore"):
        hit = np.isfinite(z_m) & (z_m > 0)
    range_m = z_m[hit] / pixels.z_per_range[hit]
    measured_m = range_m + rng.normal(0.0, pattern.range_noise_m, range_m.size)
    outlier = rng.random(range_m.size) < pattern.outlier_ratio
    measured_m[outlier] = range_m[outlier] * rng.uniform(*OUTLIER_FACTOR, int(outlier.sum()))
    image = np.full(gt_depth_m.shape, np.nan, dtype=np.float32)
    depth_m = np.maximum(measured_m, MIN_RANGE_M) * pixels.z_per_range[hit]
    image[pixels.rows[hit], pixels.cols[hit]] = depth_m
    return image
