"""Colour view of depth or disparity for humans (``depth/colored``), never for consumers."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(values: np.ndarray, near_is_large: bool) -> np.ndarray:
    """HxW float → HxWx3 uint8 RGB (turbo; near = warm), per-frame 2-98 % range, NaN black.

    ``near_is_large``: True for disparity, False for metric depth.
    """
    finite = np.isfinite(values)
    rgb = np.zeros((*values.shape, 3), dtype=np.uint8)
    if not finite.any():
        return rgb
    low, high = np.percentile(values[finite], [2, 98])
    span = max(float(high - low), 1e-6)
    unit = np.clip((np.where(finite, values, low) - low) / span, 0.0, 1.0)
    if not near_is_large:
        unit = 1.0 - unit
    bgr = cv2.applyColorMap((unit * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    rgb[:] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb[~finite] = 0
    return rgb
