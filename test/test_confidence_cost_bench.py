"""bench/confidence_cost.py runs end to end on a tiny checkpoint with a head: one row per
confidence case, the flip case running twice the inferences of the baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, save_model

ROOT = Path(__file__).resolve().parents[1]


def test_confidence_cost_bench_times_every_case(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DepthAnythingV2("vitt", "metric", 10.0, confidence_head=True)
    checkpoint = save_model(model, ModelMeta("vitt", "metric", 10.0, input_size=42), tmp_path / "m")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "confidence_cost.py"),
         "--checkpoint", str(checkpoint), "--backend", "torch", "--threads", "1",
         "--image-size", "64x48", "--rounds", "2", "--frames", "2",
         "--out", str(tmp_path / "cost.json")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((tmp_path / "cost.json").read_text())
    rows = {row["case"]: row for row in record["rows"]}
    assert list(rows) == [
        "without head, off", "without head, flip", "with head, off", "with head, head",
    ]  # fmt: skip
    assert all(
        row["frames"] == 4 and 0 < row["median_ms"] <= row["p90_ms"] for row in rows.values()
    )
    assert rows["without head, off"]["ratio_to_baseline"] == 1.0
    assert len(record["git_commit"]) == 40 and record["settings"]["image_size"] == "64x48"
    assert "| without head, flip |" in done.stdout
