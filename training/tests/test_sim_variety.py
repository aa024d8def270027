"""The widened generator: camera ranges, furniture, and the held-out style "c"."""

from __future__ import annotations

import numpy as np
import pytest

from dav2_ros.sim import (
    HELD_OUT_STYLES,
    Intrinsics,
    furniture,
    make_scene,
    random_intrinsics,
    random_pose,
    render,
)
from dav2_ros.sim.materials import PATTERNS_A, PATTERNS_B, PATTERNS_C, random_material
from dav2_ros.sim.scene import CAMERA_HEIGHT_M


def test_cameras_span_heights_and_fields_of_view() -> None:
    heights, hfovs, pitches = [], [], []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scene = make_scene(seed, "a", "room")
        intrinsics = random_intrinsics(rng, 64, 48)
        pose = random_pose(scene, rng)
        heights.append(pose[2, 3])
        hfovs.append(np.degrees(2 * np.arctan(32 / intrinsics.fx)))
        pitches.append(np.degrees(np.arcsin(pose[2, 2])))  # optical z axis vs world up
    lo, hi = CAMERA_HEIGHT_M
    assert min(heights) >= lo and max(heights) <= hi
    assert min(heights) < 0.6 and max(heights) > 1.8  # robots near the floor up to tall masts
    assert min(hfovs) >= 40 and max(hfovs) <= 100 and max(hfovs) - min(hfovs) > 30
    # Low cameras look level or up, high ones down: pitch falls with height.
    assert np.corrcoef(heights, pitches)[0, 1] < -0.3


@pytest.mark.parametrize("name", sorted(furniture.MAKERS))
def test_furniture_stands_on_the_floor_inside_its_footprint(name: str) -> None:
    for seed in range(3):
        piece = furniture.MAKERS[name](np.random.default_rng(seed))
        lo = np.min([g.get_min_bound() for g in piece.groups], axis=0)
        hi = np.max([g.get_max_bound() for g in piece.groups], axis=0)
        assert lo[2] == pytest.approx(0.0, abs=1e-6), name
        width, depth = piece.footprint
        assert hi[0] - lo[0] <= width + 1e-6 and hi[1] - lo[1] <= depth + 0.1, name
        assert sum(len(g.triangles) for g in piece.groups) >= 12  # more than one box


def test_rooms_are_furnished_and_closed() -> None:
    counts = [len(make_scene(seed, "a", "room").meshes) for seed in range(6)]
    assert min(counts) > 6 + 2  # floor, ceiling and 4 walls, plus furniture and fixtures
    inside = np.array([[0, 0, -1, 0], [1, 0, 0, 0], [0, -1, 0, 1.2], [0, 0, 0, 1.0]])
    inside[:3, :3] = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    frame = render(make_scene(3, "a", "room"), Intrinsics.from_fov(16, 12, 60), inside)
    assert frame.valid.all()


def test_held_out_style_shares_no_texture_family_with_training_styles() -> None:
    assert HELD_OUT_STYLES == ("c",)
    assert not set(PATTERNS_C) & (set(PATTERNS_A) | set(PATTERNS_B))
    rng = np.random.default_rng(0)
    seen = {style: {random_material(rng, style).pattern for _ in range(300)} for style in "abc"}
    assert seen["c"] == set(PATTERNS_C)
    assert not seen["c"] & (seen["a"] | seen["b"])


def test_held_out_style_renders_valid_depth_every_kind() -> None:
    for kind in ("room", "street", "clutter"):
        scene = make_scene(2, "c", kind)
        rng = np.random.default_rng(2)
        frame = render(scene, random_intrinsics(rng, 48, 36, "c"), random_pose(scene, rng))
        assert frame.valid.mean() > 0.2, kind
        assert np.nanmax(frame.depth_m) <= 20.0
    c = random_intrinsics(np.random.default_rng(0), 64, 48, "c")
    assert (c.cx, c.cy, c.fx) == (32, 24, c.fy)  # its own camera model: centred, square
