"""Engine time measured outside the node, for the overhead figure.

The node's /diagnostics report end-to-end latency but not the engine's own time,
so the orchestrator rebuilds the engine the node reported (same checkpoint; backend,
device, precision, options and network input size read field by field from its
/diagnostics) and times the node's stages
(preprocess, ``Engine.infer``, postprocess) on the demo's own frames once every
node has stopped: the engine's own time, without competition for the CPU (so the
overhead includes what the camera and monitor cost the node on a small machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the engines (torch) are imported only when an engine is timed
    from dav2_ros.engines.base import EngineIdentity


@dataclass(frozen=True)
class StageTimes:
    """Medians (ms) of the node's per-frame stages, as ``DepthEstimator.predict`` splits them."""

    preprocess_ms: float
    infer_ms: float  # the engine time
    postprocess_ms: float


def measure_stage_times(
    checkpoint: str | None,
    identity: EngineIdentity,
    frames_rgb: list[np.ndarray],
    repeats: int = 6,
) -> StageTimes:
    """Time preprocess / ``Engine.infer`` / postprocess of the engine the node reported
    (``identity``, from its /diagnostics) on frames of the node's camera.

    Output at the frames' own resolution, as the node's default ``output.resolution``.
    """
    from dav2_ros.engines import DepthEstimator
    from dav2_ros.model.checkpoints import load_model

    loaded = load_model(checkpoint or None)
    # The network's shorter side is the node's input_size (a multiple of 14).
    estimator = DepthEstimator(loaded.model, identity.spec(), min(identity.input_hw))
    try:
        estimator.predict(frames_rgb[0])  # warm-up: builds the engine, the first call allocates
        if estimator.engine.input_hw != tuple(identity.input_hw):
            raise ValueError(
                f"demo frames give network input {estimator.engine.input_hw}, the node's "
                f"engine has {identity.input_hw}: not the same engine"
            )
        runs = [estimator.predict(frames_rgb[i % len(frames_rgb)]) for i in range(repeats)]
    finally:
        estimator.close()
    return StageTimes(
        preprocess_ms=float(np.median([r.preprocess_ms for r in runs])),
        infer_ms=float(np.median([r.infer_ms for r in runs])),
        postprocess_ms=float(np.median([r.postprocess_ms for r in runs])),
    )
