"""How well a confidence map ranks pixels: sparsification curves and AUSE.

Pixels are removed in order of descending uncertainty and the AbsRel of those left is
recorded at each removed fraction (0, 2, …, 98 %): the sparsification curve. The
**oracle** removes them by their true error, the best any ranking can do. **AUSE** (area
under the sparsification error) is the area between a method's curve and the oracle's:
0 is a perfect ranking (Ilg et al. 2018; Poggi et al. 2020). Two protocols:

- **per frame** (the literature's): each frame's pixels ranked on their own, the curves
  averaged over frames, like every figure of the deployment table. It asks where in a
  frame the depth is worst;
- **pooled**: every frame's pixels ranked together, as one fixed threshold does
  (``points.min_confidence`` is one number for every frame). It also asks which frames
  are worst, the larger part of a metric model's error (a scale error per frame). From
  a fixed random 1/32 of each frame's valid pixels (``Pool``).

What is ranked, besides a model's confidence head (``CONFIDENCE_SOURCES``):

- ``flip``: disagreement with the prediction for the mirrored image (a second pass);
- ``image gradient``: Sobel magnitude of the grey image at the network's resolution
  (edges are where a smooth prediction errs);
- ``depth, far uncertain`` and ``depth, near uncertain``: the predicted depth itself, in
  both senses (which one helps depends on the model: a metric model whose scale is off
  errs more, relatively, where it predicts near).

Ties (flat image regions, equal depths) are broken by a seeded random order, never by the
pixels' position.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from dav2_ros.model.transforms import resize_output

FRACTIONS = np.arange(50) * 0.02  # share of pixels removed: 0, 0.02, …, 0.98
POOL_SHARE = 1 / 32  # of each frame's valid pixels, kept for the pooled curves
KEEP80, KEEP50 = 10, 25  # indices of 20 % and 50 % removed
ORACLE = "oracle (true error)"
HEAD = "confidence head"
FLIP = "flip disagreement"
GRADIENT = "image gradient"
FAR = "depth, far uncertain"
NEAR = "depth, near uncertain"
HEURISTICS = (FLIP, GRADIENT, FAR, NEAR)


def absrel_per_pixel(pred_depth_m: np.ndarray, gt_depth_m: np.ndarray) -> np.ndarray:
    """|d - d*| / d* for each pixel (flat arrays of the valid pixels)."""
    return np.abs(pred_depth_m - gt_depth_m) / gt_depth_m


def curve(errors: np.ndarray, uncertainty: np.ndarray, seed: int = 0) -> np.ndarray:
    """AbsRel of the pixels kept after removing each of ``FRACTIONS`` of them, the most
    uncertain first (flat arrays of one frame's valid pixels)."""
    count = errors.size
    tie_break = np.random.default_rng(seed).random(count)
    order = np.lexsort((tie_break, -np.asarray(uncertainty, dtype=np.float64)))
    kept_sums = np.cumsum(errors[order][::-1], dtype=np.float64)[::-1]  # sum of order[k:]
    removed = np.minimum((FRACTIONS * count).astype(np.int64), count - 1)
    return kept_sums[removed] / (count - removed)


def ause(method_curve: np.ndarray, oracle_curve: np.ndarray) -> float:
    """Area between a method's curve and the oracle's over the removed fraction."""
    return float(np.trapezoid(method_curve - oracle_curve, FRACTIONS))


def image_gradient(rgb: np.ndarray, network_hw: tuple[int, int]) -> np.ndarray:
    """Sobel magnitude of the grey image at the network's resolution, resized back to the
    image's (what the model saw, at the size its output is scored)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    small = cv2.resize(grey, (network_hw[1], network_hw[0]), interpolation=cv2.INTER_AREA)
    magnitude = np.hypot(cv2.Sobel(small, cv2.CV_32F, 1, 0), cv2.Sobel(small, cv2.CV_32F, 0, 1))
    return resize_output(magnitude, *rgb.shape[:2])


def frame_rows(
    errors: np.ndarray, uncertainties: Mapping[str, np.ndarray], seed: int = 0
) -> dict[str, float]:
    """One frame's figures, flat for summing over frames: per method (and the oracle)
    ``sparsification:<method>:<i>`` (the curve) and ``ause:<method>``.

    ``errors``: per-pixel AbsRel of the valid pixels; ``uncertainties``: per method, a
    map over the same pixels where larger means less trusted.
    """
    oracle = curve(errors, errors, seed)
    row = {f"sparsification:{ORACLE}:{i}": float(v) for i, v in enumerate(oracle)}
    for method, uncertainty in uncertainties.items():
        method_curve = curve(errors, uncertainty, seed)
        row.update({f"sparsification:{method}:{i}": float(v) for i, v in enumerate(method_curve)})
        row[f"ause:{method}"] = ause(method_curve, oracle)
    return row


def row_keys(methods: list[str]) -> list[str]:
    """Every key ``frame_rows`` writes for these methods (the oracle's curve included)."""
    keys = [f"sparsification:{ORACLE}:{i}" for i in range(len(FRACTIONS))]
    for method in methods:
        keys += [f"sparsification:{method}:{i}" for i in range(len(FRACTIONS))]
        keys.append(f"ause:{method}")
    return keys


def summary(means: Mapping[str, float]) -> dict[str, dict]:
    """Per method, from the frame means of ``frame_rows``' keys: the mean curve, AUSE,
    AbsRel over all pixels, the most confident 80 % and 50 %, and the cut at 50 %
    (1 - AbsRel of the most confident half / AbsRel of all)."""
    methods = sorted({key.split(":")[1] for key in means if key.startswith("sparsification:")})
    out = {}
    for method in methods:
        mean_curve = [means[f"sparsification:{method}:{i}"] for i in range(len(FRACTIONS))]
        out[method] = _figures(mean_curve, means.get(f"ause:{method}", 0.0))
    return out


class Pool:
    """Samples of pixels over frames for the pooled curves: per method, the errors and
    uncertainties of a fixed random ``POOL_SHARE`` of each frame's valid pixels."""

    def __init__(self) -> None:
        self.errors: list[np.ndarray] = []
        self.uncertainties: dict[str, list[np.ndarray]] = {}

    def add(self, errors: np.ndarray, uncertainties: Mapping[str, np.ndarray], seed: int) -> None:
        keep = np.random.default_rng([seed, 32]).random(errors.size) < POOL_SHARE
        self.errors.append(errors[keep].astype(np.float32))
        for method, uncertainty in uncertainties.items():
            self.uncertainties.setdefault(method, []).append(
                np.asarray(uncertainty)[keep].astype(np.float32)
            )

    def merge(self, others: list[Pool]) -> Pool:
        """This pool and every other rank's, in rank order."""
        merged = Pool()
        for pool in others:
            merged.errors += pool.errors
            for method, parts in pool.uncertainties.items():
                merged.uncertainties.setdefault(method, []).extend(parts)
        return merged

    def summary(self) -> dict[str, dict]:
        """``summary``'s figures for the pooled pixels (empty without samples)."""
        if not self.errors or not sum(e.size for e in self.errors):
            return {}
        errors = np.concatenate(self.errors).astype(np.float64)
        oracle = curve(errors, errors)
        curves = {ORACLE: oracle}
        curves |= {m: curve(errors, np.concatenate(u)) for m, u in self.uncertainties.items()}
        return {method: _figures(c, ause(c, oracle)) for method, c in curves.items()}


def _figures(mean_curve, area: float) -> dict:
    return {
        "ause": area,
        "absrel_all": float(mean_curve[0]),
        "absrel_confident80": float(mean_curve[KEEP80]),
        "absrel_confident50": float(mean_curve[KEEP50]),
        "cut50": 1.0 - float(mean_curve[KEEP50]) / float(mean_curve[0]),
        "curve": [float(v) for v in mean_curve],
    }


def uncertainty_maps(
    rgb: np.ndarray,
    depth: np.ndarray,
    network_hw: tuple[int, int],
    confidence: np.ndarray | None,
    flip_error: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Every method's map for one frame (full image size; larger = less trusted).
    ``depth``: the predicted depth (metres, or a relative model's aligned depth)."""
    maps = {GRADIENT: image_gradient(rgb, network_hw), FAR: depth, NEAR: -depth}
    if confidence is not None:
        maps[HEAD] = -confidence
    if flip_error is not None:
        maps[FLIP] = flip_error
    return maps


def nested(means: Mapping[str, float]) -> tuple[dict[str, float], dict[str, dict]]:
    """Split frame means into the depth figures and the ``summary`` of the confidence ones."""
    depth = {k: v for k, v in means.items() if not k.startswith(("sparsification:", "ause:"))}
    return depth, summary(means)


def markdown(
    label: str, by_split: Mapping[str, Mapping[str, dict]], protocol: str = "each frame"
) -> list[str]:
    """The confidence table of one model and protocol: per split, each method's AUSE and
    AbsRel over all pixels, the most confident 80 % and 50 %."""
    lines = [
        f"Confidence of {label} ({protocol}): pixels removed by descending uncertainty, "
        "AbsRel of those kept",
        "",
        "| split | ranked by | AUSE ↓ | AbsRel, all | most confident 80 % | most confident "
        "50 % | cut at 50 % |",
        "|---|---|---|---|---|---|---|",
    ]
    order = [ORACLE, HEAD, *HEURISTICS]
    for split, methods in by_split.items():
        for method in sorted(methods, key=order.index):
            m = methods[method]
            lines.append(
                f"| {split} | {method} | {m['ause']:.3f} | {m['absrel_all']:.3f} | "
                f"{m['absrel_confident80']:.3f} | {m['absrel_confident50']:.3f} | "
                f"{m['cut50']:.0%} |"
            )
    return [*lines, ""]
