"""The standard depth accuracy numbers, shared by training, the demo and benchmarks."""

from __future__ import annotations

import numpy as np

DELTA1_THRESHOLD = 1.25  # δ1: share of pixels with max(d/d*, d*/d) < 1.25


def abs_rel_delta1(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """AbsRel = mean |d − d*| / d* and δ1 of matching 1-D arrays of valid, positive depths.

    Choosing the valid pixels (and any clamping) is the caller's job.
    """
    d = np.asarray(pred, dtype=np.float64)
    g = np.asarray(target, dtype=np.float64)
    abs_rel = float(np.mean(np.abs(d - g) / g))
    delta1 = float(np.mean(np.maximum(d / g, g / d) < DELTA1_THRESHOLD))
    return abs_rel, delta1
