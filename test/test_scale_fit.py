"""Robust scale-and-shift fit in inverse-depth space, on hand-made samples with known a, b."""

from __future__ import annotations

import numpy as np
import pytest

from dav2_ros.scale import FitConfig, align_least_squares, apply_scale, fit_scale_shift

A_TRUE, B_TRUE = 0.25, 0.01  # metric inverse depth (1/m) = a·disparity + b


def _samples(n=2000, noise=0.0, outliers=0.0, seed=0, depth_range=(1.0, 30.0)):
    rng = np.random.default_rng(seed)
    depth_m = rng.uniform(*depth_range, n)
    disparity = (1.0 / depth_m - B_TRUE) / A_TRUE
    measured = depth_m * (1.0 + noise * rng.standard_normal(n))
    bad = rng.random(n) < outliers
    measured[bad] = rng.uniform(0.3, 60.0, bad.sum())
    return disparity, measured


def test_exact_samples_recover_a_and_b():
    fit = fit_scale_shift(*_samples())
    assert fit.ok, fit.reason
    assert fit.a == pytest.approx(A_TRUE, rel=1e-9)
    assert fit.b == pytest.approx(B_TRUE, rel=1e-7)
    assert fit.num_inliers == fit.num_samples == 2000
    assert fit.residual < 1e-9


def test_noise_and_gross_outliers_are_rejected_by_ransac_and_huber():
    disparity, depth_m = _samples(noise=0.02, outliers=0.2, seed=3)
    fit = fit_scale_shift(disparity, depth_m)
    assert fit.ok, fit.reason
    assert fit.a == pytest.approx(A_TRUE, rel=0.01)
    assert fit.b == pytest.approx(B_TRUE, abs=0.002)
    assert 0.75 < fit.inlier_ratio < 0.85  # 20 % outliers, a few of which land near the line
    # Plain least squares on the same data is visibly worse: the robust stages matter.
    a_ls, _ = align_least_squares(disparity, depth_m)
    assert abs(a_ls - A_TRUE) > 5 * abs(fit.a - A_TRUE)


def test_invalid_samples_are_dropped_not_fitted():
    disparity, depth_m = _samples(n=200)
    depth_m[:50] = [np.nan, 0.0, -1.0, np.inf, 0.0] * 10
    fit = fit_scale_shift(disparity, depth_m)
    assert fit.ok and fit.num_samples == 150
    assert fit.a == pytest.approx(A_TRUE, rel=1e-9)


def test_too_few_samples_is_rejected_with_the_count():
    fit = fit_scale_shift(*_samples(n=10))
    assert not fit.ok and not fit.disagrees  # no verdict on the prediction
    assert "too few valid samples: 10" in fit.reason


def test_flat_scene_cannot_separate_scale_from_shift():
    disparity, depth_m = _samples(depth_range=(4.99, 5.01))
    fit = fit_scale_shift(disparity, depth_m)
    assert not fit.ok
    assert "spread" in fit.reason


def test_negative_scale_is_rejected():
    # Depth that grows with disparity: the source is inverted (e.g. disparity fed as depth).
    rng = np.random.default_rng(1)
    disparity = rng.uniform(1, 10, 500)
    fit = fit_scale_shift(disparity, disparity * 2.0)
    assert not fit.ok and fit.disagrees
    assert "not positive" in fit.reason


def test_pure_noise_is_rejected_for_residual_or_inliers():
    rng = np.random.default_rng(2)
    fit = fit_scale_shift(rng.uniform(0, 1, 1000), rng.uniform(1, 50, 1000))
    assert not fit.ok and fit.disagrees
    assert any(word in fit.reason for word in ("inlier", "residual", "not positive"))


def test_min_inliers_is_enforced():
    disparity, depth_m = _samples(n=40)
    assert fit_scale_shift(disparity, depth_m, FitConfig(min_samples=20, min_inliers=30)).ok
    fit = fit_scale_shift(disparity, depth_m, FitConfig(min_samples=20, min_inliers=50))
    assert not fit.ok and "too few inliers: 40 < min_inliers 50" in fit.reason


def test_mismatched_lengths_raise_a_clear_error():
    with pytest.raises(ValueError, match="3 disparities and 2 depths"):
        fit_scale_shift(np.ones(3), np.ones(2))


def test_fit_is_deterministic():
    data = _samples(noise=0.02, outliers=0.05, seed=7)
    assert fit_scale_shift(*data) == fit_scale_shift(*data)


def test_apply_scale_gives_metres_and_nan_beyond_infinity():
    disparity = np.array([[4.0, 0.0], [-0.04 / A_TRUE * 2, 1.0]], dtype=np.float32)
    depth_m = apply_scale(disparity, A_TRUE, -0.04)
    assert depth_m.dtype == np.float32
    assert depth_m[0, 0] == pytest.approx(1.0 / (A_TRUE * 4.0 - 0.04))
    assert np.isnan(depth_m[0, 1]) and np.isnan(depth_m[1, 0])  # inverse depth ≤ 0
    assert depth_m[1, 1] == pytest.approx(1.0 / (A_TRUE - 0.04))


def test_least_squares_alignment_is_exact_on_affine_data():
    disparity, depth_m = _samples(n=300)
    valid = np.ones(300, dtype=bool)
    valid[:10] = False
    depth_m[:10] = 1e6  # excluded by the mask, would wreck the fit otherwise
    a, b = align_least_squares(disparity, depth_m, valid)
    assert a == pytest.approx(A_TRUE, rel=1e-9) and b == pytest.approx(B_TRUE, rel=1e-7)


def test_weighted_line_matches_an_svd_least_squares_solve():
    # IRLS's closed-form solve against numpy's SVD one, with weights and with a large
    # disparity offset (the closed form works about the weighted means to stay exact).
    from dav2_ros.scale.fit import _weighted_line

    rng = np.random.default_rng(5)
    x = 1e3 + rng.uniform(0.0, 2.0, 500)
    y = 0.3 * x - 290.0 + rng.normal(0.0, 0.05, 500)
    weight = rng.uniform(0.05, 1.0, 500)
    design = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(weight)[:, None]
    (a_svd, b_svd), *_ = np.linalg.lstsq(design, y * np.sqrt(weight), rcond=None)
    a, b = _weighted_line(x, y, weight)
    assert a == pytest.approx(a_svd, rel=1e-9)
    assert b == pytest.approx(b_svd, rel=1e-9)
    assert _weighted_line(np.full(5, 2.0), np.arange(5.0), None) == (0.0, 2.0)  # no slope
