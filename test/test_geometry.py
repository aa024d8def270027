"""Geometry without ROS: intrinsics scaling, Open3D back-projection, PointCloud2 packing."""

from __future__ import annotations

import numpy as np
import pytest

from dav2_ros.geometry import (
    CameraIntrinsics,
    IntrinsicsError,
    backproject_organised,
    limit_range,
    point_fields,
)

K_640 = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]


def numpy_backprojection(depth_m: np.ndarray, k: CameraIntrinsics, stride: int) -> np.ndarray:
    """The textbook formula on full-resolution pixel coordinates, then subsampled."""
    v, u = np.mgrid[0 : depth_m.shape[0], 0 : depth_m.shape[1]].astype(np.float64)
    z = depth_m.astype(np.float64)
    xyz = np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], axis=-1)
    return xyz[::stride, ::stride]


def test_intrinsics_from_k_reads_row_major_entries() -> None:
    k = CameraIntrinsics.from_k(K_640, 640, 480)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (500, 510, 320, 240, 640, 480)
    assert k.is_calibrated


def test_intrinsics_scaled_to_half_resolution_halves_pixel_quantities() -> None:
    k = CameraIntrinsics.from_k(K_640, 640, 480).scaled_to(320, 240)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (250, 255, 160, 120, 320, 240)


def test_intrinsics_zero_k_is_uncalibrated() -> None:
    assert not CameraIntrinsics.from_k([0.0] * 9, 640, 480).is_calibrated


@pytest.mark.parametrize("bad_k", [[1.0] * 8, [1.0] * 10])
def test_intrinsics_reject_k_of_wrong_length(bad_k: list[float]) -> None:
    with pytest.raises(IntrinsicsError, match="9 elements"):
        CameraIntrinsics.from_k(bad_k, 640, 480)


@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_backprojection_matches_numpy_formula(stride: int) -> None:
    rng = np.random.default_rng(stride)
    depth_m = rng.uniform(0.3, 12.0, size=(48, 64)).astype(np.float32)
    depth_m[5, 7] = np.nan
    k = CameraIntrinsics.from_k(K_640, 640, 480).scaled_to(64, 48)
    xyz = backproject_organised(depth_m, k, stride)
    expected = numpy_backprojection(depth_m, k, stride)
    assert xyz.shape == expected.shape
    assert xyz.dtype == np.float32
    np.testing.assert_allclose(xyz, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_backprojection_keeps_nan_and_zero_depth_semantics() -> None:
    depth_m = np.array([[np.nan, 0.0], [2.0, 3.0]], dtype=np.float32)
    xyz = backproject_organised(depth_m, CameraIntrinsics(1.0, 1.0, 0.5, 0.5, 2, 2))
    assert np.isnan(xyz[0, 0]).all()
    assert xyz[0, 1, 2] == 0.0  # 0 m is a valid depth in a float image, not "invalid"


def test_backprojection_refuses_intrinsics_of_another_size() -> None:
    k = CameraIntrinsics.from_k(K_640, 640, 480)
    with pytest.raises(IntrinsicsError, match="scaled_to"):
        backproject_organised(np.ones((48, 64), np.float32), k)


def test_limit_range_sets_far_points_to_nan_and_keeps_input() -> None:
    depth_m = np.array([[1.0, 5.0, np.nan]], dtype=np.float32)
    limited = limit_range(depth_m, 4.0)
    assert limited[0, 0] == 1.0 and np.isnan(limited[0, 1:]).all()
    assert depth_m[0, 1] == 5.0
    assert limit_range(depth_m, 0.0)[0, 1] == 5.0


def test_point_fields_follow_depth_image_proc_layout() -> None:
    fields, step = point_fields(with_rgb=False)
    assert [(f.name, f.offset, f.datatype) for f in fields] == [
        ("x", 0, 7),
        ("y", 4, 7),
        ("z", 8, 7),
    ]
    assert step == 16
    fields, step = point_fields(with_rgb=True)
    assert [(f.name, f.offset) for f in fields][-1] == ("rgb", 16)
    assert step == 32
