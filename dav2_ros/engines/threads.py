"""How many CPU threads an engine should use by default: the cores this process may run on."""

from __future__ import annotations

import os


def default_threads() -> int:
    """Cores available to this process (respects CPU affinity / cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
