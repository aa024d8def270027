"""Rolling frame-rate and latency statistics for /diagnostics (no ROS, thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now_s: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now_s is None else now_s)

    def rate_hz(self, now_s: float | None = None) -> float:
        now_s = time.monotonic() if now_s is None else now_s
        with self._lock:
            while self._times and self._times[0] < now_s - self.window_s:
                self._times.popleft()
            return len(self._times) / self.window_s


class LatencyWindow:
    """Percentiles of the last ``size`` latencies (milliseconds)."""

    def __init__(self, size: int = 200) -> None:
        self._values_ms: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, latency_ms: float) -> None:
        with self._lock:
            self._values_ms.append(latency_ms)

    def percentile_ms(self, q: float) -> float:
        """q-th percentile, NaN while empty."""
        with self._lock:
            if not self._values_ms:
                return float("nan")
            return float(np.percentile(np.fromiter(self._values_ms, float), q))


class NodeStats:
    """What the depth node counts and times for /diagnostics (thread-safe parts)."""

    def __init__(self) -> None:
        self.input_rate, self.output_rate = RateMeter(), RateMeter()
        self.latency = LatencyWindow()  # receipt → published
        self.infer_ms = LatencyWindow()  # Engine.infer alone
        self.engine_ms = LatencyWindow()  # preprocess + infer + postprocess
        self.rejected = 0  # bad messages
        self.skipped_no_subscriber = 0

    def frame_out(self, infer_ms: float, engine_ms: float, received_s: float) -> None:
        """A frame published; ``received_s``: time.monotonic() when its image arrived."""
        self.infer_ms.add(infer_ms)
        self.engine_ms.add(engine_ms)
        self.output_rate.tick()
        self.latency.add((time.monotonic() - received_s) * 1e3)
