"""Metric scale recovery as the node runs it (``ScaleSource``), on plain arrays: no rclpy,
no messages, no DDS. Sparse depth consistent with 1/depth = A·disparity + B (plus gross
outliers) gives metres; the documented fallback follows when it stops, contradicts the
model, or cannot be projected; a fresh interpreter shows rclpy is never imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dav2_ros.reporting import Reporter
from dav2_ros.ros.conversions import ImageDecodeError
from dav2_ros.scale.settings import ScaleSettings
from dav2_ros.scale.source import ERROR, OK, WARN, ScaleSource, SparseDepth
from dav2_ros.scale.sparse import transform_from_xyz_rpy

A_TRUE, B_TRUE = 0.2, 0.05
HEIGHT, WIDTH = 60, 80
K = [60.0, 0.0, 40.0, 0.0, 60.0, 30.0, 0.0, 0.0, 1.0]
T0 = 1_700_000_000.0  # image stamps (s), as ROS stamps are


class Log:
    """The node's logger stand-in: what the reporter said, by severity."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.reporter = Reporter(*(lambda text, level=level: self.lines.append((level, text))
                                   for level in ("info", "warn", "error")))  # fmt: skip

    def said(self, level: str, text: str) -> bool:
        return any(lv == level and text in line for lv, line in self.lines)


def disparity() -> np.ndarray:
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    return (1.0 + 1.5 * u / WIDTH + 0.5 * v / HEIGHT).astype(np.float32)


def expected_depth_m(values: np.ndarray) -> np.ndarray:
    return 1.0 / (A_TRUE * values.astype(np.float64) + B_TRUE)


def sparse_image(stamp_s: float, inverted: bool = False) -> SparseDepth:
    """Metres at half resolution: 30 % of pixels, 5 % of those gross outliers."""
    rng = np.random.default_rng(0)
    values = disparity()
    if inverted:  # near where the model says far: contradicts the prediction
        values = values.max() + values.min() - values
    depth_m = expected_depth_m(values[::2, ::2]).astype(np.float32)
    depth_m[rng.random(depth_m.shape) > 0.3] = np.nan
    outliers = (rng.random(depth_m.shape) < 0.05) & np.isfinite(depth_m)
    depth_m[outliers] = rng.uniform(0.3, 20.0, outliers.sum())
    return SparseDepth(stamp_s, "camera", lambda: depth_m)


def source(log: Log, lookup=None, **values) -> ScaleSource:
    settings = ScaleSettings.from_values({f"scale.{k}": v for k, v in values.items()})
    return ScaleSource(settings, log.reporter, lookup)


def frame(scale: ScaleSource, stamp_s: float, now_s: float | None = None, info=None):
    return scale.to_metres(
        disparity(), info, stamp_s, "camera", stamp_s if now_s is None else now_s
    )


def recovery_scenario() -> None:
    """waiting → tracking → holding → stale → tracking → rejected → tracking, on arrays."""
    log = Log()
    scale = source(log, mode="sparse", sparse_type="image", timeout_s=1.0)
    first = frame(scale, T0)
    assert first.depth_m is None and first.reading.state == "waiting"
    status = scale.status(T0)
    assert status.level == WARN and "no sparse_depth message received yet" in status.message
    assert log.said("warn", "metric scale waiting: no fit accepted yet")

    scale.add_sparse(sparse_image(T0 + 0.1))
    tracking = frame(scale, T0 + 0.1)
    assert tracking.reading.state == "tracking" and scale.status(T0 + 0.1).level == OK
    np.testing.assert_allclose(tracking.depth_m, expected_depth_m(disparity()), rtol=3e-3)
    reading = tracking.reading
    assert reading.a == pytest.approx(A_TRUE, rel=3e-3) and reading.b == pytest.approx(
        B_TRUE, abs=1e-3
    )
    assert 0.85 * reading.num_samples < reading.num_inliers < reading.num_samples  # outliers out
    assert reading.values()[:3] == [reading.a, reading.b, 1.0]  # depth/scale's order and code

    held = frame(scale, T0 + 0.4)  # no sparse stamp within 0.1 s: the last fit is used
    assert held.reading.state == "tracking" and held.reading.age_s == pytest.approx(0.3)
    few = np.full((HEIGHT // 2, WIDTH // 2), np.nan, np.float32)
    few[:2, :2] = 3.0  # too little data to fit: no verdict on the model
    scale.add_sparse(SparseDepth(T0 + 0.6, "camera", lambda: few))
    holding = frame(scale, T0 + 0.6)
    assert holding.reading.state == "holding" and holding.depth_m is not None
    assert scale.status(T0 + 0.6).level == WARN

    stale = frame(scale, T0 + 1.5)  # older than timeout_s: no metres any more
    assert stale.depth_m is None and stale.reading.state == "stale"
    assert stale.reading.age_s == pytest.approx(1.4)
    status = scale.status(T0 + 1.5)
    assert status.level == ERROR and "depth not published" in status.message
    assert "too few" in status.message

    scale.add_sparse(sparse_image(T0 + 2.0))  # sparse depth returns: metres again
    assert frame(scale, T0 + 2.0).reading.state == "tracking"

    scale.add_sparse(sparse_image(T0 + 2.5, inverted=True))
    rejected = frame(scale, T0 + 2.5)
    assert rejected.depth_m is None and rejected.reading.state == "rejected"
    message = scale.status(T0 + 2.5).message
    assert "is not positive" in message and "depth not published" in message

    scale.add_sparse(sparse_image(T0 + 3.0))
    assert frame(scale, T0 + 3.0).depth_m is not None
    values = scale.status(T0 + 3.0).values
    counts = ("fits_accepted", "fits_rejected", "sparse_msgs_received")
    assert [values[key] for key in counts] == ["3", "2", "5"]


def test_sparse_image_scale_recovers_and_falls_back_as_documented():
    recovery_scenario()


def test_recovery_runs_without_rclpy_in_a_fresh_interpreter():
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import test_scale_source\n"
        "test_scale_source.recovery_scenario()\n"
        "loaded = [m for m in ('rclpy', 'sensor_msgs', 'std_msgs') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print('recovered without', 'rclpy')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recovered without rclpy" in done.stdout


def cloud_in_lidar_frame(T_camera_from_lidar: np.ndarray) -> np.ndarray:
    """Points of a 'lidar' frame that land on every 3rd pixel at 1/(A·D + B) metres."""
    rows, cols = (grid.ravel() for grid in np.mgrid[0:HEIGHT:3, 0:WIDTH:3])
    z = expected_depth_m(disparity()[rows, cols])
    camera = np.stack([(cols - K[2]) * z / K[0], (rows - K[5]) * z / K[4], z, np.ones_like(z)], 1)
    return (camera @ np.linalg.inv(T_camera_from_lidar).T)[:, :3]


def test_point_cloud_in_another_frame_uses_the_extrinsic_or_the_transform_lookup():
    xyz, rpy = [0.05, -0.1, 0.02], [np.pi / 2, -np.pi / 2, 0.0]
    T = transform_from_xyz_rpy(xyz, rpy)
    points = cloud_in_lidar_frame(T)
    info = SimpleNamespace(k=K, width=WIDTH, height=HEIGHT)
    extrinsic = {f"extrinsic.{n}": v for n, v in zip(("x", "y", "z", "roll", "pitch", "yaw"),
                                                      xyz + rpy, strict=True)}  # fmt: skip
    log = Log()
    scale = source(log, mode="sparse", sparse_type="points", **extrinsic)
    assert "scale.extrinsic" in scale.summary()
    scale.add_sparse(SparseDepth(T0, "lidar", lambda: points))
    scaled = frame(scale, T0, info=info)
    np.testing.assert_allclose(scaled.depth_m, expected_depth_m(disparity()), rtol=1e-3)
    assert scaled.reading.num_samples == len(points)

    asked = []

    def lookup(camera_frame: str, cloud_frame: str, stamp_s: float) -> np.ndarray:
        asked.append((camera_frame, cloud_frame, stamp_s))
        return T

    scale = source(log, lookup, mode="sparse", sparse_type="points")  # extrinsic unused
    assert "TF2" in scale.summary()
    scale.add_sparse(SparseDepth(T0, "lidar", lambda: points))
    assert frame(scale, T0, info=info).reading.a == pytest.approx(A_TRUE, rel=1e-3)
    assert asked == [("camera", "lidar", T0)]


def test_unprojectable_or_malformed_sparse_data_is_said_and_changes_nothing():
    log = Log()
    scale = source(log, mode="sparse", sparse_type="points")
    scale.add_sparse(SparseDepth(T0, "", lambda: np.zeros((5, 3))))
    assert frame(scale, T0, info=None).reading.state == "waiting"
    assert log.said("error", "cannot project sparse_depth points: no camera_info received")
    uncalibrated = SimpleNamespace(k=[0.0] * 9, width=WIDTH, height=HEIGHT)
    log = Log()  # a fresh reporter: the same kind of problem is said once per 5 s
    scale.reporter = log.reporter
    frame(scale, T0, info=uncalibrated)
    assert log.said("error", "cannot project sparse_depth points: K is zero (uncalibrated)")

    def broken_lookup() -> np.ndarray:
        raise LookupError("frame 'lidar' does not exist")

    scale = source(log, lambda *_: broken_lookup(), mode="sparse", sparse_type="points")
    scale.add_sparse(SparseDepth(T0, "lidar", lambda: np.zeros((5, 3))))
    frame(scale, T0, info=SimpleNamespace(k=K, width=WIDTH, height=HEIGHT))
    assert log.said("error", "no TF from lidar to camera: frame 'lidar' does not exist")

    def bad_message() -> np.ndarray:
        raise ImageDecodeError("unsupported image encoding 'mono16'", "encoding")

    images = source(log, mode="sparse", sparse_type="image")
    images.add_sparse(SparseDepth(T0, "camera", bad_message))
    assert frame(images, T0).reading.state == "waiting"
    assert log.said("error", "sparse_depth dropped: unsupported image encoding 'mono16'")
    assert log.reporter.problem() is None  # the scale's own status carries its state


def test_fixed_mode_applies_the_calibration_to_every_frame():
    scale = source(Log(), mode="fixed", a=A_TRUE, b=B_TRUE)
    scaled = frame(scale, T0)
    np.testing.assert_allclose(scaled.depth_m, expected_depth_m(disparity()), rtol=1e-6)
    assert scaled.reading.values()[:3] == [A_TRUE, B_TRUE, 4.0]  # 4 = fixed
    status = scale.status(T0)
    assert (status.level, status.message) == (OK, "fixed a=0.2 b=0.05")
