"""Pinhole intrinsics and camera poses (optical frame: x right, y down, z forward)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dav2_ros.geometry.intrinsics import CameraIntrinsics
from dav2_ros.sim.scene import CAMERA_HEIGHT_M, HELD_OUT_STYLES, Scene


@dataclass(frozen=True)
class Intrinsics(CameraIntrinsics):
    """The geometry package's pinhole camera plus what a renderer needs (K, FOV).

    Pixel centres sit at integer + 0.5 (OpenCV convention).
    """

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fx <= 0 or self.fy <= 0:
            raise ValueError(
                f"intrinsics need positive size and focal lengths, got {self.width}x"
                f"{self.height}, fx={self.fx}, fy={self.fy}"
            )

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the matrix is K everywhere in the maths
        return self.k_matrix()

    def with_focal(self, fx_px: float) -> Intrinsics:
        """The same camera through a lens of focal length ``fx_px``: fy keeps its ratio to
        fx, the principal point and the image size stay."""
        return Intrinsics(
            fx_px, fx_px * self.fy / self.fx, self.cx, self.cy, self.width, self.height
        )

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        fx = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
        return cls(fx, fx, width / 2, height / 2, width, height)


def random_intrinsics(
    rng: np.random.Generator, width: int, height: int, style: str = "a"
) -> Intrinsics:
    """A random pinhole camera for ``style``.

    Training styles: horizontal FOV 40-100 deg (most often about 65), principal point
    jittered by up to 3 % of the size, slightly non-square pixels. The held-out style
    "c" is another camera model: FOV 50-80 deg, exactly centred, square pixels.
    """
    if style in HELD_OUT_STYLES:
        return Intrinsics.from_fov(width, height, rng.uniform(50.0, 80.0))
    hfov_deg = rng.triangular(40.0, 65.0, 100.0)
    base = Intrinsics.from_fov(width, height, hfov_deg)
    aspect = rng.uniform(0.98, 1.02)  # slightly non-square pixels, as real calibrations give
    return Intrinsics(
        base.fx,
        base.fx * aspect,
        width / 2 + rng.uniform(-0.03, 0.03) * width,
        height / 2 + rng.uniform(-0.03, 0.03) * height,
        width,
        height,
    )


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple = (0.0, 0.0, 1.0)) -> np.ndarray:
    """4x4 camera-to-world pose of an optical-frame camera at ``eye`` looking at ``target``.

    The world is z-up; the camera's y axis points down in the image.
    """
    eye = np.asarray(eye, np.float64)
    forward = np.asarray(target, np.float64) - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    forward /= norm
    right = np.cross(forward, np.asarray(up, np.float64))
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down: any right vector
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def _pose_from_angles(eye: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    direction = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    pose = look_at(eye, eye + direction)
    c, s = np.cos(roll), np.sin(roll)
    roll_cam = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    pose[:3, :3] = pose[:3, :3] @ roll_cam
    return pose


def random_pose(
    scene: Scene,
    rng: np.random.Generator,
    min_median_depth_m: float = 0.6,
    tries: int = 20,
) -> np.ndarray:
    """A camera pose inside the scene's camera region that does not stare into a wall.

    The pitch follows the height: a camera near the floor looks level or up, one on a
    tall mast looks down. Candidates are checked with a coarse 16x12 ray cast: the
    median hit distance must exceed ``min_median_depth_m``. Falls back to the last one.
    """
    lo, hi = scene.camera_region
    pose = np.eye(4)
    probe = Intrinsics.from_fov(16, 12, 70.0)
    mid_m = sum(CAMERA_HEIGHT_M) / 2
    for _ in range(tries):
        eye = rng.uniform(lo, hi)
        yaw = scene.view_yaw + rng.uniform(-1, 1) * scene.view_yaw_spread
        pitch_deg = rng.uniform(-20.0, 10.0) - 10.0 * (eye[2] - mid_m)
        pitch = np.radians(np.clip(pitch_deg, -40.0, 20.0))
        roll = np.radians(rng.normal(0.0, 3.0))
        pose = _pose_from_angles(eye, yaw, pitch, roll)
        depth_m = scene.z_depth(probe, pose)
        finite = depth_m[np.isfinite(depth_m)]
        if finite.size == 0 or (np.median(finite) >= min_median_depth_m and finite.min() > 0.05):
            return pose
    return pose


def smooth_trajectory(scene: Scene, n_frames: int, seed: int = 0) -> list[np.ndarray]:
    """``n_frames`` camera-to-world poses along a smooth closed loop in the camera region.

    Position and heading are sums of low-frequency sines, so consecutive frames
    differ by a small, continuous motion (the demo's synthetic camera uses this).
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    rng = np.random.default_rng(seed)
    lo, hi = (np.asarray(v, np.float64) for v in scene.camera_region)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    phase = rng.uniform(0, 2 * np.pi, size=5)
    poses = []
    for i in range(n_frames):
        t = 2 * np.pi * i / n_frames
        eye = centre + half * 0.8 * np.array(
            [np.sin(t + phase[0]), np.sin(2 * t + phase[1]), 0.5 * np.sin(t + phase[2])]
        )
        yaw = scene.view_yaw + 0.6 * scene.view_yaw_spread * np.sin(t + phase[3])
        pitch = np.radians(-5.0 + 5.0 * np.sin(3 * t + phase[4]))
        poses.append(_pose_from_angles(eye, yaw, pitch, 0.0))
    return poses
