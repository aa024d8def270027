"""What the monitor accumulates during a run, and how it is shown: live line, table, JSON.

Pure Python/numpy: the monitor node feeds it numbers, tests feed it hand-made ones.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dav2_ros.demo.metrics import DepthErrors, overhead_pct, percentile

OVERHEAD_TARGET_PCT = 10.0
# A /diagnostics value is taken as the engine's own time when its key names the
# inference (not the whole node) and milliseconds, e.g. "infer_ms", "engine ms p50".
_ENGINE_KEY = re.compile(r"(infer|engine).*(ms|millisecond)", re.IGNORECASE)


def engine_ms_from_diagnostics(values: dict[str, str]) -> tuple[str, float] | None:
    """(key, milliseconds) of the engine-time entry among a status's key/values."""
    candidates = []
    for key, text in values.items():
        if not _ENGINE_KEY.search(key) or re.search(r"p9\d|max", key, re.IGNORECASE):
            continue
        try:
            value = float(str(text).split()[0])
        except (ValueError, IndexError):
            continue
        if math.isfinite(value) and value > 0:
            candidates.append((key, value))
    # Prefer a median-like entry when the node reports several.
    candidates.sort(key=lambda kv: (not re.search(r"p50|median", kv[0], re.IGNORECASE), kv[0]))
    return candidates[0] if candidates else None


class CameraWindow:
    """Counts the camera frames whose stamps fall in the measured window.

    The window opens at the stamp of the first measured depth image. A camera frame
    is known from its ground-truth message *or* its depth image, whichever the
    monitor handles first: the two arrive on separate topics in either order, so
    counting ground truth alone undercounts at both ends of the window (the frame
    in flight when it opens, the frames whose ground truth is still queued when it
    closes). Stamps seen before the window opens are kept for the first case.
    """

    def __init__(self, history: int = 120) -> None:
        self._recent: deque[int] = deque(maxlen=history)
        self._start_ns: int | None = None
        self._stamps: set[int] = set()

    @property
    def frames(self) -> int:
        return len(self._stamps)

    def add(self, stamp_ns: int) -> None:
        """A camera frame's stamp, from its ground truth or its depth image."""
        if self._start_ns is None:
            self._recent.append(stamp_ns)
        elif stamp_ns >= self._start_ns:
            self._stamps.add(stamp_ns)

    def open(self, first_stamp_ns: int) -> None:
        """Start the window at the first measured depth image's stamp."""
        self._start_ns = first_stamp_ns
        self._stamps = {stamp for stamp in self._recent if stamp >= first_stamp_ns}
        self._stamps.add(first_stamp_ns)
        self._recent.clear()


@dataclass
class RunStats:
    """Counters and samples of one demo run (times in seconds / milliseconds)."""

    frames_in: int = 0  # camera frames in the measured window (see CameraWindow)
    frames_out: int = 0  # depth images received
    clouds: int = 0  # point clouds received
    latency_ms: list[float] = field(default_factory=list)
    abs_rel: list[float] = field(default_factory=list)
    delta1: list[float] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)
    engine_source: str = ""
    # --sparse: the model's own metres on the same frames as abs_rel/delta1 (with the fit)
    abs_rel_model: list[float] = field(default_factory=list)
    delta1_model: list[float] = field(default_factory=list)
    first_out_s: float | None = None
    last_out_s: float | None = None

    def add_output(self, now_s: float, latency_ms: float) -> None:
        self.frames_out += 1
        self.latency_ms.append(latency_ms)
        if self.first_out_s is None:
            self.first_out_s = now_s
        self.last_out_s = now_s

    def add_errors(self, errors: DepthErrors, model_alone: DepthErrors | None = None) -> None:
        """Errors of the published depth; ``model_alone``: of the model's own metres on
        the same frame, before the sparse fit."""
        self.abs_rel.append(errors.abs_rel)
        self.delta1.append(errors.delta1)
        if model_alone is not None:
            self.abs_rel_model.append(model_alone.abs_rel)
            self.delta1_model.append(model_alone.delta1)

    def add_engine_ms(self, value_ms: float, source: str) -> None:
        self.engine_ms.append(value_ms)
        self.engine_source = source

    def fps_out(self) -> float | None:
        if self.frames_out < 2 or self.first_out_s is None or self.last_out_s is None:
            return None
        span = self.last_out_s - self.first_out_s
        return (self.frames_out - 1) / span if span > 0 else None

    def summary(self, window_s: float) -> dict:
        """The numbers ``summary.json`` holds (None where nothing was measured)."""
        latency_p50 = percentile(self.latency_ms, 50)
        engine_p50 = percentile(self.engine_ms, 50)
        overhead = overhead_pct(latency_p50, engine_p50)
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_scored": len(self.abs_rel),
            "point_clouds": self.clouds,
            "window_s": round(window_s, 3),
            "fps_in": _round(self.frames_in / window_s if window_s > 0 else None),
            "fps_out": _round(self.fps_out()),
            "latency_ms": {
                "p50": _round(latency_p50),
                "p95": _round(percentile(self.latency_ms, 95)),
                "mean": _round(float(np.mean(self.latency_ms)) if self.latency_ms else None),
            },
            "abs_rel": _mean(self.abs_rel),
            "delta1": _mean(self.delta1),
            "engine_ms": {"p50": _round(engine_p50), "source": self.engine_source or None},
            "overhead_ms": _round(
                latency_p50 - engine_p50 if None not in (latency_p50, engine_p50) else None
            ),
            "overhead_pct": _round(overhead),
            "overhead_target_pct": OVERHEAD_TARGET_PCT,
            "overhead_within_target": None if overhead is None else overhead < OVERHEAD_TARGET_PCT,
        }

    def live_line(self, elapsed_s: float) -> str:
        recent = self.latency_ms[-50:]
        return (
            f"[{elapsed_s:6.1f}s] in {self.frames_in:5d}  out {self.frames_out:5d}  "
            f"fps {_fmt(self.fps_out(), '.1f')}  latency p50 {_fmt(percentile(recent, 50))} "
            f"p95 {_fmt(percentile(recent, 95))} ms  AbsRel {_fmt(_last_mean(self.abs_rel), '.3f')}"
            f"  d1 {_fmt(_last_mean(self.delta1), '.3f')}"
        )


def summary_table(summary: dict) -> str:
    """The end-of-run table (Markdown)."""
    lat, eng = summary["latency_ms"], summary["engine_ms"]
    rows = [
        (
            "frames in / out / scored",
            f"{summary['frames_in']} / {summary['frames_out']} / {summary['frames_scored']}",
        ),
        ("output fps", _fmt(summary["fps_out"], ".2f")),
        ("latency p50 / p95 (ms)", f"{_fmt(lat['p50'])} / {_fmt(lat['p95'])}"),
        ("engine time p50 (ms)", f"{_fmt(eng['p50'])} ({eng['source'] or 'not measured'})"),
        (
            "overhead = latency − engine",
            f"{_fmt(summary['overhead_ms'])} ms = "
            f"{_fmt(summary['overhead_pct'])} % (target < {summary['overhead_target_pct']:g} %)",
        ),
        ("AbsRel vs ground truth", _fmt(summary["abs_rel"], ".3f")),
        ("δ1 vs ground truth", _fmt(summary["delta1"], ".3f")),
    ]
    # The worker handles one frame at a time: engine and own work together bound its rate.
    diagnostics = summary.get("node_diagnostics", {})
    frame_ms = _float_or_none(diagnostics.get("frame_ms_p50"))
    work_ms = _float_or_none(diagnostics.get("work_ms_p50"))
    if frame_ms:
        own = f", own work {work_ms:.1f}" if work_ms else ""
        rows.insert(
            2,
            (
                "node's time a frame p50 → frames/s it can serve",
                f"{frame_ms:.1f} ms{own} → {1000 / frame_ms:.1f}",
            ),
        )
    sparse = summary.get("sparse")
    if sparse:
        rows += _sparse_rows(sparse)
    stages = summary.get("node_stages_ms")
    if stages:
        rows.insert(
            4,
            (
                "node stages pre / infer / post (ms)",
                f"{stages['preprocess']:.1f} / {stages['infer']:.1f} / {stages['postprocess']:.1f}",
            ),
        )
    machine = summary.get("machine")
    if machine:
        rows.append(
            (
                "machine: cores, load avg start/end",
                f"{machine['cpus']}, {machine['load_avg_1m_start']:.1f} / "
                f"{machine['load_avg_1m_end']:.1f}",
            )
        )
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'metric'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)


def sparse_summary(
    stats: RunStats, model_depth_type: str, scale_values: dict[str, str], withheld: int
) -> dict:
    """The --sparse block of summary.json: metric errors without and with the sparse fit
    on the same frames (the model alone has no metres if it is relative)."""
    metric = model_depth_type == "metric"
    return {
        "model_depth_type": model_depth_type or "unknown",
        "frames_compared": len(stats.abs_rel),
        "model_alone": {
            "abs_rel": _mean(stats.abs_rel_model) if metric else None,
            "delta1": _mean(stats.delta1_model) if metric else None,
            "note": "the model's own metres"
            if metric
            else "a relative model has no metres without a scale",
        },
        "with_sparse_fit": {"abs_rel": _mean(stats.abs_rel), "delta1": _mean(stats.delta1)},
        "frames_withheld": withheld,
        "fits_accepted": _int_or_none(scale_values.get("fits_accepted")),
        "fits_rejected": _int_or_none(scale_values.get("fits_rejected")),
    }


def _mean(values: list[float]) -> float | None:
    return _round(float(np.mean(values)) if values else None, 4)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _sparse_rows(sparse: dict) -> list[tuple[str, str]]:
    alone, fitted = sparse["model_alone"], sparse["with_sparse_fit"]
    fits = f"fits accepted {sparse['fits_accepted']}, rejected {sparse['fits_rejected']}"
    return [
        (
            f"metric AbsRel: model alone | with sparse fit ({sparse['frames_compared']} frames)",
            f"{_fmt(alone['abs_rel'], '.3f')} | {_fmt(fitted['abs_rel'], '.3f')}",
        ),
        (
            "metric δ1: model alone | with sparse fit",
            f"{_fmt(alone['delta1'], '.3f')} | {_fmt(fitted['delta1'], '.3f')}",
        ),
        ("frames withheld by the fit (no metric depth)", f"{sparse['frames_withheld']} ({fits})"),
    ]


def _float_or_none(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def _last_mean(values: list[float], n: int = 20) -> float | None:
    return float(np.mean(values[-n:])) if values else None
