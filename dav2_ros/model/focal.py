"""The canonical camera of a metric model: metres learnt at one focal length, rescaled
to the camera's (Metric3D's label transform).

A metric network judges distance from apparent size, and apparent size grows with the
focal length. Trained on labels ``depth × f_canonical / f`` (``f``: the sample's focal
length at the network input), it predicts the depth a camera of focal length
``f_canonical`` would need to see the same picture; the camera's own metres are that
prediction × ``f / f_canonical``.

Every focal length here is in **pixels of the network input**: the image after the
resize that brings its shorter side to the network's input size
(``transforms.model_input_size``, e.g. 640×480 → 224×168 at input 168). A crop keeps
it; a resize scales it. ``fx`` scales with the width ratio and ``fy`` with the height
ratio, and the focal length of a camera is their geometric mean: an object's apparent
area grows with ``fx · fy``, and non-square pixels or the rounding of the network size
to the patch grid make the two ratios differ slightly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dav2_ros.model.transforms import model_input_size

FOCAL_CORRECTIONS = ("auto", "off")


def network_focal_px(
    fx_px: float, fy_px: float, image_hw: tuple[int, int], input_size: int
) -> float:
    """Focal length in pixels of the network input of an image ``image_hw`` (fx, fy in
    the image's pixels; ``input_size``: the network's shorter side)."""
    check_focal_px(fx_px, fy_px)
    height, width = image_hw
    net_h, net_w = model_input_size(height, width, input_size)
    return math.sqrt(fx_px * net_w / width * fy_px * net_h / height)


def focal_scale(
    focal_px: tuple[float, float],
    image_hw: tuple[int, int],
    input_size: int,
    canonical_focal_px: float,
) -> float:
    """``f / f_canonical``: multiplies a canonical-camera prediction into the camera's metres
    (its inverse multiplies a training label into the canonical camera's metres)."""
    if not (math.isfinite(canonical_focal_px) and canonical_focal_px > 0):
        raise ValueError(f"canonical focal length must be > 0 px, got {canonical_focal_px!r}")
    return network_focal_px(*focal_px, image_hw, input_size) / canonical_focal_px


def check_focal_px(fx_px: float, fy_px: float) -> None:
    """Raise ``ValueError`` unless both focal lengths are finite and positive."""
    if not all(math.isfinite(f) and f > 0 for f in (fx_px, fy_px)):
        raise ValueError(
            f"camera focal lengths must be finite and > 0 pixels, got fx={fx_px!r}, "
            f"fy={fy_px!r}; pass the calibrated camera's fx and fy"
        )


@dataclass(frozen=True)
class FocalChoice:
    """The canonical focal length metric outputs are corrected with (None: no correction)
    and why, in words for the log."""

    canonical_focal_px: float | None
    reason: str

    @property
    def enabled(self) -> bool:
        return self.canonical_focal_px is not None


def choose_canonical_focal(
    depth_type: str, recorded_px: float | None, mode: str = "auto", override_px: float = 0.0
) -> FocalChoice:
    """The correction of a model: ``mode`` auto corrects with ``override_px`` when > 0,
    else with the checkpoint's ``recorded_px``; ``off`` (or a relative model, or a
    checkpoint with no record and no override) does not correct."""
    if mode not in FOCAL_CORRECTIONS:
        raise ValueError(f"focal correction must be one of {FOCAL_CORRECTIONS}, got {mode!r}")
    if not (math.isfinite(override_px) and override_px >= 0):
        raise ValueError(f"canonical focal override must be >= 0 px (0: none), got {override_px}")
    if mode == "off":
        return FocalChoice(None, "off (switched off)")
    if depth_type != "metric":
        return FocalChoice(None, "off (a relative model has no metres to correct)")
    if override_px > 0:
        return FocalChoice(
            float(override_px), f"on, metres x f / {override_px:g} px (canonical focal set by hand)"
        )
    if recorded_px:
        return FocalChoice(
            float(recorded_px),
            f"on, metres x f / {recorded_px:g} px (the checkpoint's canonical focal)",
        )
    return FocalChoice(
        None,
        "off (the checkpoint records no canonical focal length; setting one by hand turns it on)",
    )
