"""Depth metrics: AbsRel and δ1 (direct or scale-shift aligned) and DA-2K pair accuracy."""

from __future__ import annotations

import numpy as np

from dav2_ros.model.metrics import abs_rel_delta1


def align_scale_shift(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least-squares ``s·pred + t`` matching ``target`` over ``mask`` (applied everywhere)."""
    p, t = pred[mask].astype(np.float64), target[mask].astype(np.float64)
    if p.size < 2:
        raise ValueError("scale-shift alignment needs at least 2 valid pixels")
    A = np.stack([p, np.ones_like(p)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(A, t, rcond=None)
    return scale * pred + shift


def depth_metrics(
    pred_depth_m: np.ndarray, gt_depth_m: np.ndarray, mask: np.ndarray
) -> dict[str, float]:
    """AbsRel = mean |d − d*| / d*, δ1 = share with max(d/d*, d*/d) < 1.25, over ``mask``."""
    d, g = pred_depth_m[mask].astype(np.float64), gt_depth_m[mask].astype(np.float64)
    if d.size == 0:
        raise ValueError("no valid pixels to evaluate")
    abs_rel, delta1 = abs_rel_delta1(np.maximum(d, 1e-6), g)
    return {"absrel": abs_rel, "delta1": delta1}


def aligned_depth(
    pred_disparity: np.ndarray, gt_depth_m: np.ndarray, mask: np.ndarray, max_depth_m: float
) -> np.ndarray:
    """Disparity aligned to 1/d* in least squares over ``mask``, as depth clamped to
    ``max_depth_m`` (the depth a relative model is scored with)."""
    gt_disparity = np.zeros_like(gt_depth_m, dtype=np.float64)
    gt_disparity[mask] = 1.0 / gt_depth_m[mask]
    aligned = align_scale_shift(pred_disparity, gt_disparity, mask)
    return 1.0 / np.maximum(aligned, 1.0 / max_depth_m)


def relative_metrics(
    pred_disparity: np.ndarray, gt_depth_m: np.ndarray, mask: np.ndarray, max_depth_m: float
) -> dict[str, float]:
    """Align disparity to 1/d* in least squares, clamp depth to ``max_depth_m``, then score."""
    depth = aligned_depth(pred_disparity, gt_depth_m, mask, max_depth_m)
    return depth_metrics(depth, gt_depth_m, mask)


def da2k_correct(disparity: np.ndarray, pairs: list[dict]) -> tuple[int, int]:
    """(pairs where the closer point has the larger disparity, pairs) for one image."""
    correct = 0
    for pair in pairs:
        (r1, c1), (r2, c2) = pair["point1"], pair["point2"]
        d1, d2 = disparity[r1, c1], disparity[r2, c2]
        predicted = "point1" if d1 > d2 else "point2"
        correct += predicted == pair["closer_point"]
    return correct, len(pairs)
