"""The node's /diagnostics status: rates, latency, drops, engine and model."""

from __future__ import annotations

from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

STATUS_NAME = "dav2_depth: depth estimation"


@dataclass
class DiagnosticsSnapshot:
    input_fps: float
    output_fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    infer_ms_p50: float  # Engine.infer alone
    engine_ms_p50: float  # preprocess + infer + postprocess: the node's overhead is the rest
    frames_received: int
    frames_dropped: int  # replaced in the mailbox before inference (stale)
    frames_rejected: int  # bad messages
    frames_skipped_no_subscriber: int
    engine: str
    model: str
    problem: str = ""  # latest warning or error, empty when all is well
    level_error: bool = False
    engine_failures: int = 0  # engine build/inference failures since start


def diagnostics_msg(header: Header, node_name: str, snap: DiagnosticsSnapshot) -> DiagnosticArray:
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
        "frames_received": str(snap.frames_received),
        "frames_dropped": str(snap.frames_dropped),
        "frames_rejected": str(snap.frames_rejected),
        "frames_skipped_no_subscriber": str(snap.frames_skipped_no_subscriber),
        "engine_failures": str(snap.engine_failures),
        "engine": snap.engine,
        "model": snap.model,
    }
    status = DiagnosticStatus(
        level=level,
        name=STATUS_NAME,
        message=message,
        hardware_id=node_name,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    return DiagnosticArray(header=header, status=[status])
