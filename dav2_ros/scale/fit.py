"""Robust fit of metric inverse depth = a·disparity + b from sparse metric samples.

A relative Depth Anything V2 model predicts affine-invariant inverse depth
("disparity"): the true inverse depth is ``a·disparity + b`` for an unknown
``a > 0`` and ``b``. Given a few metric depths at known pixels we recover
``a`` and ``b`` in inverse-depth space, the space the model is affine in.

The estimate targets what full ground truth would give: least squares in inverse
depth (the paper's alignment). Two robust stages get there despite gross outliers:
RANSAC on two-point hypotheses picks a starting line that outliers cannot lever,
then a Huber M-estimator (IRLS, scale from the MAD of the residuals) refines it on
all samples, so gross outliers lose their pull while the model's own, honestly
large errors keep theirs (cutting those off biases the line; measured in
``bench/scale_recovery.py``).

Quality is judged in *relative* terms (``(a·x + b)/y − 1`` with ``y = 1/depth_m``,
i.e. measured / predicted depth − 1), so one threshold means the same thing at
1 m and at 50 m: an inlier agrees within ``inlier_threshold``, and a fit whose
median disagreement exceeds ``max_residual`` is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Plenty to rank lines with two unknowns; a LiDAR's few thousand returns per frame would
# cost 3× the time to score (the node fits every frame; IRLS still uses all samples).
RANSAC_SCORING_SAMPLES = 1000
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution → its standard deviation


@dataclass(frozen=True)
class FitConfig:
    """Thresholds of the robust fit.

    The defaults reject fits that cannot be right (too few or flat samples, an
    inverted scale, sensor and model disagreeing by more than 30 % at the median)
    and keep fits of weak models, whose per-pixel errors are large but whose fitted
    depth is still the best available; tighten ``max_residual`` for a strong model.
    """

    min_samples: int = 20  # fewer valid samples than this: no fit at all
    min_inliers: int = 15  # samples agreeing with the fit; fewer: reject
    min_inlier_ratio: float = 0.2  # share of samples that must agree
    inlier_threshold: float = 0.25  # |relative residual| counted as agreement
    max_residual: float = 0.30  # reject when the median |relative residual| exceeds this
    min_disparity_spread: float = 0.05  # (p90 − p10) / median disparity; else a, b unidentifiable
    ransac_iterations: int = 200
    ransac_threshold: float = 0.25  # |relative residual| a RANSAC hypothesis counts as support
    huber_k: float = 3.0  # Huber turns linear at k·σ (σ from the MAD); large k → least squares
    irls_iterations: int = 20
    max_samples: int = 5000  # more valid samples are subsampled to this many (2 unknowns)
    seed: int = 0  # RANSAC is deterministic for a given input

    def __post_init__(self) -> None:
        if self.min_samples < 2 or self.min_inliers < 2:
            raise ValueError(
                f"min_samples and min_inliers must be >= 2 (two points fix a line), "
                f"got {self.min_samples} and {self.min_inliers}"
            )
        for name in ("inlier_threshold", "max_residual", "ransac_threshold", "huber_k"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ScaleFit:
    """Outcome of one fit: coefficients plus how much to trust them.

    ``ok`` is False for a rejected fit; ``reason`` then says why and ``a``/``b``
    hold whatever the estimator reached (NaN when it reached nothing).
    ``disagrees`` tells the two kinds of rejection apart: True when the samples
    contradict this prediction (inverted scale, too little agreement, large
    residual), False when they were merely too few or too flat to fit.
    """

    a: float
    b: float
    ok: bool
    reason: str
    num_samples: int  # valid samples offered to the fit
    num_inliers: int  # samples within inlier_threshold of the fit
    residual: float  # median |relative inverse-depth residual| over all samples
    disagrees: bool = False

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
        # With a line in hand, the samples were enough: they contradict the prediction.
        disagrees = bool(np.isfinite(a))
        return ScaleFit(float(a), float(b), False, reason, n, int(inliers), float(res), disagrees)

    if n < config.min_samples:
        return reject(f"too few valid samples: {n} < min_samples {config.min_samples}")
    median_x = float(np.median(x))
    spread = float(np.percentile(x, 90) - np.percentile(x, 10))
    if median_x <= 0 or spread < config.min_disparity_spread * abs(median_x):
        return reject(
            f"disparity spread too small to separate scale from shift: (p90-p10)/median = "
            f"{spread / max(abs(median_x), 1e-12):.4f} < {config.min_disparity_spread}"
        )

    start = _ransac_inliers(x, y, config)
    if start.sum() < 2:
        return reject("RANSAC found no consistent line through the samples")
    a, b = _huber_irls(x, y, start, config)
    if not a > 0:
        return reject(f"scale a = {a:.4g} is not positive (closer must mean larger)", a, b)
    relative = np.abs(_relative_residual(a, b, x, y))
    num_inliers = int((relative < config.inlier_threshold).sum())
    residual = float(np.median(relative))
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


def _relative_residual(a: float, b: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """measured / predicted depth − 1; a prediction at or beyond infinity counts as 100 %."""
    predicted = a * x + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(predicted > 0, predicted / y - 1.0, 1.0)


def _ransac_inliers(x: np.ndarray, y: np.ndarray, config: FitConfig) -> np.ndarray:
    """Support mask of the best two-point line (most support, ties → smaller residual).

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
    # Hypotheses × samples: 200 × 1000 float32 is 0.8 MB. float32 and a product with
    # 1/y instead of a quotient: scoring is a ranking, and this is the fit's hot loop.
    residual = np.multiply(a[:, None], xs[None, :], dtype=np.float32)
    residual += b[:, None].astype(np.float32)
    residual *= (1.0 / ys).astype(np.float32)[None, :]
    residual -= np.float32(1.0)
    np.abs(residual, out=residual)
    agree = residual < config.ransac_threshold
    # Among hypotheses with the top count, prefer positive scale, then lowest residual.
    score = agree.sum(axis=1) * 2.0 + (a > 0)
    np.minimum(residual, np.float32(config.ransac_threshold), out=residual)
    clipped = residual.sum(axis=1, dtype=np.float64)
    best = np.lexsort((clipped, -score))[0]
    return np.abs((a[best] * x + b[best]) / y - 1.0) < config.ransac_threshold


def _huber_irls(
    x: np.ndarray, y: np.ndarray, start: np.ndarray, config: FitConfig
) -> tuple[float, float]:
    """Huber M-estimate of ``y ≈ a·x + b`` on all samples, from the LS line of ``start``.

    Residuals are absolute inverse-depth errors, the quantity full-ground-truth
    least squares minimises; their scale σ is re-estimated from the MAD at every
    step, so ``huber_k`` is in units of the data's own spread.
    """
    a, b = _weighted_line(x[start], y[start], None)
    for _ in range(config.irls_iterations):
        residual = a * x + b - y
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(residual - np.median(residual))))
        if not sigma > 0:  # exact data: the line through it is already the answer
            break
        scaled = np.abs(residual) / (config.huber_k * sigma)
        weight = np.where(scaled <= 1.0, 1.0, 1.0 / np.maximum(scaled, 1e-12))
        a_new, b_new = _weighted_line(x, y, weight)
        converged = abs(a_new - a) <= 1e-9 * abs(a) + 1e-15
        a, b = a_new, b_new
        if converged:
            break
    return float(a), float(b)


def _weighted_line(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> tuple[float, float]:
    """Weighted least-squares line ``y ≈ a·x + b`` in closed form (about the weighted
    means, so large offsets cost no precision); ``weight`` None = all ones.

    The node fits every frame and IRLS solves this up to 20 times: the closed form is
    a few dot products where ``np.linalg.lstsq`` (an SVD) cost 5× more.
    """
    w = np.ones_like(x) if weight is None else weight
    total = float(w.sum())
    x_mean, y_mean = float(w @ x) / total, float(w @ y) / total
    dx = x - x_mean
    wdx = w * dx
    spread = float(wdx @ dx)
    if not spread > 0:  # all weight on one disparity: no slope to speak of
        return 0.0, y_mean
    a = float(wdx @ (y - y_mean)) / spread
    return a, y_mean - a * x_mean


def apply_scale(disparity: np.ndarray, a: float, b: float) -> np.ndarray:
    """Relative disparity → metric depth in metres (float32), NaN where undefined.

    Inverse depth ``a·disparity + b`` ≤ 0 is "at or beyond infinity" (e.g. sky with
    a negative shift): such pixels are invalid, NaN as REP 118 asks, never 0.
    """
    # float32 throughout, in place: 0.3 ms for a 640×480 frame against 8 ms in float64,
    # for a difference (~1e-7 relative) far below any model's error.
    inverse_depth = np.multiply(disparity, np.float32(a), dtype=np.float32)
    inverse_depth += np.float32(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth_m = np.reciprocal(inverse_depth)
    depth_m[~(inverse_depth > 0)] = np.nan
    return depth_m


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
