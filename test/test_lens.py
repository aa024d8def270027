"""Distortion-aware rays against OpenCV's own projection.

Points back-projected along ``LensRays`` with any depth must project back onto their
own pixels (``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``) within 0.05 px.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dav2_ros.geometry import CameraIntrinsics, IntrinsicsError
from dav2_ros.geometry.lens import (
    EQUIDISTANT,
    PINHOLE,
    PLUMB_BOB,
    RATIONAL_POLYNOMIAL,
    LensModel,
    LensRays,
    lens_from_camera_info,
)

WIDTH, HEIGHT = 320, 240
K = [260.0, 0.0, 161.7, 0.0, 262.0, 118.9, 0.0, 0.0, 1.0]
K_FISHEYE = [160.0, 0.0, 158.2, 0.0, 160.5, 121.4, 0.0, 0.0, 1.0]  # 140 deg diagonal
# Realistic calibrations: a wide-angle webcam, a rational 8-coefficient lens, a fisheye.
CAMERAS = {
    PLUMB_BOB: (K, [-0.29, 0.085, 0.0012, -0.0007, -0.011]),
    RATIONAL_POLYNOMIAL: (K, [0.45, -0.12, 0.0009, 0.0004, 0.01, 0.78, -0.05, 0.02]),
    EQUIDISTANT: (K_FISHEYE, [0.021, -0.007, 0.0012, -0.0003]),
}


def project_with_opencv(points_xyz: np.ndarray, lens: LensModel) -> np.ndarray:
    k_matrix = lens.intrinsics.k_matrix()
    distortion = np.asarray(lens.coefficients, dtype=np.float64)
    zero = np.zeros(3)
    if lens.model == EQUIDISTANT:
        pixels, _ = cv2.fisheye.projectPoints(
            points_xyz.reshape(-1, 1, 3), zero, zero, k_matrix, distortion
        )
    else:
        pixels, _ = cv2.projectPoints(points_xyz, zero, zero, k_matrix, distortion)
    return pixels.reshape(-1, 2)


@pytest.mark.parametrize("model", list(CAMERAS))
@pytest.mark.parametrize("stride", [1, 3])
def test_back_projected_points_reproject_onto_their_pixels(model: str, stride: int) -> None:
    k, d = CAMERAS[model]
    choice = lens_from_camera_info(k, d, model, WIDTH, HEIGHT)
    assert choice.warning is None and choice.lens.model == model
    source = LensRays(choice.lens, stride)
    rays = source.rays()
    assert rays.shape == source.grid_shape == (-(-HEIGHT // stride), -(-WIDTH // stride))
    assert rays.x_over_z.dtype == np.float32 and not rays.x_over_z.flags.writeable
    depth_m = np.random.default_rng(stride).uniform(0.3, 30.0, size=rays.shape)
    points = np.stack([rays.x_over_z * depth_m, rays.y_over_z * depth_m, depth_m], axis=-1)
    valid = np.isfinite(points).all(axis=-1)
    assert valid.all()  # these lenses are invertible over the whole image
    rows, cols = np.mgrid[0 : rays.shape[0], 0 : rays.shape[1]] * stride
    pixels = np.stack([cols, rows], axis=-1).reshape(-1, 2).astype(np.float64)
    reprojected = project_with_opencv(points.reshape(-1, 3).astype(np.float64), choice.lens)
    error_px = np.linalg.norm(reprojected - pixels, axis=1)
    assert error_px.max() < 0.05, f"{model}: worst re-projection {error_px.max():.4f} px"
    # Not a pinhole in disguise: the straight (u - cx) / fx rays are far off at the border.
    pinhole = (pixels[:, 0] - k[2]) / k[0]
    assert np.abs(pinhole - rays.x_over_z.ravel()).max() * k[0] > 3.0


def test_a_scaled_lens_keeps_reprojecting_exactly() -> None:
    k, d = CAMERAS[PLUMB_BOB]
    lens = lens_from_camera_info(k, d, PLUMB_BOB, WIDTH, HEIGHT).lens.scaled_to(112, 84)
    assert lens.coefficients == tuple(d)
    rays = LensRays(lens).rays()
    points = np.stack([rays.x_over_z * 2.0, rays.y_over_z * 2.0, np.full(rays.shape, 2.0)], -1)
    rows, cols = np.mgrid[0:84, 0:112]
    pixels = np.stack([cols, rows], axis=-1).reshape(-1, 2)
    error_px = np.linalg.norm(project_with_opencv(points.reshape(-1, 3), lens) - pixels, axis=1)
    assert error_px.max() < 0.05


@pytest.mark.parametrize(
    "model, k, d",
    [
        (PLUMB_BOB, K, [-0.6, 0.05, 0.0, 0.0, 0.0]),  # the polynomial folds back
        (EQUIDISTANT, [110.0, 0.0, 158.2, 0.0, 110.0, 121.4, 0.0, 0.0, 1.0], [0.0] * 3 + [1e-4]),
    ],
)
def test_pixels_outside_the_invertible_field_get_no_ray(model: str, k: list, d: list) -> None:
    """Past the field the lens model can invert (a barrel polynomial folding back, a
    fisheye corner beyond 90 degrees off axis) a pixel gets no ray, never a wrong one."""
    lens = lens_from_camera_info(k, d, model, WIDTH, HEIGHT).lens
    rays = LensRays(lens).rays()
    invalid = np.isnan(rays.x_over_z)
    assert invalid[0, 0] and invalid[-1, -1] and not invalid[HEIGHT // 2, WIDTH // 2]
    np.testing.assert_array_equal(invalid, np.isnan(rays.y_over_z))
    rows, cols = np.nonzero(~invalid)
    points = np.stack([rays.x_over_z[rows, cols], rays.y_over_z[rows, cols], np.ones(rows.size)], 1)
    error_px = np.linalg.norm(project_with_opencv(points, lens) - np.stack([cols, rows], 1), axis=1)
    assert error_px.max() < 0.05


def test_zero_distortion_is_a_pinhole_with_the_textbook_rays() -> None:
    choice = lens_from_camera_info(K, [0.0] * 5, PLUMB_BOB, WIDTH, HEIGHT)
    assert choice.warning is None and choice.lens.model == PINHOLE
    rays = LensRays(choice.lens, stride=2).rays()
    rows, cols = np.mgrid[0:HEIGHT:2, 0:WIDTH:2]
    np.testing.assert_allclose(rays.x_over_z, (cols - K[2]) / K[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rays.y_over_z, (rows - K[5]) / K[4], rtol=1e-6, atol=1e-7)
    assert lens_from_camera_info(K, [], "", WIDTH, HEIGHT) == choice


@pytest.mark.parametrize(
    "model, d, reason",
    [
        ("kannala_brandt", [0.1, 0.01, 0.0, 0.0], "unknown distortion model 'kannala_brandt'"),
        (PLUMB_BOB, [0.1, 0.01, 0.0], "plumb_bob takes 4 or 5 coefficients, got 3"),
        (EQUIDISTANT, [0.1, 0.01, 0.0, 0.0, 0.0], "equidistant takes 4 coefficients, got 5"),
        (PLUMB_BOB, [0.1, float("nan"), 0.0, 0.0, 0.0], "coefficients must be finite"),
        ("", [0.1, 0.01, 0.0, 0.0, 0.0], "unknown distortion model ''"),
    ],
)
def test_unusable_distortion_falls_back_to_pinhole_with_a_reason(
    model: str, d: list[float], reason: str
) -> None:
    choice = lens_from_camera_info(K, d, model, WIDTH, HEIGHT)
    assert choice.lens == LensModel(CameraIntrinsics.from_k(K, WIDTH, HEIGHT))
    assert choice.warning is not None and reason in choice.warning
    assert "using a pinhole" in choice.warning


def test_rectified_input_uses_p_and_ignores_d() -> None:
    p = [250.0, 0.0, 160.0, 0.0, 0.0, 250.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    choice = lens_from_camera_info(K, CAMERAS[PLUMB_BOB][1], PLUMB_BOB, WIDTH, HEIGHT, p, True)
    k = choice.lens.intrinsics
    assert choice.lens.is_pinhole and (k.fx, k.fy, k.cx, k.cy) == (250, 250, 160, 120)
    with pytest.raises(IntrinsicsError, match="needs the camera_info's P"):
        lens_from_camera_info(K, [], "", WIDTH, HEIGHT, rectified=True)


def test_ray_sources_are_cache_keys_by_value() -> None:
    """Equal camera_infos give equal, equally hashed sources; any change gives another."""
    k, d = CAMERAS[PLUMB_BOB]
    first = LensRays(lens_from_camera_info(k, d, PLUMB_BOB, WIDTH, HEIGHT).lens, 2)
    again = LensRays(lens_from_camera_info(list(k), tuple(d), PLUMB_BOB, WIDTH, HEIGHT).lens, 2)
    assert first == again and hash(first) == hash(again)
    changed_d = LensRays(lens_from_camera_info(k, [*d[:4], 0.0], PLUMB_BOB, WIDTH, HEIGHT).lens, 2)
    other_stride = LensRays(first.lens, 3)
    assert len({first, again, changed_d, other_stride}) == 3


def test_uncalibrated_camera_has_no_rays() -> None:
    with pytest.raises(IntrinsicsError, match="not calibrated"):
        LensRays(lens_from_camera_info([0.0] * 9, [], "", WIDTH, HEIGHT).lens)
