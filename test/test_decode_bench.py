"""bench/decode.py runs end to end on a small frame and records a row per colour encoding,
with the git commit it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dav2_ros.ros.encodings import COLOUR_ENCODINGS

ROOT = Path(__file__).resolve().parents[1]


def test_decode_bench_times_every_colour_encoding(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "decode.py"), "--size", "64x48", "--runs", "3",
         "--warmup", "1", "--out", str(tmp_path / "decode.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((tmp_path / "decode.json").read_text())
    rows = record["rows"]
    assert [r["encoding"] for r in rows] == list(COLOUR_ENCODINGS)
    assert all(0 <= r["median_ms"] <= r["p90_ms"] and r["runs"] == 3 for r in rows)
    assert all((r["width"], r["height"]) == (64, 48) for r in rows)
    assert len(record["git_commit"]) == 40 and record["settings"]["opencv_threads"] == 1
    assert "| `yuv422_yuy2` |" in done.stdout
