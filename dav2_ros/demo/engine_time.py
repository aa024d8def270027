"""Engine time measured outside the node, for the overhead figure.

The node's /diagnostics report end-to-end latency but not the engine's own time,
so the orchestrator rebuilds the engine the node reported (same checkpoint,
backend, device, precision, network input size) and times ``Engine.infer`` on the
demo's own frames, while the camera still runs: the CPU is about as busy as
during the measured run, minus the node itself.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from dav2_ros.model.transforms import prepare_input


@dataclass(frozen=True)
class EngineSpec:
    backend: str
    device: str
    precision: str
    input_hw: tuple[int, int]


def parse_engine_description(text: str) -> EngineSpec | None:
    """``Engine.description`` ("onnxruntime cpu fp32 518x686") → its parts, None if unknown."""
    size = re.search(r"(\d+)x(\d+)", text or "")
    tokens = (text or "").split()
    if size is None or len(tokens) < 2:
        return None
    device = next((t for t in tokens if re.fullmatch(r"cpu|cuda(:\d+)?", t)), "cpu")
    precision = next((t for t in tokens if t in ("fp32", "fp16", "bf16")), "fp32")
    return EngineSpec(tokens[0], device, precision, (int(size.group(1)), int(size.group(2))))


def measure_engine_ms(
    checkpoint: str | None,
    spec: EngineSpec,
    frames_rgb: list[np.ndarray],
    repeats: int = 8,
) -> float:
    """Median ``Engine.infer`` time (ms) of the engine ``spec`` on ``frames_rgb``."""
    from dav2_ros.engines import EngineConfig, create_engine
    from dav2_ros.model.checkpoints import load_model

    loaded = load_model(checkpoint or None)
    config = EngineConfig(
        backend=spec.backend, device=spec.device, precision=spec.precision, input_hw=spec.input_hw
    )
    engine = create_engine(loaded.model, config)
    try:
        # The network's shorter side is the node's input_size (a multiple of 14).
        batches = [prepare_input(rgb, min(spec.input_hw)) for rgb in frames_rgb]
        if batches[0].shape[2:] != spec.input_hw:
            raise ValueError(
                f"frames give network input {batches[0].shape[2:]}, the node's engine was "
                f"{spec.input_hw}: measure with frames of the camera's resolution"
            )
        engine.infer(batches[0])  # warm-up: first call allocates
        times_ms = []
        for i in range(repeats):
            t0 = time.perf_counter()
            engine.infer(batches[i % len(batches)])
            times_ms.append((time.perf_counter() - t0) * 1e3)
    finally:
        engine.close()
    return float(np.median(times_ms))
