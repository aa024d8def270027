"""How much a depth sequence flickers, measured against exact ground truth (no ROS).

A model's depth can be accurate on average and still "breathe": the whole scene drifts
nearer and farther from frame to frame while nothing moves. Per-pixel errors do not
show this, because they mix it with the model's static mistakes. So each frame gets its
*own* fit to ground truth - the map that best turns this frame's prediction into true
depth - and flicker is how much that fit changes from one frame to the next:

- metric prediction (metres): the fit is a scale, ``s_t = exp(median(log(gt / pred)))``;
- relative prediction (disparity): scale and shift in inverse depth,
  ``1/depth = a_t * pred + b_t`` (least squares, the paper's alignment).

**Flicker** of frame t is ``median over valid pixels of |log(f_t(P_t) / f_{t-1}(P_t))|``:
the relative depth change the previous frame's fit would make to this frame's prediction
(for a scale it is exactly ``|log(s_t / s_{t-1})|``). The sequence's figure is its mean,
the mean absolute log ratio (x 100 ~ percent). Camera motion does not count: the fits
are made against the true depth of each frame.

Beside it, per-frame accuracy: **AbsRel** of the prediction as published (metric), or
after the frame's own fit (relative: affine-invariant, the paper's protocol).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dav2_ros.model import DEPTH_TYPES
from dav2_ros.model.metrics import abs_rel_delta1
from dav2_ros.scale.fit import align_least_squares

EVAL_DEPTH_M = (0.05, 80.0)  # predictions are clipped to this range before AbsRel


@dataclass(frozen=True)
class FrameFit:
    """The map prediction → metres that fits one frame best (``a * pred + b``, where
    for metric the map is ``a * pred`` in depth and for relative ``1/(a * pred + b)``)."""

    depth_type: str
    a: float
    b: float = 0.0

    def depth_m(self, prediction: np.ndarray) -> np.ndarray:
        """Metres this fit gives ``prediction``; NaN where it is at or beyond infinity."""
        values = np.asarray(prediction, dtype=np.float64)
        if self.depth_type == "metric":
            return self.a * values
        inverse = self.a * values + self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(inverse > 0, 1.0 / inverse, np.nan)


def _usable(prediction: np.ndarray, depth_m: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return valid & np.isfinite(prediction) & np.isfinite(depth_m) & (depth_m > 0)


def fit_frame(
    prediction: np.ndarray, depth_m: np.ndarray, valid: np.ndarray, depth_type: str
) -> FrameFit:
    """This frame's own fit to its ground truth ``depth_m`` on ``valid`` pixels."""
    if depth_type not in DEPTH_TYPES:
        raise ValueError(f"depth_type must be one of {DEPTH_TYPES}, got {depth_type!r}")
    usable = _usable(prediction, depth_m, valid)
    if depth_type == "metric":
        usable &= prediction > 0
        if not usable.any():
            raise ValueError("no pixel with a positive prediction and valid ground truth")
        ratio = np.log(depth_m[usable].astype(np.float64) / prediction[usable])
        return FrameFit("metric", float(np.exp(np.median(ratio))))
    a, b = align_least_squares(prediction, depth_m, usable)
    return FrameFit("relative", a, b)


def fit_change(
    previous: FrameFit, current: FrameFit, prediction: np.ndarray, valid: np.ndarray
) -> float:
    """``median |log(current(P) / previous(P))|`` over ``valid`` pixels of ``prediction``."""
    now, before = current.depth_m(prediction), previous.depth_m(prediction)
    both = valid & np.isfinite(now) & np.isfinite(before) & (now > 0) & (before > 0)
    if not both.any():
        return float("nan")
    return float(np.median(np.abs(np.log(now[both] / before[both]))))


def abs_rel(
    prediction: np.ndarray, depth_m: np.ndarray, valid: np.ndarray, fit: FrameFit | None
) -> float:
    """AbsRel of the prediction as metres (``fit`` None: it already is metres)."""
    metres = np.asarray(prediction, np.float64) if fit is None else fit.depth_m(prediction)
    usable = _usable(metres, depth_m, valid)
    lo, hi = EVAL_DEPTH_M
    return abs_rel_delta1(np.clip(metres[usable], lo, hi), depth_m[usable])[0]


@dataclass(frozen=True)
class SequenceScore:
    flicker: float  # mean |log fit ratio| between consecutive frames
    abs_rel: float  # mean per-frame AbsRel
    per_frame_flicker: tuple[float, ...]  # frame 1.. (frame 0 has no predecessor)
    per_frame_abs_rel: tuple[float, ...]


def score_sequence(
    predictions: list[np.ndarray],
    depths_m: list[np.ndarray],
    valids: list[np.ndarray],
    depth_type: str,
) -> SequenceScore:
    """Flicker and AbsRel of one sequence of predictions with its ground truth."""
    if not len(predictions) == len(depths_m) == len(valids) >= 2:
        raise ValueError("need matching predictions, depths and masks for >= 2 frames")
    fits = [
        fit_frame(p, d, v, depth_type)
        for p, d, v in zip(predictions, depths_m, valids, strict=True)
    ]
    changes = [
        fit_change(fits[i - 1], fits[i], predictions[i], valids[i]) for i in range(1, len(fits))
    ]
    errors = [
        abs_rel(p, d, v, None if depth_type == "metric" else fit)
        for p, d, v, fit in zip(predictions, depths_m, valids, fits, strict=True)
    ]
    return SequenceScore(
        flicker=float(np.nanmean(changes)),
        abs_rel=float(np.mean(errors)),
        per_frame_flicker=tuple(changes),
        per_frame_abs_rel=tuple(errors),
    )
