"""LaserScan from depth against an independent port of depthimage_to_laserscan's loop.

``reference_scan`` is a pixel-by-pixel transcription of the ROS 2 package's ``convert``
and ``use_point`` (float32 where the C++ uses float), written for this test; the module
under test is vectorised. Depth images carry known geometry (a circular wall around
the camera: every range equals its radius), NaN, +/-Inf, 0 and out-of-range depths.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dav2_ros.geometry import CameraIntrinsics
from dav2_ros.geometry.laserscan import (
    ScanGeometry,
    ScanSettings,
    depth_to_scan,
    scan_frame_id,
)
from dav2_ros.geometry.lens import LensModel, lens_from_camera_info

F32 = np.float32


def _use_point(new: F32, old: F32, range_min: F32, range_max: F32) -> bool:
    new_finite, old_finite = math.isfinite(new), math.isfinite(old)
    if not new_finite and not old_finite:
        return not math.isnan(new)  # +/-Inf beats NaN (and replaces an older Inf)
    if not (range_min <= new <= range_max):
        return False
    if not old_finite:
        return True
    return bool(new < old)


def reference_scan(depth: np.ndarray, k: CameraIntrinsics, settings: ScanSettings) -> dict:
    """depthimage_to_laserscan (ROS 2) on a 32FC1 image and a distortion-free camera."""

    def ray(u: float, v: float) -> np.ndarray:
        return np.array([(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0])

    def angle(a: np.ndarray, b: np.ndarray) -> float:
        return math.acos(float(a @ b) / (math.sqrt(a @ a) * math.sqrt(b @ b)))

    height, width = depth.shape
    angle_max = F32(angle(ray(0, k.cy), ray(k.cx, k.cy)))
    angle_min = F32(-angle(ray(k.cx, k.cy), ray(width - 1, k.cy)))
    increment = F32((angle_max - angle_min) / F32(width - 1))
    range_min, range_max = F32(settings.range_min_m), F32(settings.range_max_m)
    ranges = [F32(np.nan)] * width
    center_x, constant_x = F32(k.cx), F32(1.0 / k.fx)
    offset = int(k.cy - settings.height_px / 2.0)
    for v in range(offset, offset + settings.height_px):
        for u in range(width):
            d = F32(depth[v, u])
            r = float(d)
            th = -math.atan2(float(F32(u) - center_x) * float(constant_x), 1.0)
            index = int((th - float(angle_min)) / float(increment))
            if math.isfinite(d):
                x = float((F32(u) - center_x) * d * constant_x)
                r = math.sqrt(x * x + float(d) * float(d))
            if _use_point(F32(r), ranges[index], range_min, range_max):
                ranges[index] = F32(r)
    return {
        "angle_min": float(angle_min),
        "angle_max": float(angle_max),
        "angle_increment": float(increment),
        "ranges": np.array(ranges, dtype=np.float32),
    }


def circular_wall(k: CameraIntrinsics, radius_m: float) -> np.ndarray:
    """Z-depth of a vertical cylinder of ``radius_m`` around the camera (pinhole)."""
    x_over_z = (np.arange(k.width) - k.cx) / k.fx
    depth = radius_m / np.hypot(x_over_z, 1.0)
    return np.tile(depth, (k.height, 1)).astype(np.float32)


def test_scan_of_a_circular_wall_is_its_radius_everywhere() -> None:
    k = CameraIntrinsics(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=320, height=240)
    depth = circular_wall(k, 4.0)
    settings = ScanSettings(height_px=3)
    scan = depth_to_scan(depth, ScanGeometry.for_lens(LensModel(k), 3), settings)
    assert scan.ranges.shape == (320,) and scan.ranges.dtype == np.float32
    assert scan.angle_max == pytest.approx(math.atan(159.5 / 300.0), rel=1e-6)
    assert scan.angle_min == pytest.approx(-math.atan((319 - 159.5) / 300.0), rel=1e-6)
    assert scan.angle_increment == pytest.approx((scan.angle_max - scan.angle_min) / 319, 1e-6)
    measured = scan.ranges[np.isfinite(scan.ranges)]
    # Uniform angle bins over non-uniform pixel angles: some centre bins get no pixel.
    assert 0.8 * 320 < measured.size < 320
    np.testing.assert_allclose(measured, 4.0, rtol=1e-6)
    assert (scan.range_min, scan.range_max, scan.time_increment) == (0.45, 10.0, 0.0)


def awkward_depth(k: CameraIntrinsics, height_px: int, seed: int) -> np.ndarray:
    """A circular wall with a nearer box, holes, +/-Inf, zeros, too near and too far."""
    rng = np.random.default_rng(seed)
    depth = circular_wall(k, 6.0)
    depth[:, 100:140] = 1.5  # a box face square to the optical axis
    first = int(k.cy - height_px / 2.0)  # the scanned rows
    rows = slice(first, first + height_px)
    band = depth[rows]
    for value, share in ((np.nan, 0.08), (np.inf, 0.05), (-np.inf, 0.05), (0.0, 0.03)):
        band[rng.random(band.shape) < share] = value
    band[rng.random(band.shape) < 0.05] = 0.2  # too near for range_min 0.45
    band[rng.random(band.shape) < 0.05] = 30.0  # too far for range_max 10
    band[:, 10:16] = np.nan  # whole columns without depth
    band[:, 20:24] = np.inf
    band[:, 30:34] = np.nan
    band[0, 30:34] = -np.inf  # Inf then NaN: Inf stays
    band[:, 40:44] = np.nan
    band[0, 40:44], band[-1, 40:44] = np.inf, -np.inf  # the last Inf wins (one row: +Inf)
    band[:, 50:54] = np.inf
    band[0, 50:54] = 2.0  # a finite range beats any Inf
    depth[rows] = band
    return depth


@pytest.mark.parametrize(
    "height_px, cy",
    [(1, 119.5), (1, 120.0), (4, 119.5), (9, 117.25)],
)
def test_scan_matches_depthimage_to_laserscan_formula(height_px: int, cy: float) -> None:
    k = CameraIntrinsics(fx=285.0, fy=290.0, cx=161.3, cy=cy, width=320, height=240)
    depth = awkward_depth(k, height_px, seed=height_px)
    settings = ScanSettings(height_px=height_px)
    scan = depth_to_scan(depth, ScanGeometry.for_lens(LensModel(k), height_px), settings)
    expected = reference_scan(depth, k, settings)
    for name in ("angle_min", "angle_max", "angle_increment"):
        assert getattr(scan, name) == expected[name], name
    ranges, reference = scan.ranges, expected["ranges"]
    np.testing.assert_array_equal(np.isnan(ranges), np.isnan(reference))
    np.testing.assert_array_equal(np.isposinf(ranges), np.isposinf(reference))
    np.testing.assert_array_equal(np.isneginf(ranges), np.isneginf(reference))
    finite = np.isfinite(reference)
    np.testing.assert_allclose(ranges[finite], reference[finite], rtol=1e-6)
    # The cases the image was built for are all there.
    assert np.isposinf(ranges).any() and np.isneginf(ranges).any() and np.isnan(ranges).any()
    assert (ranges[finite] >= 0.45).all() and (ranges[finite] <= 10.0).all()


def test_scan_band_taller_than_the_image_allows_is_refused() -> None:
    k = CameraIntrinsics(fx=300.0, fy=300.0, cx=160.0, cy=30.0, width=320, height=240)
    with pytest.raises(ValueError, match=r"scan height 61 rows .*at most 60 rows"):
        ScanGeometry.for_lens(LensModel(k), 61)
    ScanGeometry.for_lens(LensModel(k), 60)


def test_scan_refuses_a_depth_image_of_another_size() -> None:
    k = CameraIntrinsics(fx=300.0, fy=300.0, cx=160.0, cy=120.0, width=320, height=240)
    geometry = ScanGeometry.for_lens(LensModel(k), 1)
    with pytest.raises(ValueError, match="for a 320x240 depth image, got 160x120"):
        depth_to_scan(np.ones((120, 160), np.float32), geometry, ScanSettings())


@pytest.mark.parametrize(
    "kwargs", [{"height_px": 0}, {"range_min_m": 5.0, "range_max_m": 1.0}, {"scan_time_s": -1}]
)
def test_scan_settings_reject_impossible_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ScanSettings(**kwargs)


def test_distorted_camera_scan_uses_undistorted_rays() -> None:
    """A circular wall seen through a barrel-distorted lens: with per-pixel undistorted
    rays every range is the radius again; the pinhole formula would bend it."""
    k_640 = [400.0, 0.0, 319.5, 0.0, 400.0, 239.5, 0.0, 0.0, 1.0]
    d = [-0.28, 0.09, 0.0005, -0.0004, -0.012]
    lens = lens_from_camera_info(k_640, d, "plumb_bob", 640, 480).lens
    geometry = ScanGeometry.for_lens(lens, 5)
    rows = np.arange(geometry.row_start, geometry.row_start + 5)
    cols = np.arange(640)
    pixels = np.stack(np.meshgrid(cols, rows), axis=-1).reshape(-1, 2).astype(np.float64)
    x_over_z = lens.undistort(pixels)[:, 0].reshape(5, 640)
    depth = np.full((480, 640), np.nan, np.float32)
    depth[rows] = 3.0 / np.hypot(x_over_z, 1.0)
    scan = depth_to_scan(depth, geometry, ScanSettings(height_px=5))
    measured = scan.ranges[np.isfinite(scan.ranges)]
    assert measured.size > 0.8 * 640
    np.testing.assert_allclose(measured, 3.0, rtol=1e-5)
    # The widest ray of a barrel lens is wider than the pinhole's atan(cx / fx).
    assert scan.angle_max > math.atan(319.5 / 400.0) + 0.05
    pinhole = depth_to_scan(
        depth, ScanGeometry.for_lens(LensModel(lens.intrinsics), 5), ScanSettings(height_px=5)
    )
    assert np.nanmax(np.abs(pinhole.ranges - 3.0)) > 0.1


@pytest.mark.parametrize(
    "depth_frame, output_frame, expected",
    [
        ("camera_optical_frame", "", "camera_frame"),
        ("camera_depth_optical_frame", "", "camera_depth_frame"),
        ("front_cam_color_optical_frame", "", "front_cam_color_frame"),
        ("base_camera", "", "base_camera"),
        ("camera_optical_frame", "base_scan", "base_scan"),
    ],
)
def test_scan_frame_is_the_optical_frames_body_frame(
    depth_frame: str, output_frame: str, expected: str
) -> None:
    assert scan_frame_id(depth_frame, output_frame) == expected
