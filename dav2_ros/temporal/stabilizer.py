"""Temporal stabiliser: damp the frame-to-frame scale flicker of a depth model (no ROS).

``temporal.mode: align``. Each new prediction is aligned to the previous *stabilised*
output on the pixels whose image barely changed (same surface, same depth), and only a
share ``strength`` of that alignment is applied:

    metric (metres):       S_t = P_t * k ** -strength,
                           with 1 / S_{t-1} ~ k / P_t fitted robustly in inverse depth;
    relative (disparity):  S_t = (1 - strength) * P_t + strength * (a P_t + b),
                           with a P_t + b ~ S_{t-1} fitted robustly (a > 0).

Both fits start from medians (half the pixels disagreeing cannot move them) and refine by
least squares on the pixels within 10 % of that start; if fewer than half agree, the
frame is not aligned. Inverse depth weighs near surfaces most: a model's guesses at the
sky and the far background are where it jumps the most.

That is an exponential moving average of the model's global scale (and shift), the
per-pixel structure always the current frame's: the output's scale moves
``1 - strength`` of the way to the new prediction's each frame. For a scale that
changes steadily it trails by ``strength / (1 - strength)`` frames; the default 0.5 is
one frame, the most lag the node accepts. Frame-to-frame jitter of the scale is what
shrinks: the change between consecutive outputs is ``1 - strength`` of the change
between the new prediction and the previous output.

Nothing is aligned (the prediction passes unchanged and the filter restarts from it)
when there is no previous frame, the image size changed, frames are more than
``max_gap_s`` apart, or fewer than ``min_static_fraction`` of the pixels are unchanged
(fast camera motion: no trustworthy correspondence). Pixels count as unchanged when
their brightness, normalised by the frame's median (auto-exposure changes everything
a little), moves less than ``static_threshold``. Alignment runs on a grid at most
``WORK_WIDTH`` pixels wide; only the resulting one or two numbers touch the full image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dav2_ros.model import DEPTH_TYPES

TEMPORAL_MODES = ("none", "align")
WORK_WIDTH = 160  # alignment grid width: a global scale needs no more
AGREEMENT = 0.1  # a pixel agrees with an alignment within 10 % (of its value / the median)
MIN_AGREEMENT = 0.5  # fewer agreeing unchanged pixels: no alignment this frame


@dataclass(frozen=True)
class TemporalSettings:
    mode: str = "none"
    strength: float = 0.5  # share of the alignment applied; lag strength/(1-strength) frames
    static_threshold: float = 0.04  # |change| of normalised brightness counted as unchanged
    min_static_fraction: float = 0.2  # fewer unchanged pixels: no alignment this frame
    max_gap_s: float = 0.5  # frames further apart start afresh

    def __post_init__(self) -> None:
        if self.mode not in TEMPORAL_MODES:
            raise ValueError(f"temporal mode must be one of {TEMPORAL_MODES}, got {self.mode!r}")
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), got {self.strength}")
        if not self.static_threshold > 0:
            raise ValueError(f"static_threshold must be > 0, got {self.static_threshold}")
        if not 0.0 < self.min_static_fraction <= 1.0:
            raise ValueError(
                f"min_static_fraction must be in (0, 1], got {self.min_static_fraction}"
            )
        if not self.max_gap_s > 0:
            raise ValueError(f"max_gap_s must be > 0, got {self.max_gap_s}")

    @property
    def lag_frames(self) -> float:
        """How many frames the output's scale trails a steadily changing one."""
        return self.strength / (1.0 - self.strength)


@dataclass(frozen=True)
class Stabilised:
    values: np.ndarray  # the output (same type and units as the prediction)
    scale: float  # applied: metric values * scale; relative values * scale + shift
    shift: float
    static_fraction: float  # share of working-grid pixels used for the alignment
    aligned: bool  # False: passed through (see ``reason``)
    reason: str


@dataclass
class _Previous:
    """What the next frame is aligned to."""

    brightness: np.ndarray  # working grid, normalised by its median
    values: np.ndarray  # output on the working grid
    stamp_s: float | None
    image_shape: tuple[int, ...]


class TemporalStabilizer:
    """Stateful: feed every frame of one camera in order (``update``); ``reset`` on a
    camera change. ``mode: none`` passes every prediction through untouched."""

    def __init__(self, settings: TemporalSettings, depth_type: str) -> None:
        if depth_type not in DEPTH_TYPES:
            raise ValueError(f"depth_type must be one of {DEPTH_TYPES}, got {depth_type!r}")
        self.settings = settings
        self.depth_type = depth_type
        self._previous: _Previous | None = None

    def reset(self) -> None:
        self._previous = None

    def update(
        self, image_rgb: np.ndarray, values: np.ndarray, stamp_s: float | None = None
    ) -> Stabilised:
        """``values`` (HxW metres or disparity, NaN invalid) of the frame ``image_rgb``
        (any size: both go to the working grid) taken at ``stamp_s`` seconds."""
        if self.settings.mode == "none":
            return Stabilised(values, 1.0, 0.0, 0.0, False, "temporal mode none")
        grid_hw = _work_grid(values.shape)
        current = _Previous(
            _normalised_brightness(image_rgb, grid_hw),
            cv2.resize(values.astype(np.float32), grid_hw[::-1], interpolation=cv2.INTER_AREA),
            stamp_s,
            (*image_rgb.shape, *values.shape),
        )
        previous, self._previous = self._previous, current
        reason = self._cannot_follow(previous, current)
        if reason is not None:
            return Stabilised(values, 1.0, 0.0, 0.0, False, reason)
        static = self._static_pixels(previous, current)
        if static.mean() < self.settings.min_static_fraction:
            reason = f"only {static.mean():.0%} of the image unchanged"
            return Stabilised(values, 1.0, 0.0, float(static.mean()), False, reason)
        scale, shift, reason = self._alignment(current.values[static], previous.values[static])
        if reason is not None:
            return Stabilised(values, 1.0, 0.0, float(static.mean()), False, reason)
        current.values = _apply(current.values, scale, shift)  # the filter follows its output
        return Stabilised(
            _apply(values, scale, shift), scale, shift, float(static.mean()), True, "aligned"
        )

    def _cannot_follow(self, previous: _Previous | None, current: _Previous) -> str | None:
        """Why the current frame cannot be aligned to the previous one, or None."""
        if previous is None:
            return "first frame"
        if previous.image_shape != current.image_shape:
            return "image size changed"
        if previous.stamp_s is not None and current.stamp_s is not None:
            gap_s = current.stamp_s - previous.stamp_s
            if not 0.0 <= gap_s <= self.settings.max_gap_s:
                return (
                    f"{gap_s:.2f} s since the previous frame (max_gap_s {self.settings.max_gap_s})"
                )
        return None

    def _static_pixels(self, previous: _Previous, current: _Previous) -> np.ndarray:
        """Working-grid pixels that look the same and have a usable value in both frames."""
        change = np.abs(current.brightness - previous.brightness)
        static = (change < self.settings.static_threshold) & np.isfinite(current.values)
        static &= np.isfinite(previous.values)
        if self.depth_type == "metric":  # aligned in inverse depth
            static &= (current.values > 0) & (previous.values > 0)
        return static

    def _alignment(
        self, current: np.ndarray, previous: np.ndarray
    ) -> tuple[float, float, str | None]:
        """(scale, shift) applied to the current prediction, or a reason for none."""
        strength = self.settings.strength
        current, previous = current.astype(np.float64), previous.astype(np.float64)
        if self.depth_type == "metric":
            ratio, agreeing = _robust_scale(1.0 / current, 1.0 / previous)
            scale, shift = ratio**-strength, 0.0
        else:
            a, b, agreeing = _robust_line(current, previous)
            if not np.isfinite(a):
                return 1.0, 0.0, "the prediction is flat on the unchanged pixels: nothing to align"
            if not a > 0:
                return 1.0, 0.0, f"alignment to the previous frame inverts it (a = {a:.3g})"
            scale, shift = 1.0 + strength * (a - 1.0), strength * b
        if agreeing < MIN_AGREEMENT:
            return 1.0, 0.0, f"only {agreeing:.0%} of the unchanged pixels agree on an alignment"
        return float(scale), float(shift), None


def _work_grid(shape: tuple[int, int]) -> tuple[int, int]:
    height, width = shape
    if width <= WORK_WIDTH:
        return height, width
    return max(1, round(height * WORK_WIDTH / width)), WORK_WIDTH


def _normalised_brightness(image_rgb: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY) if image_rgb.ndim == 3 else image_rgb
    grey = cv2.resize(grey, grid_hw[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 1.0)  # sensor noise is not change
    return grey / max(_median(grey), 1e-6)


def _apply(values: np.ndarray, scale: float, shift: float) -> np.ndarray:
    return (values * np.float32(scale) + np.float32(shift)).astype(np.float32, copy=False)


def _median(values: np.ndarray) -> float:
    """``np.median`` of finite values (every caller passes finite pixels only), 8x faster.

    np.median partitions at three places (the middle two and the end, to find a NaN);
    finite values need one partition and the largest of the lower half.
    """
    flat = values.ravel()
    if flat.size == 0:
        return float("nan")
    half = flat.size // 2
    part = np.partition(flat, half)
    upper = float(part[half])
    return upper if flat.size % 2 else (float(part[:half].max()) + upper) / 2.0


def _robust_scale(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``y ~ k x`` and the share of pixels within ``AGREEMENT`` of it.

    Starts at the median ratio, which half the pixels disagreeing cannot move, then
    least squares on the pixels that agree with it (near surfaces weigh most).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = y / x
    start = _median(ratios)
    agree = np.abs(ratios / start - 1.0) < AGREEMENT
    if not agree.any():
        return start, 0.0
    # Plain sums, not BLAS: a threaded dot product costs more than it saves at this size.
    x, y = x[agree], y[agree]
    return float(np.sum(x * y) / np.sum(x * x)), float(agree.mean())


def _robust_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """``y ~ a x + b`` and the share of pixels within ``AGREEMENT`` of it.

    Starts at the line through the (median x, median y) points of the lower and upper
    halves of ``x``, then least squares on the pixels that agree with it.
    """
    low = x <= _median(x)
    if low.all():  # no spread in x: no slope to find
        return float("nan"), float("nan"), 0.0
    x_low, x_high = _median(x[low]), _median(x[~low])
    y_low, y_high = _median(y[low]), _median(y[~low])
    if not x_high > x_low:
        return float("nan"), float("nan"), 0.0
    a = (y_high - y_low) / (x_high - x_low)
    b = y_low - a * x_low
    scale = max(_median(np.abs(y)), 1e-12)
    agree = np.abs(y - (a * x + b)) < AGREEMENT * scale
    if agree.sum() >= 2:
        xs, ys = x[agree], y[agree]
        dx = xs - xs.mean()
        spread = float(np.sum(dx * dx))
        if spread > 0:
            a = float(np.sum(dx * (ys - ys.mean())) / spread)
            b = float(ys.mean() - a * xs.mean())
    return float(a), float(b), float(agree.mean())
