"""What every bench result file records beside its numbers (shared by the bench scripts)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from dav2_ros.commands.bench import machine_info, versions


def run_meta(script: str, started_s: float, **extra) -> dict:
    """The command, machine, versions, wall time (since ``started_s``, perf_counter) and
    date of this run, plus ``extra`` entries."""
    return {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "python": platform.python_version(),
        "machine": machine_info(),
        "versions": versions(),
        **extra,
        "wall_s": round(time.perf_counter() - started_s, 1),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(out: Path, stem: str, meta: dict, rows: list, table: str) -> None:
    """``out/stem.json`` ({meta, rows}) and ``out/stem.md`` (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / f"{stem}.md").write_text(table)
