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


class FrameClock:
    """Laps of one frame: ``lap(stage)`` charges the time since the previous lap to it."""

    def __init__(self) -> None:
        self.stages_ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages_ms[stage] = self.stages_ms.get(stage, 0.0) + (now - self._last) * 1e3
        self._last = now

    def add(self, stage: str, ms: float) -> None:
        """Charge time measured elsewhere (the engine's stages) and start the next lap now."""
        self.stages_ms[stage] = self.stages_ms.get(stage, 0.0) + ms
        self._last = time.perf_counter()


# The engine's stages (``Prediction``'s timings); of these only postprocess (the resize to
# the output size) counts as the node's own work, as does every other lap.
ENGINE_STAGES = ("preprocess", "infer", "postprocess")
OWN_WORK_EXCLUDES = ("preprocess", "infer")


class NodeStats:
    """What the depth node counts and times for /diagnostics (thread-safe parts)."""

    def __init__(self) -> None:
        self.input_rate, self.output_rate = RateMeter(), RateMeter()
        self.latency = LatencyWindow()  # receipt → published
        self.infer_ms = LatencyWindow()  # Engine.infer alone
        self.engine_ms = LatencyWindow()  # preprocess + infer + postprocess
        self.work_ms = LatencyWindow()  # the node's own work: decode, postprocess, outputs
        self.frame_ms = LatencyWindow()  # every stage: the worker's time a frame (engine + work)
        self.last_stages_ms: dict[str, float] = {}  # the latest frame's laps
        self._stage_ms: dict[str, LatencyWindow] = {}
        self._stage_lock = threading.Lock()
        self.rejected = 0  # bad messages
        self.skipped_no_subscriber = 0

    def frame_out(self, clock: FrameClock, received_s: float) -> None:
        """A frame published, timed by ``clock`` (with the engine's stages added);
        ``received_s``: time.monotonic() when its image arrived."""
        stages = dict(clock.stages_ms)
        self.infer_ms.add(stages.get("infer", 0.0))
        self.engine_ms.add(sum(stages.get(stage, 0.0) for stage in ENGINE_STAGES))
        self.work_ms.add(sum(ms for s, ms in stages.items() if s not in OWN_WORK_EXCLUDES))
        self.frame_ms.add(sum(stages.values()))
        with self._stage_lock:
            for stage, ms in stages.items():
                self._stage_ms.setdefault(stage, LatencyWindow()).add(ms)
            self.last_stages_ms = stages
        self.output_rate.tick()
        self.latency.add((time.monotonic() - received_s) * 1e3)

    def stage_p50_ms(self) -> dict[str, float]:
        """Median of each stage over the recent frames that had it."""
        with self._stage_lock:
            windows = list(self._stage_ms.items())
        return {stage: window.percentile_ms(50) for stage, window in windows}
