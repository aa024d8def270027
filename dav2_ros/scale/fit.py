"""Robust fit of metric inverse depth = a·disparity + b from sparse metric samples.

A relative Depth Anything V2 model predicts affine-invariant inverse depth
("disparity"): the true inverse depth is ``a·disparity + b`` for an unknown
``a > 0`` and ``b``. Given a few metric depths at known pixels we recover
``a`` and ``b`` in inverse-depth space, the space the model is affine in.

Residuals are *relative* (``(a·x + b)/y − 1`` with ``y = 1/depth_m``), so one
threshold means the same thing at 1 m and at 50 m and a 2 % depth noise is a
2 % residual everywhere. Two robust stages: RANSAC on two-point hypotheses
finds the inlier set despite gross outliers, then Huber IRLS refines on it.
Last, that line competes with plain inverse-depth least squares on all and on
outlier-cleaned samples (better for weak models): the lowest trimmed AbsRel on
the samples wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANSAC_SCORING_SAMPLES = 5000  # plenty to rank lines with two unknowns


@dataclass(frozen=True)
class FitConfig:
    """Thresholds of the robust fit; the defaults suit 2-5 % depth noise."""

    min_samples: int = 20  # fewer valid samples than this: no fit at all
    min_inliers: int = 15  # RANSAC consensus below this: reject
    min_inlier_ratio: float = 0.3  # share of samples that must agree
    inlier_threshold: float = 0.10  # |relative residual| counted as agreement
    max_residual: float = 0.08  # reject when the inliers' median |residual| exceeds this
    min_disparity_spread: float = 0.05  # (p90 − p10) / median disparity; else a, b unidentifiable
    ransac_iterations: int = 200
    huber_delta: float = 0.02  # relative residual where Huber turns linear (≈ noise level)
    irls_iterations: int = 10
    max_samples: int = 5000  # more valid samples are subsampled to this many (2 unknowns)
    seed: int = 0  # RANSAC is deterministic for a given input

    def __post_init__(self) -> None:
        if self.min_samples < 2 or self.min_inliers < 2:
            raise ValueError(
                f"min_samples and min_inliers must be >= 2 (two points fix a line), "
                f"got {self.min_samples} and {self.min_inliers}"
            )
        for name in ("inlier_threshold", "max_residual", "huber_delta"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ScaleFit:
    """Outcome of one fit: coefficients plus how much to trust them.

    ``ok`` is False for a rejected fit; ``reason`` then says why and ``a``/``b``
    hold whatever the estimator reached (NaN when it reached nothing).
    """

    a: float
    b: float
    ok: bool
    reason: str
    num_samples: int  # valid samples offered to the fit
    num_inliers: int
    residual: float  # median |relative inverse-depth residual| over the inliers

    @property
    def inlier_ratio(self) -> float:
        return self.num_inliers / self.num_samples if self.num_samples else 0.0


def fit_scale_shift(
    disparity: np.ndarray, depth_m: np.ndarray, config: FitConfig | None = None
) -> ScaleFit:
    """Fit ``1/depth_m ≈ a·disparity + b`` robustly; reject degenerate fits.

    ``disparity`` and ``depth_m`` are matching 1-D arrays of samples (any
    float dtype). Non-finite values and depths ≤ 0 are dropped as invalid.
    Never raises for bad data: a rejected ``ScaleFit`` says what was wrong.
    """
    config = config or FitConfig()
    disparity = np.asarray(disparity, dtype=np.float64).ravel()
    depth_m = np.asarray(depth_m, dtype=np.float64).ravel()
    if disparity.shape != depth_m.shape:
        raise ValueError(
            f"disparity and depth_m must have one value per sample, got "
            f"{disparity.size} disparities and {depth_m.size} depths"
        )
    valid = np.isfinite(disparity) & np.isfinite(depth_m) & (depth_m > 0)
    x, y = disparity[valid], 1.0 / depth_m[valid]
    if x.size > config.max_samples:
        keep = np.random.default_rng(config.seed).choice(x.size, config.max_samples, replace=False)
        x, y = x[keep], y[keep]
    n = int(x.size)

    def reject(reason: str, a: float = np.nan, b: float = np.nan, inliers: int = 0, res=np.nan):
        return ScaleFit(float(a), float(b), False, reason, n, int(inliers), float(res))

    if n < config.min_samples:
        return reject(f"too few valid samples: {n} < min_samples {config.min_samples}")
    median_x = float(np.median(x))
    spread = float(np.percentile(x, 90) - np.percentile(x, 10))
    if median_x <= 0 or spread < config.min_disparity_spread * abs(median_x):
        return reject(
            f"disparity spread too small to separate scale from shift: (p90-p10)/median = "
            f"{spread / max(abs(median_x), 1e-12):.4f} < {config.min_disparity_spread}"
        )

    inliers = _ransac_inliers(x, y, config)
    if inliers.sum() < 2:
        return reject("RANSAC found no consistent line through the samples")
    a, b, inliers = _huber_irls(x, y, inliers, config)
    a, b = _best_for_depth_error(x, y, [(a, b), *_absolute_refits(x, y, a, b)])
    residual_all = np.abs((a * x + b) / y - 1.0)
    inliers = residual_all < config.inlier_threshold
    num_inliers = int(inliers.sum())
    residual = float(np.median(residual_all[inliers])) if num_inliers else np.inf
    if not a > 0:
        return reject(f"scale a = {a:.4g} is not positive (closer must mean larger)", a, b)
    if num_inliers < config.min_inliers:
        return reject(
            f"too few inliers: {num_inliers} < min_inliers {config.min_inliers}",
            a,
            b,
            num_inliers,
            residual,
        )
    if num_inliers < config.min_inlier_ratio * n:
        return reject(
            f"inlier ratio {num_inliers / n:.2f} < {config.min_inlier_ratio}",
            a,
            b,
            num_inliers,
            residual,
        )
    if residual > config.max_residual:
        return reject(
            f"median residual {residual:.3f} > max_residual {config.max_residual}",
            a,
            b,
            num_inliers,
            residual,
        )
    return ScaleFit(float(a), float(b), True, "ok", n, num_inliers, residual)


def _ransac_inliers(x: np.ndarray, y: np.ndarray, config: FitConfig) -> np.ndarray:
    """Inlier mask of the best two-point line (most inliers, ties → smaller residual).

    Hypotheses are scored on at most ``RANSAC_SCORING_SAMPLES`` samples, so memory
    and time stay bounded however many samples a calibration pools.
    """
    rng = np.random.default_rng(config.seed)
    if x.size > RANSAC_SCORING_SAMPLES:
        subset = rng.choice(x.size, RANSAC_SCORING_SAMPLES, replace=False)
        xs, ys = x[subset], y[subset]
    else:
        xs, ys = x, y
    pairs = rng.integers(0, xs.size, size=(config.ransac_iterations, 2))
    x0, x1 = xs[pairs[:, 0]], xs[pairs[:, 1]]
    y0, y1 = ys[pairs[:, 0]], ys[pairs[:, 1]]
    dx = x1 - x0
    usable = np.abs(dx) > 1e-12 * max(float(np.abs(xs).max()), 1e-12)
    if not usable.any():
        return np.zeros(x.size, dtype=bool)
    a = (y1[usable] - y0[usable]) / dx[usable]
    b = y0[usable] - a * x0[usable]
    # Hypotheses × samples: 200 × 5000 float64 is 8 MB.
    residual = np.abs((a[:, None] * xs[None, :] + b[:, None]) / ys[None, :] - 1.0)
    agree = residual < config.inlier_threshold
    # Among hypotheses with the top count, prefer positive scale, then lowest residual.
    score = agree.sum(axis=1) * 2.0 + (a > 0)
    clipped = np.where(agree, residual, config.inlier_threshold).sum(axis=1)
    best = np.lexsort((clipped, -score))[0]
    return np.abs((a[best] * x + b[best]) / y - 1.0) < config.inlier_threshold


def _huber_irls(
    x: np.ndarray, y: np.ndarray, inliers: np.ndarray, config: FitConfig
) -> tuple[float, float, np.ndarray]:
    """Refine a, b with Huber-weighted least squares on relative residuals.

    Starts from the RANSAC inliers, re-derives the inlier set from each
    refined line, so a lucky or unlucky hypothesis does not fix the result.
    """
    mask = inliers.copy()
    a = b = np.nan
    for _ in range(config.irls_iterations):
        if mask.sum() < 2:
            break
        xs, ys = x[mask], y[mask]
        weights = np.ones(xs.size)
        if np.isfinite(a):
            r = np.abs((a * xs + b) / ys - 1.0)
            weights = np.where(
                r <= config.huber_delta, 1.0, config.huber_delta / np.maximum(r, 1e-12)
            )
        # Relative residual (a·x + b − y)/y: divide each row by y, then weight.
        w = np.sqrt(weights) / ys
        design = np.stack([xs * w, w], axis=1)
        (a_new, b_new), *_ = np.linalg.lstsq(design, ys * w, rcond=None)
        converged = np.isfinite(a) and abs(a_new - a) <= 1e-9 * abs(a) + 1e-15
        a, b = float(a_new), float(b_new)
        mask = np.abs((a * x + b) / y - 1.0) < config.inlier_threshold
        if converged:
            break
    return a, b, mask


def _absolute_refits(x: np.ndarray, y: np.ndarray, a: float, b: float) -> list[tuple[float, float]]:
    """Unweighted least squares in inverse depth on loosely cleaned samples.

    The relative-residual fit suits a good model (it pins far depth down, and
    AbsRel punishes far errors hardest). A weak model's errors are large and
    structured; there the paper's plain inverse-depth least squares is often
    better. Candidates: all samples, and samples within max(0.2, 3·MAD) or 0.5 of
    relative residual of the relative fit (gross outliers left out).
    """
    residual = (a * x + b) / y - 1.0
    mad = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    # All samples too: when the model's errors dwarf the outliers this is the best of all.
    (a_all, b_all), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
    fits = [(float(a_all), float(b_all))]
    for threshold in (max(0.2, 3.0 * mad), 0.5):
        keep = np.abs(residual) < threshold
        line = None
        for _ in range(5):  # re-select around the refitted line; converges in a few steps
            if keep.sum() < 2:
                break
            design = np.stack([x[keep], np.ones(int(keep.sum()))], axis=1)
            (a_ls, b_ls), *_ = np.linalg.lstsq(design, y[keep], rcond=None)
            line = (float(a_ls), float(b_ls))
            keep_new = np.abs((a_ls * x + b_ls) / y - 1.0) < threshold
            if (keep_new == keep).all():
                break
            keep = keep_new
        if line is not None:
            fits.append(line)
    return fits


def _best_for_depth_error(
    x: np.ndarray, y: np.ndarray, candidates: list[tuple[float, float]]
) -> tuple[float, float]:
    """The candidate with the lowest trimmed mean |depth error| / depth on the samples.

    That is the samples' own estimate of AbsRel; the worst 10 % are trimmed so
    outliers do not vote. Depth at or beyond infinity counts as a 100 % error.
    """
    best, best_error = candidates[0], np.inf
    for a, b in candidates:
        if not (np.isfinite(a) and np.isfinite(b) and a > 0):
            continue
        predicted_inverse = a * x + b
        with np.errstate(divide="ignore"):
            error = np.where(predicted_inverse > 0, np.abs(y / predicted_inverse - 1.0), 1.0)
        error = np.sort(error)[: max(int(0.9 * error.size), 1)]
        if error.mean() < best_error:
            best, best_error = (a, b), float(error.mean())
    return best


def apply_scale(disparity: np.ndarray, a: float, b: float) -> np.ndarray:
    """Relative disparity → metric depth in metres (float32), NaN where undefined.

    Inverse depth ``a·disparity + b`` ≤ 0 is "at or beyond infinity" (e.g. sky with
    a negative shift): such pixels are invalid, NaN as REP 118 asks, never 0.
    """
    inverse_depth = a * disparity.astype(np.float64) + b
    with np.errstate(divide="ignore", invalid="ignore"):
        depth_m = np.where(inverse_depth > 0, 1.0 / inverse_depth, np.nan)
    return depth_m.astype(np.float32)


def align_least_squares(
    disparity: np.ndarray, depth_m: np.ndarray, valid: np.ndarray | None = None
) -> tuple[float, float]:
    """Oracle alignment: plain least squares of 1/depth on disparity over all valid pixels.

    The evaluation convention of the paper (scale and shift in inverse-depth space),
    used as the reference the sparse fit is compared against.
    """
    x = np.asarray(disparity, dtype=np.float64).ravel()
    d = np.asarray(depth_m, dtype=np.float64).ravel()
    mask = np.isfinite(x) & np.isfinite(d) & (d > 0)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool).ravel()
    if mask.sum() < 2:
        raise ValueError(f"need at least 2 valid pixels to align, got {int(mask.sum())}")
    design = np.stack([x[mask], np.ones(int(mask.sum()))], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, 1.0 / d[mask], rcond=None)
    return float(a), float(b)
