"""Sparse metric sources → pixel samples: depth images (32FC1 m / 16UC1 mm) and point clouds."""

from __future__ import annotations

import numpy as np
import pytest

from dav2_ros.scale import (
    samples_from_depth_image,
    samples_from_points,
    transform_from_quaternion,
    transform_from_xyz_rpy,
)


def _triples(samples):
    return zip(samples.rows.tolist(), samples.cols.tolist(), samples.depth_m.tolist(), strict=True)


K = np.array([[100.0, 0.0, 40.0], [0.0, 100.0, 30.0], [0.0, 0.0, 1.0]])  # for 80×60


def test_only_finite_positive_depths_become_samples():
    depth_m = np.array([[np.nan, 0.0, 2.5], [-2.0, np.inf, 1.0]], dtype=np.float32)
    samples = samples_from_depth_image(depth_m, 2, 3)
    assert sorted(_triples(samples)) == [(0, 2, 2.5), (1, 2, 1.0)]


def test_depth_image_at_half_resolution_maps_pixel_centres():
    depth = np.full((30, 40), np.nan, dtype=np.float32)
    depth[0, 0], depth[10, 20], depth[29, 39] = 1.0, 2.0, 3.0
    samples = samples_from_depth_image(depth, 60, 80)
    got = sorted(_triples(samples))
    # Centre of source pixel (r, c) at 2× is target (2r + 0.5, 2c + 0.5), rounded half to even.
    assert got == [(0, 0, 1.0), (20, 40, 2.0), (58, 78, 3.0)]


def test_depth_image_at_higher_resolution_keeps_nearest_per_pixel():
    depth_m = np.full((120, 160), np.nan, dtype=np.float32)
    depth_m[0:2, 0:2] = [[4.0, 3.0], [5.0, np.nan]]  # four source pixels → one target pixel
    samples = samples_from_depth_image(depth_m, 60, 80)
    assert len(samples) == 1 and samples.depth_m[0] == pytest.approx(3.0)


def test_lookup_refuses_an_image_of_another_size():
    samples = samples_from_depth_image(np.ones((6, 8), np.float32), 6, 8)
    assert samples.lookup(np.arange(48.0).reshape(6, 8)).tolist() == list(range(48))
    with pytest.raises(ValueError, match="made for a 8x6 image, got 16x12"):
        samples.lookup(np.zeros((12, 16)))


def test_points_in_camera_frame_project_with_k():
    points = np.array([[0.0, 0.0, 2.0], [1.0, 0.5, 5.0], [0.0, 0.0, -1.0], [9.0, 0.0, 1.0]])
    samples = samples_from_points(points, np.eye(4), K, 60, 80)
    got = sorted(_triples(samples))
    # (0,0,2) → centre; (1,0.5,5) → u = 40 + 100·0.2 = 60, v = 30 + 100·0.1 = 40;
    # behind the camera and outside the image are dropped.
    assert got == [(30, 40, 2.0), (40, 60, 5.0)]


def test_points_from_a_lidar_frame_use_the_extrinsic():
    # LiDAR convention x forward, y left, z up; camera optical z forward, x right, y down.
    # The camera sits 0.1 m below the LiDAR; rotation maps lidar axes onto optical axes.
    T_lidar_from_camera = transform_from_xyz_rpy([0.0, 0.0, -0.1], [-np.pi / 2, 0.0, -np.pi / 2])
    T_camera_from_lidar = np.linalg.inv(T_lidar_from_camera)
    point_lidar = np.array([[4.0, -0.4, -0.1 + 0.2]])  # 4 m ahead, 0.4 m right, 0.2 m above cam
    samples = samples_from_points(point_lidar, T_camera_from_lidar, K, 60, 80)
    assert len(samples) == 1
    assert samples.depth_m[0] == pytest.approx(4.0)
    assert samples.cols[0] == 40 + 10  # x_cam = 0.4 → u = 40 + 100·0.4/4
    assert samples.rows[0] == 30 - 5  # y_cam = −0.2 → v = 30 − 100·0.2/4


def test_nearest_point_wins_when_two_share_a_pixel():
    points = np.array([[0.0, 0.0, 7.0], [0.0, 0.0, 3.0], [0.0, 0.0, 5.0]])
    samples = samples_from_points(points, np.eye(4), K, 60, 80)
    assert samples.depth_m.tolist() == [3.0]


def test_uncalibrated_camera_cannot_project():
    with pytest.raises(ValueError, match="uncalibrated"):
        samples_from_points(np.ones((1, 3)), np.eye(4), np.zeros((3, 3)), 60, 80)


def test_quaternion_and_rpy_agree():
    rpy = [0.3, -0.2, 1.1]
    T_rpy = transform_from_xyz_rpy([1, 2, 3], rpy)
    # Same rotation as a quaternion (ZYX composition of half-angle quaternions).
    cr, sr = np.cos(rpy[0] / 2), np.sin(rpy[0] / 2)
    cp, sp = np.cos(rpy[1] / 2), np.sin(rpy[1] / 2)
    cy, sy = np.cos(rpy[2] / 2), np.sin(rpy[2] / 2)
    quat = [
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    ]
    np.testing.assert_allclose(transform_from_quaternion([1, 2, 3], quat), T_rpy, atol=1e-12)
