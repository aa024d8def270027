"""The one check every static-shape engine makes of its input batch."""

from __future__ import annotations

import numpy as np


def checked_batch(backend: str, input_hw: tuple[int, int], batch: np.ndarray) -> np.ndarray:
    """``batch`` as contiguous float32 if it is ``1x3xhxw`` at ``input_hw``; else a
    ValueError saying what the engine was built for."""
    expected = (1, 3, *input_hw)
    if batch.shape != expected:
        raise ValueError(
            f"{backend} engine was built for input {expected}, got {batch.shape}; "
            "build an engine for this input size"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)
