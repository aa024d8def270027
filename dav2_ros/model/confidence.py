"""Per-pixel confidence of a depth map in [0, 1] (1 = trusted), and what it is made from.

Two sources, one mapping:

- a model's **confidence head** predicts the expected error ``e`` of each pixel: for a
  metric model the expected ``|ln d - ln d*|`` (the log of the depth ratio to the truth,
  so 0.1 is about 10 %), for a relative model the expected absolute residual of its
  median/MAD-normalised disparity (``dav2_train.losses.laplace_nll``);
- a model without one can be run a second time on the horizontally **flipped** image:
  the disagreement between the two predictions is ``e`` (same units). It is a ranking
  more than a calibrated error: the two passes share the model's biases, so it reads
  lower than the true error.

**confidence = exp(-e).** 1 means no expected error; a threshold ``t`` keeps the pixels
whose expected log-ratio error is below ``-ln t``: 0.9 keeps e < 0.105 (about +/-11 %),
0.8 keeps e < 0.22 (+/-25 %), 0.5 keeps e < 0.69 (a factor of 2). NaN stays NaN.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE_MODES = ("auto", "head", "flip", "off")

# What a head's error measures, by depth type (written into checkpoint metadata).
ERROR_MEANING = {
    "metric": "expected |ln d - ln d*| (Laplace scale of the log-depth residual)",
    "relative": "expected |residual| of median/MAD-normalised disparity (Laplace scale)",
}
MAPPING = "confidence = exp(-expected_error)"


class ConfidenceUnavailable(ValueError):
    """``head`` was asked of a model without a confidence head; the message says what to do."""


def resolve_mode(mode: str, has_head: bool, source: str = "the model") -> str:
    """``auto|head|flip|off`` → what runs: ``head``, ``flip`` or ``off``.

    ``auto`` is the head when the checkpoint has one, else off (a second inference per
    frame is a cost the user opts into with ``flip``).
    """
    if mode not in CONFIDENCE_MODES:
        raise ValueError(
            f"confidence mode must be one of {', '.join(CONFIDENCE_MODES)}, got {mode!r}"
        )
    if mode == "auto":
        return "head" if has_head else "off"
    if mode == "head" and not has_head:
        raise ConfidenceUnavailable(
            f"{source} has no confidence head (official and Hugging Face checkpoints have "
            "none): train one with `dav2-train confidence` (docs/training.md), or use the "
            "flip disagreement (confidence 'flip', a second inference per frame)"
        )
    return mode


def confidence_from_error(expected_error: np.ndarray) -> np.ndarray:
    """``exp(-e)`` as float32 (negative errors, impossible from a head, read as 0)."""
    error = np.asarray(expected_error, dtype=np.float32)
    return np.exp(-np.maximum(error, np.float32(0.0)))


def normalised_disparity(disparity: np.ndarray) -> np.ndarray:
    """``(x - median) / mean|x - median|`` over the finite pixels: what a relative model's
    error is measured in (the scale-and-shift-invariant loss's normalisation)."""
    values = disparity[np.isfinite(disparity)]
    if values.size == 0:
        return np.full_like(disparity, np.nan, dtype=np.float32)
    median = np.median(values)
    spread = max(float(np.mean(np.abs(values - median))), 1e-6)
    return ((disparity - median) / spread).astype(np.float32)


def flip_disagreement(
    prediction: np.ndarray, prediction_of_flipped: np.ndarray, depth_type: str
) -> np.ndarray:
    """The expected-error estimate of a model without a head, from two passes.

    ``prediction_of_flipped`` is the model's output for the mirrored image, as it came
    out (it is mirrored back here). Metric: ``|ln d - ln d_f|``; relative: the absolute
    difference of the two normalised disparities.
    """
    mirrored = prediction_of_flipped[..., ::-1]
    if depth_type == "metric":
        with np.errstate(divide="ignore", invalid="ignore"):
            tiny = np.float32(1e-6)
            return np.abs(
                np.log(np.maximum(prediction, tiny)) - np.log(np.maximum(mirrored, tiny))
            ).astype(np.float32)
    return np.abs(normalised_disparity(prediction) - normalised_disparity(mirrored))
