"""bench/scale_recovery.py runs end to end on tiny sequences and meets its own target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scale_recovery_bench_small_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale_recovery.py"), "--sequences", "2",
         "--frames", "2", "--size", "160x120", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads((tmp_path / "scale_recovery.json").read_text())
    # The one layout of bench results (bench/_record.py), which the docs render from.
    assert document["bench"] == "scale_recovery"
    assert document["command"].startswith("python bench/scale_recovery.py --sequences 2")
    assert document["machine"]["cores"] >= 1 and "avg_1m_start" in document["load"]
    assert "git_commit" in document
    (res,) = document["rows"]
    assert res["source"] == "synthetic" and res["frames"] == 4
    assert res["frames_with_metric_depth"] == 4
    methods = res["methods"]
    assert methods["sparse"]["abs_rel"] <= 1.10 * methods["oracle"]["abs_rel"]
    # The sparse samples hold 5 % gross outliers: the robust fit must beat plain least squares.
    assert methods["sparse"]["abs_rel"] < methods["naive_sparse"]["abs_rel"]
    assert "| synthetic |" in result.stdout  # the table it prints


def test_scale_recovery_bench_with_the_bundled_model(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale_recovery.py"), "--source", "model",
         "--sequences", "2", "--frames", "3", "--size", "160x120", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (res,) = json.loads((tmp_path / "scale_recovery.json").read_text())["rows"]
    assert res["source"] == "model"
    assert "metric: its inverse depth as disparity" in res["model"]  # the bundled model
    assert res["frames"] == 6 and res["frames_with_metric_depth"] >= 1
    # The estimator on every frame, published or not, lands near full-GT alignment.
    assert res["estimator_over_oracle"] <= 1.10, result.stdout
    assert result.returncode == (0 if res["within_10_percent"] else 1)
