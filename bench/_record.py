"""What every bench result file records beside its numbers (shared by the bench scripts)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from dav2_ros.commands.bench import machine_info, versions


def git_commit() -> str:
    """HEAD of the checkout these scripts run from, with "+dirty" when tracked files have
    uncommitted changes (the numbers then belong to no commit); "unknown" outside git."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        head, changes = git("rev-parse", "HEAD"), git("status", "--porcelain", "-uno")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if changes else "")


def run_meta(script: str, started_s: float, **extra) -> dict:
    """The command, git commit, machine, versions, wall time (since ``started_s``,
    perf_counter) and date of this run, plus ``extra`` entries."""
    return {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "git_commit": git_commit(),
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
