"""Child processes that never outlive the demo, on a private loopback-only DDS domain.

Each child runs in its own session (process group), so a terminal's Ctrl-C
reaches only the orchestrator, which then stops every child in order:
SIGINT (let rclpy shut down cleanly) → wait → SIGTERM → wait → SIGKILL. Should
the orchestrator itself be killed outright, Linux sends each child SIGTERM
(``PR_SET_PDEATHSIG``), so no node is left running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# Fast DDS / RTPS well-known ports (RTPS 2.x §9.6.1.1): PB + DG·domain + d0/d1.
_PORT_BASE, _DOMAIN_GAIN = 7400, 250
_DISCOVERY_OFFSETS = (0, 10, 12)  # multicast metatraffic, first two participants' unicast
MAX_DOMAIN_ID = 101  # higher ids collide with Linux ephemeral ports (ROS 2 docs)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """Runs in the child just before exec: SIGTERM from the kernel when the parent dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _port_in_use(port: int) -> bool:
    # No SO_REUSEADDR: binding fails if a DDS participant already holds the port.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return True
    return False


def domain_in_use(domain_id: int) -> bool:
    """Whether any DDS participant on this machine seems to use ``domain_id``."""
    base = _PORT_BASE + _DOMAIN_GAIN * domain_id
    return any(_port_in_use(base + offset) for offset in _DISCOVERY_OFFSETS)


def pick_free_domain_id(exclude: Sequence[int] = ()) -> int:
    """A ROS_DOMAIN_ID in 1..101 that no participant on this machine uses right now."""
    candidates = [d for d in range(1, MAX_DOMAIN_ID + 1) if d not in exclude]
    random.shuffle(candidates)
    for domain_id in candidates:
        if not domain_in_use(domain_id):
            return domain_id
    raise RuntimeError(
        "no free ROS_DOMAIN_ID in 1..101 on this machine (every one has DDS traffic); "
        "stop other ROS processes or pass --domain-id"
    )


def private_ros_env(domain_id: int) -> dict[str, str]:
    """This process's environment with DDS confined to loopback and ``domain_id``."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated on Jazzy; the range above replaces it
    env["PYTHONUNBUFFERED"] = "1"  # live lines appear as they are printed
    return env


class ChildProcesses:
    """Starts named children in their own process groups and stops them all, always."""

    def __init__(self) -> None:
        self._children: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, Path] = {}
        atexit.register(self.stop_all)

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path | None = None
    ) -> subprocess.Popen:
        """Start ``argv``; stdout+stderr go to ``log_path`` (None: inherit the terminal)."""
        stream = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            stream = log_path.open("wb")
            self._logs[name] = log_path
        try:
            child = subprocess.Popen(
                list(argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT if stream else None,
                start_new_session=True,  # own process group: we decide when it stops
                preexec_fn=_die_with_parent,
            )
        finally:
            if stream is not None:
                stream.close()  # the child holds its own descriptor
        self._children[name] = child
        return child

    def exited(self) -> dict[str, int]:
        """Children that have exited, with their return codes."""
        return {n: c.returncode for n, c in self._children.items() if c.poll() is not None}

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self._logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str, grace_s: float = 8.0) -> int | None:
        """Stop one child (see ``stop_all``); its return code, None if never started."""
        self.stop_all([name], grace_s)
        child = self._children.get(name)
        return None if child is None else child.poll()

    def stop_all(self, names: Sequence[str] | None = None, grace_s: float = 8.0) -> None:
        """SIGINT → wait ``grace_s`` → SIGTERM → wait → SIGKILL, to each child's whole group.

        All children are signalled together, so their shutdowns overlap.
        """
        chosen = [self._children.get(n) for n in (names or list(self._children))]
        chosen = [c for c in chosen if c is not None]
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            running = [c for c in chosen if c.poll() is None]
            if not running:
                break
            for child in running:
                _signal_group(child.pid, sig)
            _wait(running, wait_s)
        for child in chosen:
            # The leader may be gone while something it forked still runs: clear the group.
            _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait(children: Sequence[subprocess.Popen], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(c.poll() is None for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
