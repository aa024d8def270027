"""The one layout and the one writer of every bench result (``bench/results/*.json``).

A result file is one JSON object::

    {"bench": "transport",                      # the script's name
     "command": "python bench/transport.py --rates 10",
     "git_commit": "1a2b3c…", "git_dirty": false, # the code that ran
     "date": "2026-11-30T10:00:00Z", "wall_s": 52.1,
     "machine": {"cpu": …, "cores": …, "hostname": …, "gpu": …},
     "load": {"avg_1m_start": 1.2, "avg_1m_end": 1.9},
     "versions": {"python": …, "torch": …, …},
     "settings": {…},                            # what the script was asked to do
     "summary": {…},                             # figures derived from the rows (optional)
     "rows": [{…}, …]}                           # the measurements, one dict each

``bench/render_docs.py`` reads this layout to build the tables of the docs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dav2_ros.commands.bench import machine_info, versions

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = RESULTS_DIR.parent.parent
REQUIRED_KEYS = ("bench", "command", "git_commit", "date", "machine", "load", "rows")


def load_average_1m() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def git_state(repo: Path = REPO) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the bench runs from; (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


class BenchRun:
    """Started at the top of a bench's ``main``: remembers the time and the load then."""

    def __init__(self, script: str, argv: list[str] | None = None, runner: str = "python") -> None:
        self.bench = Path(script).stem
        args = sys.argv[1:] if argv is None else argv
        self.command = " ".join([runner, f"bench/{Path(script).name}", *args])
        self.started_s = time.perf_counter()
        self.load_start = load_average_1m()

    def record(
        self, rows: list[dict], settings: dict | None = None, summary: dict | None = None
    ) -> dict[str, Any]:
        """The result in the one layout (see the module docstring)."""
        commit, dirty = git_state()
        machine = {k: v for k, v in machine_info().items() if k != "loadavg_1m"}
        document: dict[str, Any] = {
            "bench": self.bench,
            "command": self.command,
            "git_commit": commit,
            "git_dirty": dirty,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_s": round(time.perf_counter() - self.started_s, 1),
            "machine": machine,
            "load": {"avg_1m_start": self.load_start, "avg_1m_end": load_average_1m()},
            "versions": versions(),
            "settings": settings or {},
        }
        if summary:
            document["summary"] = summary
        document["rows"] = rows
        return document


def check_layout(document: dict, source: str = "result") -> None:
    """ValueError naming what is missing when ``document`` is not in the one layout."""
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise ValueError(
            f"{source}: not a bench result in the layout of bench/_record.py "
            f"(missing {', '.join(missing)}); write it through bench/_record.write_results"
        )
    if not isinstance(document["rows"], list):
        raise ValueError(f"{source}: 'rows' must be a list, got {type(document['rows']).__name__}")


def write_results(path: Path, document: dict, table: str | None = None) -> Path:
    """Write ``document`` to ``path`` (JSON) and, given a Markdown ``table``, the same
    path with ``.md`` beside it. Returns the JSON path."""
    check_layout(document, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    if table is not None:
        path.with_suffix(".md").write_text(table if table.endswith("\n") else table + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def default_path(stem: str) -> Path:
    """``bench/results/<stem>-<date>.json``."""
    return RESULTS_DIR / f"{stem}-{time.strftime('%Y-%m-%d', time.gmtime())}.json"
