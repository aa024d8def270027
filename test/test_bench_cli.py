"""`dav2 bench`: the JSON record a benchmark run leaves, and its statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dav2_ros.commands.bench import STAGES, measure, summarise, synthetic_frame

REQUIRED_KEYS = {
    "backend", "encoder", "input_size", "device", "iterations",
    "preprocess_ms", "infer_ms", "postprocess_ms", "total_ms",
}  # fmt: skip


def test_bench_json_via_subprocess_has_the_required_keys(tmp_path):
    out = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "dav2_ros.cli", "bench", "--backend", "torch",
        "--encoder", "vitt6", "--input-size", "126", "--image-size", "168x126",
        "--iterations", "3", "--warmup", "1", "--threads", "1", "--json", str(out),
    ]  # fmt: skip
    env = {**os.environ, "DAV2_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result.keys() >= REQUIRED_KEYS
    assert result["backend"] == "torch" and result["encoder"] == "vitt6"
    assert result["input_size"] == 126 and result["input_hw"] == [126, 168]
    assert result["device"] == "cpu" and result["iterations"] == 3
    for stage in STAGES:
        assert 0 <= result[f"{stage}_ms"] <= result[f"{stage}_p90_ms"]
    assert result["total_ms"] >= result["infer_ms"] > 0
    assert result["machine"]["cores"] >= 1 and "torch" in result["versions"]
    assert "median ms" in done.stdout and "infer" in done.stdout  # the table


def test_bench_uses_the_checkpoints_own_input_size_by_default(tmp_path):
    from dav2_ros.model.checkpoints import default_checkpoint, load_model

    weights = default_checkpoint()

    out = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "dav2_ros.cli", "bench", "--checkpoint", str(weights),
        "--image-size", "168x126", "--iterations", "2", "--warmup", "1", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    own_size = load_model(weights).meta.input_size
    assert own_size != 518  # otherwise this test could not tell the two apart
    assert json.loads(out.read_text())["input_size"] == own_size


def test_bench_rejects_a_malformed_image_size():
    done = subprocess.run(
        [sys.executable, "-m", "dav2_ros.cli", "bench", "--image-size", "640by480"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "WIDTHxHEIGHT" in done.stderr


class FixedEstimator:
    """Stands in for a DepthEstimator with scripted stage timings (tests the statistics)."""

    def __init__(self, infer_ms: list[float]) -> None:
        self.infer_ms = iter(infer_ms)

    def predict(self, image):
        from dav2_ros.engines.pipeline import Prediction

        return Prediction(np.zeros((2, 2), np.float32), "relative", 1.0, next(self.infer_ms), 0.5)


def test_measure_drops_warmup_and_summarise_gives_median_and_p90():
    times = measure({"a": FixedEstimator([1000.0, 10, 20, 30, 40])}, None, iterations=4, warmup=1)
    summary = summarise(times["a"])
    assert times["a"]["infer"] == [10, 20, 30, 40]  # the 1000 ms warm-up is not counted
    assert summary["infer_ms"] == 25.0
    assert summary["infer_p90_ms"] == pytest.approx(37.0)
    assert summary["total_ms"] == 26.5


def test_synthetic_frame_is_deterministic_and_textured():
    a, b = synthetic_frame(48, 64), synthetic_frame(48, 64)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert a.std() > 20


def test_matrix_script_exists_and_documents_itself():
    script = Path(__file__).resolve().parents[1] / "bench" / "run_matrix.py"
    assert script.is_file()
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--encoders" in done.stdout
