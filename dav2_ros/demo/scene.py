"""The synthetic camera's eyes: a camera moving through a procedural ``dav2_ros.sim`` scene.

ROS-free. Ray casting with shading costs ~0.5 s per 640×480 frame on a small
CPU, too slow to render live at 10 Hz next to the model, so the clip is rendered
once at start-up and then played back and forth (ping-pong): the motion stays
smooth and the measured run is not slowed by rendering.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from dav2_ros.sim import Frame, Intrinsics, Scene, make_scene, render, smooth_trajectory

# The clip spans this share of the sim's closed-loop trajectory: a short walk.
LOOP_SHARE = 0.12


def render_clip(
    width: int,
    height: int,
    n_frames: int,
    hfov_deg: float = 70.0,
    seed: int = 0,
    kind: str = "room",
    style: str = "a",
    progress: Callable[[int, int, float], None] | None = None,
) -> list[Frame]:
    """``n_frames`` consecutive frames of a smooth camera walk through one scene."""
    if n_frames < 1:
        raise ValueError(f"the clip needs at least one frame, got n_frames={n_frames}")
    scene = make_scene(seed, style, kind)
    intrinsics = Intrinsics.from_fov(width, height, hfov_deg)
    loop = smooth_trajectory(scene, max(n_frames, round(n_frames / LOOP_SHARE)), seed=seed)
    first = most_open_segment(scene, loop, n_frames, hfov_deg)
    frames = []
    start_s = time.monotonic()
    for index in range(n_frames):
        pose = loop[(first + index) % len(loop)]
        frames.append(render(scene, intrinsics, pose, noise_seed=index))
        if progress is not None:
            progress(index + 1, n_frames, time.monotonic() - start_s)
    return frames


def most_open_segment(scene: Scene, loop: list[np.ndarray], n_frames: int, hfov_deg: float) -> int:
    """Start of the ``n_frames`` stretch of ``loop`` whose closest view is the most open.

    A camera pressed against a wall or grazing a chair makes a useless demo; a coarse
    32×24 ray cast per pose (cheap) scores each view by its nearest surface. (By the
    median depth, the widened generator's clip passed an object 0.12 m from the lens.)
    """
    probe = Intrinsics.from_fov(32, 24, hfov_deg)
    openness = []
    for pose in loop:
        depth_m = scene.z_depth(probe, pose)
        finite = depth_m[np.isfinite(depth_m)]
        openness.append(float(finite.min()) if finite.size else 0.0)
    scores = [
        min(openness[(start + i) % len(loop)] for i in range(n_frames))
        for start in range(len(loop))
    ]
    return int(np.argmax(scores))


def ping_pong_index(tick: int, n_frames: int) -> int:
    """Frame to show at ``tick``: 0, 1, …, n−1, n−2, …, 1, 0, 1, … (no repeated ends)."""
    if n_frames <= 1:
        return 0
    period = 2 * (n_frames - 1)
    phase = tick % period
    return phase if phase < n_frames else period - phase
