"""`dav2 demo --sparse` over real Fast DDS: the camera's LiDAR stream and the node's sparse fit.

The demo camera runs as its own process; a reader in this process checks what it puts
on ``sparse_depth`` against the ground truth of the same stamp: the beam pattern, the
noise, NaN elsewhere, one header for both. Then the whole demo runs with ``--sparse``
and the bundled metric model (small image, short window): the summary must carry the
model's own metric errors and those after the sparse fit, on the same frames.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from test_ros_support import ros_client, wait_until

from dav2_ros.demo.lidar import BeamPattern
from dav2_ros.demo.processes import ChildProcesses
from dav2_ros.ros.conversions import image_to_array

pytestmark = pytest.mark.ros

WIDTH, HEIGHT, HFOV_DEG = 320, 240, 70.0


def _pixel_rays(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elevation (deg) and z-depth per range of each pixel centre's ray (the camera's K:
    hfov 70°, principal point at W/2, H/2)."""
    fx = 0.5 * WIDTH / np.tan(np.radians(HFOV_DEG) / 2)
    x, y = (cols + 0.5 - WIDTH / 2) / fx, (rows + 0.5 - HEIGHT / 2) / fx
    return np.degrees(np.arctan2(-y, np.hypot(x, 1.0))), 1.0 / np.sqrt(x * x + y * y + 1.0)


def test_camera_publishes_lidar_returns_on_a_beam_pattern_with_noise(tmp_path):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    pattern = BeamPattern()  # the camera's defaults: 16 beams over ±15°, σ 3 cm, 1 % outliers
    children = ChildProcesses()
    params = {"width": WIDTH, "height": HEIGHT, "clip_frames": 2, "rate_hz": 10.0}
    argv = [sys.executable, "-m", "dav2_ros.demo.camera", "--ros-args"]
    for name, value in params.items():
        argv += ["-p", f"{name}:={value}"]
    with ros_client() as client:
        client.subscribe("sparse_depth", Image, qos_profile_sensor_data)
        client.subscribe(
            "ground_truth/depth",
            Image,
            QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
        )
        children.start("camera", argv, dict(os.environ), tmp_path / "camera.log")
        try:
            assert wait_until(lambda: len(client.messages("sparse_depth")) >= 4, 60), (
                children.log_tail("camera")
            )
        finally:
            children.stop_all()
        truth = {_stamp(m): m for m in client.messages("ground_truth/depth")}
        sparse_msgs = client.messages("sparse_depth")

    errors = []
    for msg in sparse_msgs:
        gt_msg = truth.get(_stamp(msg))
        assert gt_msg is not None, "every sparse_depth stamp is a camera frame's stamp"
        assert msg.header.frame_id == gt_msg.header.frame_id == "camera_optical_frame"
        assert msg.encoding == "32FC1" and (msg.width, msg.height) == (WIDTH, HEIGHT)
        sparse, gt = image_to_array(msg, ("32FC1",)), image_to_array(gt_msg, ("32FC1",))
        rows, cols = np.nonzero(np.isfinite(sparse))
        # NaN elsewhere: a few hundred returns, not an image, all where the truth is valid.
        assert 16 * 40 < rows.size < 16 * WIDTH and np.isfinite(gt[rows, cols]).all()
        # On the pattern: each return's ray lies on one of the 16 beam elevations (within
        # the pixel's own size, ~0.25° here), and every beam is seen.
        elevation, z_per_range = _pixel_rays(rows, cols)
        beams = np.degrees(pattern.elevations_rad())
        nearest = np.abs(elevation[:, None] - beams[None, :]).min(axis=1)
        assert nearest.max() < 0.3, nearest.max()
        assert set(np.abs(elevation[:, None] - beams[None, :]).argmin(axis=1)) == set(range(16))
        # Range noise and outliers: error in range = error in depth · range / depth.
        errors.append((sparse[rows, cols] - gt[rows, cols]) / z_per_range)
    error_m = np.concatenate(errors)
    outliers = np.abs(error_m) > 5 * pattern.range_noise_m
    assert 0 < outliers.mean() < 3 * pattern.outlier_ratio + 0.01, outliers.mean()
    sigma = float(np.std(error_m[~outliers]))
    assert 0.7 * pattern.range_noise_m < sigma < 1.3 * pattern.range_noise_m, sigma
    assert abs(float(np.mean(error_m[~outliers]))) < 0.01  # unbiased


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_demo_sparse_reports_metric_errors_without_and_with_the_fit(tmp_path):
    out = tmp_path / "demo"
    args = [
        *(sys.executable, "-m", "dav2_ros.cli", "demo", "--sparse"),
        *("--duration", "3", "--size", "160x120", "--rate", "8", "--clip-frames", "4"),
        *("--backend", "torch", "--startup-timeout", "60", "--out", str(out)),
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "metric AbsRel: model alone | with sparse fit" in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    sparse = summary["sparse"]
    assert sparse["model_depth_type"] == "metric"  # the bundled model, re-fitted by the node
    assert sparse["frames_compared"] == summary["frames_scored"] >= 1
    alone, fitted = sparse["model_alone"], sparse["with_sparse_fit"]
    assert fitted["abs_rel"] == summary["abs_rel"]  # the node's published depth
    assert math.isfinite(alone["abs_rel"]) and 0 <= alone["delta1"] <= 1
    # The LiDAR (3 cm noise, 1 % outliers) fixes the model's metric scale on these frames.
    assert fitted["abs_rel"] < alone["abs_rel"] and fitted["delta1"] > alone["delta1"]
    assert sparse["fits_accepted"] >= 1 and sparse["frames_withheld"] >= 0
    panel = cv2.imread(str(out / summary["files"]["panels"][0]))
    assert panel is not None and panel.shape[1] == 5 * 320  # camera+LiDAR, alone, fit, gt, error
