"""Lens models of a CameraInfo and their per-pixel rays, through OpenCV's undistortion.

Supported ``distortion_model`` values (sensor_msgs/distortion_models): ``plumb_bob`` and
``rational_polynomial`` (``cv2.undistortPointsIter`` / ``cv2.projectPoints``, 4-5 and
8/12/14 coefficients) and ``equidistant`` (``cv2.fisheye``, 4 coefficients). Anything
else is reported (``LensChoice.warning``, for the node to log once) and the camera is
treated as a pinhole, as every pinhole-only consumer would.

**What ``depth`` means on an unrectified camera.** The node keeps the camera's own pixel
grid: ``depth[v, u]`` is the Z coordinate (metres along the optical axis, REP 118) of
the surface point seen at pixel (u, v) of the raw, distorted image. The point itself is
``(x_over_z(u, v) * Z, y_over_z(u, v) * Z, Z)`` with the *undistorted* ray of that
pixel (``LensRays``), not ``((u - cx) Z / fx, (v - cy) Z / fy, Z)``: that pinhole
formula bends straight walls near the image border. ``depth/camera_info`` carries the
camera's K and D (scaled to the depth image), so a consumer can do the same.

**A rectified pipeline** instead runs ``image_proc`` (rectify) on the camera and feeds
``image_rect`` to the node. Depth is then on the rectified grid, a pinhole with the
projection matrix P holds exactly, and pinhole-only consumers (depth_image_proc,
depthimage_to_laserscan, which read fx, cx from P and ignore D) are correct. Its
camera_info still lists the raw camera's D, so the node must be told the input is
rectified (``lens_from_camera_info(..., rectified=True)``: P, no distortion). Prefer it
when other consumers need pinhole depth; keep the raw grid when the depth must match
the raw image pixel for pixel (overlaying a detector that runs on the raw image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dav2_ros.geometry.intrinsics import CameraIntrinsics, IntrinsicsError
from dav2_ros.geometry.rays import PinholeRays, RayGrid, RaySource

PINHOLE = "pinhole"  # no distortion: empty model, or all coefficients zero
PLUMB_BOB = "plumb_bob"
RATIONAL_POLYNOMIAL = "rational_polynomial"
EQUIDISTANT = "equidistant"
# Coefficient counts OpenCV accepts per model (ROS writes 5, 8 and 4).
COEFFICIENT_COUNTS = {PLUMB_BOB: (4, 5), RATIONAL_POLYNOMIAL: (8, 12, 14), EQUIDISTANT: (4,)}
# Undistortion is iterative: stop when the re-projected point is this close (pixels).
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-4)
# A pixel whose undistorted ray does not project back onto it within this many pixels
# lies outside the field where the polynomial can be inverted: it gets no ray (NaN).
INVERSION_TOLERANCE_PX = 0.01


class LensError(IntrinsicsError):
    """Distortion parameters that cannot describe a lens."""


@dataclass(frozen=True)
class LensModel:
    """Intrinsics + distortion of one image size; hashable by value (a cache key)."""

    intrinsics: CameraIntrinsics
    model: str = PINHOLE
    coefficients: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.model == PINHOLE:
            if self.coefficients:
                raise LensError("a pinhole lens has no distortion coefficients")
            return
        counts = COEFFICIENT_COUNTS.get(self.model)
        if counts is None:
            raise LensError(
                f"unknown distortion model {self.model!r}; supported: "
                f"{', '.join(COEFFICIENT_COUNTS)}"
            )
        if len(self.coefficients) not in counts:
            raise LensError(
                f"{self.model} takes {' or '.join(map(str, counts))} coefficients, "
                f"got {len(self.coefficients)}"
            )
        if not np.all(np.isfinite(self.coefficients)):
            raise LensError(f"{self.model} coefficients must be finite, got {self.coefficients}")

    @property
    def is_pinhole(self) -> bool:
        return self.model == PINHOLE

    def scaled_to(self, width: int, height: int) -> LensModel:
        """The same lens on a resized image: K scales (image_proc's resize), D does not,
        since distortion acts on normalised coordinates (x/z, y/z), which resizing keeps."""
        return LensModel(self.intrinsics.scaled_to(width, height), self.model, self.coefficients)

    def undistort(self, pixels_uv: np.ndarray) -> np.ndarray:
        """Nx2 pixel coordinates (u, v) of the raw image → Nx2 float64 (x/z, y/z).

        Rows where the lens model cannot be inverted (the polynomial folds back,
        a fisheye ray beyond 90 degrees) are NaN.
        """
        pixels = np.asarray(pixels_uv, dtype=np.float64).reshape(-1, 2)
        k = self.intrinsics
        if self.is_pinhole:
            return (pixels - (k.cx, k.cy)) / (k.fx, k.fy)
        k_matrix, distortion = k.k_matrix(), np.asarray(self.coefficients, dtype=np.float64)
        points = pixels.reshape(-1, 1, 2)
        no_motion = np.zeros(3)
        if self.model == EQUIDISTANT:
            normalised = cv2.fisheye.undistortPoints(
                points, k_matrix, distortion, criteria=_UNDISTORT_CRITERIA
            ).reshape(-1, 2)
            homogeneous = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1)
            back, _ = cv2.fisheye.projectPoints(
                homogeneous.reshape(-1, 1, 3), no_motion, no_motion, k_matrix, distortion
            )
        else:
            normalised = cv2.undistortPointsIter(
                points, k_matrix, distortion, None, None, _UNDISTORT_CRITERIA
            ).reshape(-1, 2)
            homogeneous = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1)
            back, _ = cv2.projectPoints(homogeneous, no_motion, no_motion, k_matrix, distortion)
        error_px = np.linalg.norm(back.reshape(-1, 2) - pixels, axis=1)
        normalised[~(error_px <= INVERSION_TOLERANCE_PX)] = np.nan
        return normalised


@dataclass(frozen=True)
class LensChoice:
    """The lens the geometry will use, and why the camera_info's own was not (if so)."""

    lens: LensModel
    warning: str | None = None  # log once; the lens is then a pinhole


def lens_from_camera_info(
    k: Sequence[float] | np.ndarray,
    d: Sequence[float] | np.ndarray,
    distortion_model: str,
    width: int,
    height: int,
    p: Sequence[float] | np.ndarray | None = None,
    rectified: bool = False,
) -> LensChoice:
    """The lens of a CameraInfo's K (9), D, ``distortion_model``, width and height.

    ``rectified``: the image was rectified upstream (``image_rect``), so the lens is the
    pinhole of P's left 3x3 and D is ignored. All-zero D is a pinhole. An unknown model,
    a wrong number of coefficients or non-finite ones give a pinhole and a ``warning``.
    Raises ``IntrinsicsError`` only for a K (or P) that is not 3x3 / 3x4.
    """
    if rectified:
        if p is None:
            raise IntrinsicsError("a rectified image needs the camera_info's P (3x4)")
        p_matrix = np.asarray(p, dtype=np.float64).reshape(-1)
        if p_matrix.size != 12:
            raise IntrinsicsError(f"P must have 12 elements (row-major 3x4), got {p_matrix.size}")
        k_of_p = [p_matrix[0], 0.0, p_matrix[2], 0.0, p_matrix[5], p_matrix[6], 0.0, 0.0, 1.0]
        return LensChoice(LensModel(CameraIntrinsics.from_k(k_of_p, width, height)))
    intrinsics = CameraIntrinsics.from_k(k, width, height)
    coefficients = tuple(float(c) for c in np.asarray(d, dtype=np.float64).reshape(-1))
    model = (distortion_model or "").strip()
    if not any(coefficients):  # all zero (NaN is truthy: LensModel refuses it below)
        return LensChoice(LensModel(intrinsics))
    try:
        return LensChoice(LensModel(intrinsics, model, coefficients))
    except LensError as exc:
        return LensChoice(
            LensModel(intrinsics),
            f"camera_info distortion ignored, using a pinhole (straight rays from K): {exc}",
        )


@dataclass(frozen=True)
class LensRays:
    """Ray source: rays of ``depth[::stride, ::stride]`` through ``lens``, which
    describes the full depth image. Equal lenses and strides give equal sources, so a
    ray cache keyed on the source computes them once per camera_info."""

    lens: LensModel
    stride: int = 1

    def __post_init__(self) -> None:
        if not self.lens.intrinsics.is_calibrated:
            k = self.lens.intrinsics
            raise IntrinsicsError(f"camera is not calibrated (fx={k.fx}, fy={k.fy})")
        if self.stride < 1:
            raise IntrinsicsError(f"stride must be >= 1, got {self.stride}")

    @property
    def grid_shape(self) -> tuple[int, int]:
        grid = self.lens.intrinsics.subsampled(self.stride)
        return grid.height, grid.width

    def rays(self) -> RayGrid:
        height, width = self.grid_shape
        rows, cols = np.mgrid[0:height, 0:width] * float(self.stride)
        normalised = self.lens.undistort(np.stack([cols.ravel(), rows.ravel()], axis=1))
        x_over_z = normalised[:, 0].reshape(height, width).astype(np.float32)
        y_over_z = normalised[:, 1].reshape(height, width).astype(np.float32)
        x_over_z.flags.writeable = False
        y_over_z.flags.writeable = False
        return RayGrid(x_over_z, y_over_z)


def rays_for(lens: LensModel, stride: int) -> RaySource:
    """How the pixels of the grid ``[::stride, ::stride]`` of the image ``lens`` describes
    become rays: the one place the node chooses. A pinhole keeps ``PinholeRays`` (Open3D's
    float32 arithmetic, bit for bit); a lens with distortion gets its undistorted rays.
    Sources compare by value: equal camera_infos hit the node's ``RayCache``."""
    if lens.is_pinhole:
        return PinholeRays(lens.intrinsics, stride)
    return LensRays(lens, stride)
