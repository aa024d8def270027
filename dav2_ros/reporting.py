"""One reporter for a long-running process: problems logged without flooding, and the
latest one still unresolved kept for its status (``/diagnostics`` in the node).

No ROS here: the reporter writes through the info, warn and error functions its owner
gives it (the node's rclpy logger), so the plain-logic parts it serves (engine
supervision, metric scale) never log themselves and stay testable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

THROTTLE_S = 5.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class Problem:
    kind: str
    text: str
    error: bool  # ERROR; else WARN


class Reporter:
    """Throttles each *kind* of problem on its own (one problem never hides another),
    says ``once`` problems a single time until they are resolved, and remembers which
    problems are still unresolved.

    Kinds are ``family:detail`` strings; ``resolve("family")`` clears the whole family.
    """

    def __init__(
        self,
        info: Log,
        warn: Log,
        error: Log,
        throttle_s: float = THROTTLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Each severity is logged from its own line: rclpy's logger ties one severity to
        # each call site, and refuses a second.
        self._info, self._warn, self._error = info, warn, error
        self._throttle_s = throttle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged_s: dict[str, float] = {}
        self._said_once: set[str] = set()
        self._active: dict[str, Problem] = {}  # insertion order = report order

    def info(self, text: str) -> None:
        self._info(text)

    def warn(self, text: str) -> None:
        """A one-off warning (not a lasting problem): logged every time."""
        self._warn(text)

    def report(
        self, kind: str, text: str, *, error: bool = False, once: bool = False, status: bool = True
    ) -> None:
        """A problem of ``kind``: logged (throttled, or ``once``) and, with ``status``, kept
        as unresolved for the status until ``resolve`` (status=False: log only, for parts
        that publish a status of their own)."""
        with self._lock:
            if status:
                self._active.pop(kind, None)
                self._active[kind] = Problem(kind, text, error)
            if once:
                if kind in self._said_once:
                    return
                self._said_once.add(kind)
            now_s = self._clock()
            if now_s - self._last_logged_s.get(kind, -float("inf")) < self._throttle_s:
                return
            self._last_logged_s[kind] = now_s
        if error:
            self._error(text)
        else:
            self._warn(text)

    def resolve(self, family: str) -> None:
        """The cause of ``family`` (a kind, or every ``family:…`` kind) is gone."""
        with self._lock:
            for kind in [k for k in self._active if _in_family(k, family)]:
                del self._active[kind]
            self._said_once = {k for k in self._said_once if not _in_family(k, family)}

    def problem(self) -> Problem | None:
        """The latest unresolved problem, or None when all is well."""
        with self._lock:
            return next(reversed(self._active.values()), None)


def _in_family(kind: str, family: str) -> bool:
    return kind == family or kind.startswith(family + ":")
