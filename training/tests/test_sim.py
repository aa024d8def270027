"""dav2_ros.sim: exact z-depth, determinism, invalid sky, the styles, trajectories."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from dav2_ros.sim import (
    Intrinsics,
    Scene,
    look_at,
    make_scene,
    random_intrinsics,
    random_pose,
    render,
    smooth_trajectory,
)
from dav2_ros.sim.materials import Material


def _wall_scene(distance_m: float) -> Scene:
    """One large fronto-parallel wall ``distance_m`` in front of a camera at the origin."""
    box = o3d.geometry.TriangleMesh.create_box(40.0, 0.1, 40.0)
    box.translate((-20.0, distance_m, -20.0))  # wall face at y = distance_m
    grey = np.full(3, 0.5)
    return Scene(
        kind="room", style="a", seed=0,
        meshes=[o3d.t.geometry.TriangleMesh.from_legacy(box)],
        materials=[Material(grey, grey, "solid", 1.0, 0.0, 1.0)],
        lights=[], ambient=np.ones(3), sky_colours=(np.zeros(3), np.zeros(3)),
        camera_region=(np.zeros(3), np.zeros(3)), view_yaw=0.0, view_yaw_spread=0.0,
    )  # fmt: skip


def test_depth_is_z_depth_not_ray_length() -> None:
    # A fronto-parallel wall has the same z everywhere, while ray length grows off-axis.
    intrinsics = Intrinsics.from_fov(64, 48, 90.0)
    pose = look_at(np.zeros(3), np.array([0.0, 1.0, 0.0]))
    frame = render(_wall_scene(3.0), intrinsics, pose)
    assert frame.valid.all()
    np.testing.assert_allclose(frame.depth_m, 3.0, rtol=1e-5)
    assert frame.depth_m.dtype == np.float32
    np.testing.assert_array_equal(frame.K, intrinsics.K)


def test_beyond_max_depth_and_sky_are_nan_and_invalid() -> None:
    intrinsics = Intrinsics.from_fov(32, 24, 60.0)
    pose = look_at(np.zeros(3), np.array([0.0, 1.0, 0.0]))
    frame = render(_wall_scene(30.0), intrinsics, pose, max_depth_m=20.0)
    assert not frame.valid.any() and np.isnan(frame.depth_m).all()
    sky = render(_wall_scene(3.0), intrinsics, look_at(np.zeros(3), np.array([0.0, -1.0, 0.0])))
    assert not sky.valid.any()  # looking away from the only wall: nothing is hit


@pytest.mark.parametrize("style", ["a", "b", "c"])
def test_same_seed_gives_identical_frames(style: str) -> None:
    def frame(seed: int):
        rng = np.random.default_rng(seed)
        scene = make_scene(seed, style)
        return render(scene, random_intrinsics(rng, 56, 42), random_pose(scene, rng))

    a, b, c = frame(5), frame(5), frame(6)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth_m, b.depth_m)
    assert not np.array_equal(a.rgb, c.rgb)
    assert a.rgb.dtype == np.uint8 and a.rgb.shape == (42, 56, 3)
    np.testing.assert_array_equal(a.valid, np.isfinite(a.depth_m))


def test_every_kind_renders_plausible_depth() -> None:
    for kind in ("room", "street", "clutter"):
        scene = make_scene(1, "a", kind)
        rng = np.random.default_rng(1)
        frame = render(scene, random_intrinsics(rng, 48, 36), random_pose(scene, rng))
        assert frame.valid.mean() > 0.2, kind
        depth = frame.depth_m[frame.valid]
        assert depth.min() > 0 and depth.max() <= 20.0, kind
    # A room is closed: from inside, every ray hits a surface within range.
    inside = look_at(np.array([0.0, 0.0, 1.2]), np.array([0.0, 1.0, 1.2]))
    assert render(make_scene(1, "a", "room"), Intrinsics.from_fov(16, 12, 60), inside).valid.all()


def test_style_b_is_a_visibly_different_domain() -> None:
    # Same scene seeds and cameras, other materials/light/camera: b is less saturated
    # (earthy materials, haze) and its flat regions carry sensor noise.
    def mean_saturation(style: str) -> float:
        values = []
        for seed in range(4):
            scene = make_scene(seed, style, "room")
            rng = np.random.default_rng(seed)
            rgb = render(scene, random_intrinsics(rng, 64, 48), random_pose(scene, rng)).rgb
            values.append(np.mean(rgb.max(-1).astype(float) - rgb.min(-1)))
        return float(np.mean(values))

    assert mean_saturation("b") < 0.8 * mean_saturation("a")


def test_make_scene_rejects_unknown_style_and_kind() -> None:
    with pytest.raises(ValueError, match="style must be one of"):
        make_scene(0, "d")
    with pytest.raises(ValueError, match="scene kind must be one of"):
        make_scene(0, "a", "forest")


def test_smooth_trajectory_moves_in_small_continuous_steps() -> None:
    scene = make_scene(2, "a", "street")
    poses = smooth_trajectory(scene, 120, seed=3)
    assert len(poses) == 120
    positions = np.array([p[:3, 3] for p in poses])
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert steps.max() < 0.5 and steps.max() < 3 * np.median(steps) + 1e-6
    forwards = np.array([p[:3, 2] for p in poses])
    assert np.min(np.sum(forwards[1:] * forwards[:-1], axis=1)) > np.cos(np.radians(5))
    for pose in poses[:3]:  # rotation part is orthonormal (a valid optical frame)
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
