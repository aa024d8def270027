"""Colour views of depth, disparity, confidence or errors for humans (``depth/colored``,
``dav2 predict --out``, the demo's panels), never for consumers of depth."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(
    values: np.ndarray,
    high_is_warm: bool,
    value_range: tuple[float, float] | None = None,
    colormap: int = cv2.COLORMAP_TURBO,
) -> np.ndarray:
    """HxW float → HxWx3 uint8 RGB; non-finite pixels black.

    ``value_range`` (low, high) maps onto the colormap's ends; None: this frame's 2-98 %
    range. ``high_is_warm``: True for disparity (near = large = warm), False for metric
    depth (near = small, turned warm).
    """
    finite = np.isfinite(values)
    rgb = np.zeros((*values.shape, 3), dtype=np.uint8)
    if not finite.any():
        return rgb
    if value_range is None:
        low, high = (float(v) for v in np.percentile(values[finite], [2, 98]))
    else:
        low, high = value_range
    span = max(high - low, 1e-6)
    unit = np.clip((np.where(finite, values, low) - low) / span, 0.0, 1.0)
    if not high_is_warm:
        unit = 1.0 - unit
    bgr = cv2.applyColorMap((unit * 255).astype(np.uint8), colormap)
    rgb[:] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb[~finite] = 0
    return rgb


def colorize_confidence(confidence: np.ndarray) -> np.ndarray:
    """HxW confidence in [0, 1] → HxWx3 uint8 RGB grey: white = trusted, black = not (NaN
    black); the absolute scale, not the frame's range, so two views compare."""
    grey = np.round(np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
