"""The node's one /diagnostics message: its own status (rates, latency, drops, engine,
model, inputs' QoS and loss, lifecycle state, latest problem) and, with a metric scale,
the scale's status beside it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from dav2_ros.reporting import Problem

NODE_STATUS_NAME = "dav2_depth: depth estimation"
SCALE_STATUS_NAME = "dav2_depth: metric scale"


@dataclass
class DiagnosticsSnapshot:
    input_fps: float
    output_fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    infer_ms_p50: float  # Engine.infer alone
    engine_ms_p50: float  # preprocess + infer + postprocess: the node's overhead is the rest
    work_ms_p50: float  # the node's own work per frame: decode, postprocess, outputs
    frame_ms_p50: float  # all of a frame's stages: 1000 / it = the frame rate it can serve
    frames_received: int
    frames_dropped: int  # replaced in the mailbox before inference (stale)
    frames_rejected: int  # bad messages
    frames_skipped_no_subscriber: int
    engine: str  # the engine's description, or why there is none
    model: str
    problem: str = ""  # latest unresolved warning or error, empty when all is well
    level_error: bool = False
    engine_failures: int = 0  # engine build/inference failures since start
    # EngineIdentity.fields() and the self-check's figure (SelfCheckResult.fields())
    engine_fields: dict[str, str] = field(default_factory=dict)
    stages_ms_p50: dict[str, float] = field(default_factory=dict)  # each lap of a frame
    stages_ms_last: dict[str, float] = field(default_factory=dict)  # the latest frame's laps
    extra: dict[str, str] = field(default_factory=dict)  # inputs, lifecycle state


def statuses(node_name: str, node: Any, now_s: float) -> list[DiagnosticStatus]:
    """The statuses of the depth node now. ``node``: its wiring (``run``: what configure
    built, or None; ``reporter``, ``loss``: the input loss meter; ``state_label``)."""
    run, problem = node.run, node.reporter.problem()
    if run is None:
        return [unconfigured_status(node_name, node.state_label, problem)]
    loss = node.loss.loss(time.monotonic())
    extra = {
        "lifecycle_state": node.state_label,
        "input_reliability": "; ".join(port.choice_text() for port in run.ports),
        "camera_rate_hz": f"{loss.camera_rate_hz:.2f}",
        "input_frames_lost": str(loss.lost),  # in the last input_loss.WINDOW_S
        "input_loss_percent": f"{100 * loss.share:.1f}",
    }
    snap = snapshot(run.stats, run.mailbox, run.engine, problem, run.model_name, extra)
    found = [node_status(node_name, snap)]
    if run.pipeline.scale is not None:
        found.append(scale_status(node_name, run.pipeline.scale.status(now_s)))
    return found


def unconfigured_status(node_name: str, state: str, problem: Problem | None) -> DiagnosticStatus:
    """A lifecycle node with nothing loaded: its state, and why configure failed."""
    level = DiagnosticStatus.OK
    if problem is not None:
        level = DiagnosticStatus.ERROR if problem.error else DiagnosticStatus.WARN
    message = problem.text if problem is not None else state
    return _status(level, NODE_STATUS_NAME, message, node_name, {"lifecycle_state": state})


def snapshot(
    stats: Any,
    mailbox: Any,
    engine: Any,
    problem: Problem | None,
    model: str,
    extra: dict[str, str] | None = None,
) -> DiagnosticsSnapshot:
    """The node's state now: ``NodeStats``, ``LatestMailbox``, ``EngineSupervisor``, the
    reporter's latest unresolved problem and the model's label."""
    identity = engine.identity
    return DiagnosticsSnapshot(
        input_fps=stats.input_rate.rate_hz(),
        output_fps=stats.output_rate.rate_hz(),
        latency_p50_ms=stats.latency.percentile_ms(50),
        latency_p95_ms=stats.latency.percentile_ms(95),
        infer_ms_p50=stats.infer_ms.percentile_ms(50),
        engine_ms_p50=stats.engine_ms.percentile_ms(50),
        work_ms_p50=stats.work_ms.percentile_ms(50),
        frame_ms_p50=stats.frame_ms.percentile_ms(50),
        frames_received=mailbox.received,
        frames_dropped=mailbox.dropped,
        frames_rejected=stats.rejected,
        frames_skipped_no_subscriber=stats.skipped_no_subscriber,
        engine=engine.state,
        model=model,
        problem=problem.text if problem else "",
        level_error=bool(problem and problem.error),
        engine_failures=engine.failures,
        engine_fields={**(identity.fields() if identity else {}), **engine.self_check_fields},
        stages_ms_p50=stats.stage_p50_ms(),
        stages_ms_last=stats.last_stages_ms,
        extra=dict(extra or {}),
    )


def node_status(node_name: str, snap: DiagnosticsSnapshot) -> DiagnosticStatus:
    if snap.problem:
        level = DiagnosticStatus.ERROR if snap.level_error else DiagnosticStatus.WARN
        message = snap.problem
    else:
        level, message = DiagnosticStatus.OK, "running"
    values = {
        "input_fps": f"{snap.input_fps:.2f}",
        "output_fps": f"{snap.output_fps:.2f}",
        "latency_p50_ms": f"{snap.latency_p50_ms:.1f}",
        "latency_p95_ms": f"{snap.latency_p95_ms:.1f}",
        "infer_ms_p50": f"{snap.infer_ms_p50:.1f}",
        "engine_ms_p50": f"{snap.engine_ms_p50:.1f}",
        "work_ms_p50": f"{snap.work_ms_p50:.2f}",
        "frame_ms_p50": f"{snap.frame_ms_p50:.2f}",
        # JSON {stage: ms}: decode, preprocess, infer, postprocess, metric, "<topic> build"
        # and "<topic> publish" of each output someone subscribes to.
        "stages_ms_p50": _json_ms(snap.stages_ms_p50),
        "stages_ms_last": _json_ms(snap.stages_ms_last),
        "frames_received": str(snap.frames_received),
        "frames_dropped": str(snap.frames_dropped),
        "frames_rejected": str(snap.frames_rejected),
        "frames_skipped_no_subscriber": str(snap.frames_skipped_no_subscriber),
        "engine_failures": str(snap.engine_failures),
        "engine": snap.engine,
        **snap.engine_fields,
        "model": snap.model,
        **snap.extra,
    }
    return _status(level, NODE_STATUS_NAME, message, node_name, values)


def _json_ms(stages_ms: dict[str, float]) -> str:
    return json.dumps({stage: round(ms, 3) for stage, ms in stages_ms.items()})


def scale_status(node_name: str, status: Any) -> DiagnosticStatus:
    """``dav2_ros.scale.source.ScaleStatus`` (level 0/1/2, message, values) as a status."""
    level = bytes([status.level])
    return _status(level, SCALE_STATUS_NAME, status.message, node_name, status.values)


def _status(
    level: bytes, name: str, message: str, node_name: str, values: dict[str, str]
) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=node_name,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
