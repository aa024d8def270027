"""Where a result came from: the git revision of the code that produced it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision(repo: Path | None = None) -> str:
    """``git describe``-like revision of the training code, '+dirty' when modified."""
    cwd = repo or Path(__file__).resolve().parent
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        # Only the code that makes the data and the model counts as "dirty".
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "training", "dav2_ros/sim", "dav2_ros/model"],
            cwd=top[0],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return top[1] + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"
