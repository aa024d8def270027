"""Engine time measured outside the node, for the overhead figure.

The node's /diagnostics report end-to-end latency but not the engine's own time,
so the orchestrator rebuilds the engine the node reported (same checkpoint,
backend, device, precision, network input size) and times the node's stages
(preprocess, ``Engine.infer``, postprocess) on the demo's own frames once every
node has stopped: the engine's own time, without competition for the CPU (so the
overhead includes what the camera and monitor cost the node on a small machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class StageTimes:
    """Medians (ms) of the node's per-frame stages, as ``DepthEstimator.predict`` splits them."""

    preprocess_ms: float
    infer_ms: float  # the engine time
    postprocess_ms: float


def measure_stage_times(
    checkpoint: str | None, spec: EngineSpec, frames_rgb: list[np.ndarray], repeats: int = 6
) -> StageTimes:
    """Time preprocess / ``Engine.infer`` / postprocess of the engine ``spec`` on frames.

    Output at the frames' own resolution, as the node's default ``output.resolution``.
    """
    from dav2_ros.engines import DepthEstimator, EngineConfig, create_engine
    from dav2_ros.model.checkpoints import load_model

    loaded = load_model(checkpoint or None)
    config = EngineConfig(
        backend=spec.backend, device=spec.device, precision=spec.precision, input_hw=spec.input_hw
    )
    engine = create_engine(loaded.model, config)
    # The network's shorter side is the node's input_size (a multiple of 14).
    estimator = DepthEstimator(engine, loaded.meta.depth_type, min(spec.input_hw))
    try:
        estimator.predict(frames_rgb[0])  # warm-up: the first call allocates
        runs = [estimator.predict(frames_rgb[i % len(frames_rgb)]) for i in range(repeats)]
    finally:
        engine.close()
    return StageTimes(
        preprocess_ms=float(np.median([r.preprocess_ms for r in runs])),
        infer_ms=float(np.median([r.infer_ms for r in runs])),
        postprocess_ms=float(np.median([r.postprocess_ms for r in runs])),
    )
