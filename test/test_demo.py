"""`dav2 demo` end to end: camera, real depth_node and monitor as processes over Fast DDS.

A tiny random metric checkpoint (vitt) keeps the node fast; the numbers it gets
are meaningless, so the tests check that every number was measured and every
file written, not how good the depth is.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import open3d as o3d
import psutil
import pytest
import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, save_model

pytestmark = pytest.mark.ros
DAV2 = [sys.executable, "-m", "dav2_ros.cli", "demo"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = DepthAnythingV2("vitt", "metric", 10.0)
    meta = ModelMeta("vitt", "metric", 10.0, input_size=70)
    return save_model(model, meta, tmp_path_factory.mktemp("ckpt") / "tiny")


def _demo_args(checkpoint: Path, out: Path, duration_s: float) -> list[str]:
    return [
        *DAV2,
        "--duration", str(duration_s),
        "--size", "160x120",
        "--rate", "8",
        "--backend", "torch",
        "--checkpoint", str(checkpoint),
        "--clip-frames", "4",
        "--input-size", "70",
        "--startup-timeout", "60",
        "--out", str(out),
    ]  # fmt: skip


def test_demo_run_writes_summary_panels_and_point_cloud(tiny_checkpoint, tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        _demo_args(tiny_checkpoint, out, 3.0), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "latency p50" in result.stdout  # the live line
    assert "| AbsRel vs ground truth" in result.stdout  # the summary table

    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_out"] >= 3 and summary["frames_in"] >= summary["frames_out"]
    assert summary["frames_scored"] >= 1 and summary["point_clouds"] >= 1
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] < 10_000
    assert math.isfinite(summary["abs_rel"]) and 0.0 <= summary["delta1"] <= 1.0
    assert summary["engine_ms"]["p50"] > 0 and summary["engine_ms"]["source"]
    expected = summary["latency_ms"]["p50"] - summary["engine_ms"]["p50"]
    assert summary["overhead_ms"] == pytest.approx(expected, abs=0.02)
    assert summary["config"]["image_size"] == [160, 120]
    assert summary["node_diagnostics"]["engine"].startswith("torch")

    panel = cv2.imread(str(out / summary["files"]["panels"][0]))
    assert panel is not None and panel.shape[1] == 4 * 320
    cloud = o3d.io.read_point_cloud(str(out / summary["files"]["ply"]))
    assert len(cloud.points) == summary["ply_points"] > 0
    assert cloud.has_colors()


def test_ctrl_c_stops_every_child_and_still_writes_the_summary(tiny_checkpoint, tmp_path):
    out = tmp_path / "demo"
    runner = subprocess.Popen(
        _demo_args(tiny_checkpoint, out, 120.0),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like a terminal's foreground job: SIGINT hits only it
    )
    try:
        children: list[psutil.Process] = []
        deadline = time.monotonic() + 90
        for line in runner.stdout:  # wait for the first live line: all three are up
            children = psutil.Process(runner.pid).children(recursive=True) or children
            if "latency p50" in line or time.monotonic() > deadline:
                break
        assert len(children) >= 3, "camera, node and monitor should be running"
        os.killpg(runner.pid, signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
        assert runner.returncode == 130
        assert "| AbsRel vs ground truth" in output  # the table of what was measured
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"children outlived the demo: {alive}"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["frames_out"] >= 1 and summary["config"]["duration_s"] == 120.0
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
