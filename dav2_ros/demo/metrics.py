"""Numbers the demo reports: depth error against ground truth and latency statistics.

Pure numpy, no ROS, so every formula is unit-tested on hand-made arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dav2_ros.model.metrics import abs_rel_delta1


@dataclass(frozen=True)
class DepthErrors:
    """Errors of one predicted depth image over the pixels both sides call valid."""

    abs_rel: float  # mean(|d - d*| / d*)
    delta1: float  # share of pixels with max(d/d*, d*/d) < 1.25
    valid_px: int


def depth_errors(pred_m: np.ndarray, gt_m: np.ndarray) -> DepthErrors | None:
    """AbsRel and δ1 of a metric prediction, no alignment (the node claims metres).

    Valid pixels: finite and > 0 on both sides (NaN marks invalid in 32FC1 depth).
    Returns ``None`` when no pixel is valid (for example an all-sky frame).
    """
    if pred_m.shape != gt_m.shape:
        raise ValueError(
            f"prediction {pred_m.shape} and ground truth {gt_m.shape} differ in size; "
            "compare depth images of the same resolution"
        )
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(pred_m) & np.isfinite(gt_m) & (pred_m > 0) & (gt_m > 0)
    count = int(valid.sum())
    if count == 0:
        return None
    abs_rel, delta1 = abs_rel_delta1(pred_m[valid], gt_m[valid])
    return DepthErrors(abs_rel, delta1, count)


def percentile(values_ms: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), ``None`` for no samples."""
    if not values_ms:
        return None
    return float(np.percentile(np.asarray(values_ms, dtype=np.float64), q))


def overhead_pct(node_latency_ms: float | None, engine_ms: float | None) -> float | None:
    """End-to-end overhead: (node latency − engine time) as a % of engine time."""
    if node_latency_ms is None or not engine_ms:
        return None
    return 100.0 * (node_latency_ms - engine_ms) / engine_ms
