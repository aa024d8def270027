"""Losses and metrics against values worked out by hand (derivations in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from dav2_train.losses import (
    gradient_matching_terms,
    laplace_nll,
    live_range_penalty,
    log_depth_residual,
    normalise_disparity,
    relative_loss,
    silog_loss,
    ssi_residual,
    ssi_terms,
)
from dav2_train.metrics import align_scale_shift, da2k_correct, depth_metrics, relative_metrics


def _row(values: list[float]) -> torch.Tensor:
    return torch.tensor([[values]], dtype=torch.float64)  # 1 x 1 x N


def test_normalise_disparity_subtracts_median_and_divides_by_mean_abs_deviation() -> None:
    # [1..5]: median 3, mean |d - 3| = (2+1+0+1+2)/5 = 1.2
    out = normalise_disparity(_row([1, 2, 3, 4, 5]), torch.ones(1, 1, 5, dtype=torch.bool))
    expected = [-2 / 1.2, -1 / 1.2, 0, 1 / 1.2, 2 / 1.2]
    assert out[0, 0].tolist() == pytest.approx(expected)


def test_ssi_loss_is_zero_for_any_scale_and_shift_of_the_target() -> None:
    target = torch.rand(2, 6, 7, dtype=torch.float64) + 0.1
    mask = torch.ones_like(target, dtype=torch.bool)
    loss, _, _ = ssi_terms(3.7 * target + 0.25, target, mask)
    assert loss.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_ssi_loss_hand_computed_value() -> None:
    # target [1,2,3,4,5] -> [-5/3, -5/6, 0, 5/6, 5/3]   (median 3, MAD 6/5)
    # pred   [1,2,3,4,10] -> median 3, MAD (2+1+0+1+7)/5 = 11/5
    #                      -> [-10/11, -5/11, 0, 5/11, 35/11]
    # |residual| = [25/33, 25/66, 0, 25/66, 50/33], mean = (50+25+0+25+100)/66/5 = 200/330
    loss, _, _ = ssi_terms(
        _row([1, 2, 3, 4, 10]), _row([1, 2, 3, 4, 5]), torch.ones(1, 1, 5, dtype=torch.bool)
    )
    assert float(loss[0]) == pytest.approx(200 / 330)


def test_trimming_ignores_the_top_ten_percent_largest_residual_pixels() -> None:
    # Ten pixels, one grossly wrong prediction; trimming 10 % drops exactly that pixel.
    target = _row([float(v) for v in range(1, 11)])
    pred = target.clone()
    pred[0, 0, 3] = 50.0
    mask = torch.ones(1, 1, 10, dtype=torch.bool)
    _, residual, used = ssi_terms(pred, target, mask, trim_fraction=0.1)
    assert used.sum() == 9
    dropped = (~used).nonzero()[0, 2]
    assert int(dropped) == int(residual.abs().argmax()) == 3
    full, _, _ = ssi_terms(pred, target, mask)
    trimmed, _, _ = ssi_terms(pred, target, mask, trim_fraction=0.1)
    assert float(trimmed) < float(full)


def test_gradient_matching_is_normalised_per_valid_pixel() -> None:
    # residual 2x3 [[0, 1, 3], [0, 0, 0]]: x-diffs |1|,|2|,0,0 ; y-diffs 0,|1|,|3|
    # sum = 1+2+1+3 = 7 over 6 valid pixels (MiDaS), not over the 7 valid pairs
    residual = torch.tensor([[[0.0, 1, 3], [0, 0, 0]]])
    mask = torch.ones_like(residual, dtype=torch.bool)
    assert float(gradient_matching_terms(residual, mask, scales=1)[0]) == pytest.approx(7 / 6)
    # masking pixel (0, 2) removes the x pair (1,3) and the y pair (3,0): (1+0+0+1) / 5 pixels
    mask[0, 0, 2] = False
    assert float(gradient_matching_terms(residual, mask, scales=1)[0]) == pytest.approx(2 / 5)


def test_gradient_matching_second_scale_subsamples_residual_and_mask() -> None:
    # 3x3 residual; scale 1 keeps rows and columns 0 and 2: [[0, 4], [2, 0]]
    residual = torch.tensor([[[0.0, 1, 4], [0, 1, 0], [2, 1, 0]]])
    mask = torch.ones_like(residual, dtype=torch.bool)
    # scale 0, x: |1-0|+|4-1| + |1-0|+|0-1| + |1-2|+|0-1| = 4 + 2 + 2 = 8
    #          y: |0-0|+|1-1|+|0-4| + |2-0|+|1-1|+|0-0| = 4 + 2 = 6 ; (8 + 6) / 9 pixels
    # scale 1, x: |4-0| + |0-2| = 6 ; y: |2-0| + |0-4| = 6 ; 12 / 4 pixels = 3
    two_scales = float(gradient_matching_terms(residual, mask, scales=2)[0])
    assert two_scales == pytest.approx(14 / 9 + 3)


def test_relative_loss_weights_gradient_term_by_two() -> None:
    pred, target = torch.rand(1, 8, 8) + 0.1, torch.rand(1, 8, 8) + 0.1
    mask = torch.ones_like(pred, dtype=torch.bool)
    ssi, residual, used = ssi_terms(pred, target, mask)
    expected = ssi + 2.0 * gradient_matching_terms(residual, used)
    assert float(relative_loss(pred, target, mask)) == pytest.approx(float(expected[0]))


def test_cutmix_regions_are_normalised_separately_and_weighted_by_area() -> None:
    # Left 3 pixels from image A (label [1,2,3]), right 2 from image B (label [10, 30]).
    # The prediction matches each region up to its own scale and shift: loss 0, although
    # one joint normalisation of the mixed label would not fit it.
    target = _row([1, 2, 3, 10, 30])
    pred = _row([5, 7, 9, 0, 1])  # A: 2x+3, B: (x-10)/20
    mask = torch.ones(1, 1, 5, dtype=torch.bool)
    region = torch.tensor([[[False, False, False, True, True]]])
    assert float(relative_loss(pred, target, mask, 0.0, 0.0, region)) == pytest.approx(0, abs=1e-12)
    assert float(relative_loss(pred, target, mask, 0.0, 0.0)) > 0.1
    # A fits, B does not: each region is scored alone, weighted by its pixel count.
    target = _row([1, 2, 3, 1, 2, 3])
    pred = _row([1, 2, 3, 1, 2, 10])  # B = [1,2,10] vs [1,2,3]
    region = torch.tensor([[[False, False, False, True, True, True]]])
    mask = torch.ones(1, 1, 6, dtype=torch.bool)
    # B: target -> [-1.5, 0, 1.5] (median 2, MAD 2/3); pred [1,2,10] -> median 2,
    # MAD (1+0+8)/3 = 3 -> [-1/3, 0, 8/3]; |res| = [7/6, 0, 7/6], mean 7/9.
    # Sample loss = (3 * 0 + 3 * 7/9) / 6 = 7/18
    value = relative_loss(pred, target, mask, 0.0, 0.0, region)
    assert float(value) == pytest.approx(7 / 18)


def test_live_range_penalty_hand_computed_scale_free_and_zero_on_a_live_output() -> None:
    z = torch.tensor([[[-2.0, -1.0, 1.0, 2.0]]], requires_grad=True)
    # relu(-z) = [2, 1, 0, 0], mean 0.75; spread = std([-2, -1, 1, 2]) = sqrt(10 / 3)
    penalty = live_range_penalty(z)
    assert float(penalty.detach()) == pytest.approx(0.75 / math.sqrt(10 / 3))
    assert float(live_range_penalty(3.0 * z).detach()) == pytest.approx(float(penalty.detach()))
    penalty.backward()
    assert (z.grad[0, 0, :2] < 0).all() and (z.grad[0, 0, 2:] == 0).all()  # lifts dead pixels
    assert float(live_range_penalty(torch.tensor([[[0.0, 1.0, 3.0]]]))) == 0.0


def test_silog_hand_computed_value() -> None:
    # pred = 2 * gt: g = log 2 everywhere -> sqrt(log²2 - 0.5 log²2) = log 2 / sqrt 2
    gt = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert float(silog_loss(2 * gt, gt, mask, lam=0.5)) == pytest.approx(math.log(2) / math.sqrt(2))
    # g = [log 2, 0] on two pixels: mean g² = log²2/2, mean g = log2/2 -> sqrt(log²2 (1/2 - 1/8))
    pred = torch.tensor([2.0, 1.0])
    value = silog_loss(pred, torch.ones(2), torch.ones(2, dtype=torch.bool), lam=0.5)
    assert float(value) == pytest.approx(math.log(2) * math.sqrt(3 / 8))


def test_silog_ignores_masked_pixels() -> None:
    gt = torch.tensor([1.0, 2.0, 4.0])
    pred = torch.tensor([1.0, 2.0, 400.0])
    mask = torch.tensor([True, True, False])
    assert float(silog_loss(pred, gt, mask)) < 2e-3  # sqrt of the 1e-6 floor


def test_depth_metrics_hand_computed() -> None:
    gt = np.array([1.0, 2.0, 4.0, 10.0])
    pred = np.array([1.1, 2.0, 6.0, 10.0])  # |err|/gt = 0.1, 0, 0.5, 0 ; ratio 1.1, 1, 1.5, 1
    m = depth_metrics(pred, gt, np.ones(4, bool))
    assert m["absrel"] == pytest.approx(0.15)
    assert m["delta1"] == pytest.approx(0.75)


def test_relative_metrics_are_perfect_for_affine_disparity() -> None:
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    disparity = 5.0 / gt + 0.3  # any scale and shift of 1/depth
    m = relative_metrics(disparity, gt, np.ones_like(gt, bool), max_depth_m=20.0)
    assert m["absrel"] == pytest.approx(0.0, abs=1e-9)
    assert m["delta1"] == 1.0


def test_align_scale_shift_recovers_the_affine_map() -> None:
    pred = np.array([0.0, 1.0, 2.0, 3.0])
    aligned = align_scale_shift(pred, 2 * pred + 1, np.ones(4, bool))
    assert aligned.tolist() == pytest.approx([1, 3, 5, 7])


def test_da2k_counts_pairs_where_the_closer_point_has_larger_disparity() -> None:
    disparity = np.array([[1.0, 0.5], [0.2, 0.9]])
    pairs = [
        {"point1": [0, 0], "point2": [0, 1], "closer_point": "point1"},  # right
        {"point1": [1, 0], "point2": [1, 1], "closer_point": "point1"},  # wrong
        {"point1": [1, 0], "point2": [0, 1], "closer_point": "point2"},  # right
    ]
    assert da2k_correct(disparity, pairs) == (2, 3)


def test_laplace_nll_is_smallest_at_the_mean_absolute_error_and_leaves_the_residual_alone() -> None:
    # ln b + mean|r| / b over b: derivative 1/b - mean|r|/b² = 0 at b = mean|r| = 0.3
    residual = torch.tensor([[[0.1, -0.2, 0.6]]], requires_grad=True)
    mask = torch.ones(1, 1, 3, dtype=torch.bool)
    scales = [0.1, 0.2, 0.3, 0.4, 0.6]
    losses = [
        float(laplace_nll(torch.full((1, 1, 3), math.log(b)), residual, mask)) for b in scales
    ]
    assert min(range(len(scales)), key=losses.__getitem__) == 2
    assert losses[2] == pytest.approx(math.log(0.3) + 1.0)
    log_error = torch.zeros(1, 1, 3, requires_grad=True)
    laplace_nll(log_error, residual, mask).backward()
    assert residual.grad is None and log_error.grad is not None  # a target, never trained


def test_log_depth_residual_is_the_log_ratio_on_valid_pixels_only() -> None:
    pred = torch.tensor([[[2.2, 1.0, 5.0]]])
    target = torch.tensor([[[2.0, 2.0, 0.0]]])
    valid = torch.tensor([[[True, True, False]]])
    out = log_depth_residual(pred, target, valid)
    assert out[0, 0].tolist() == pytest.approx([math.log(1.1), math.log(0.5), 0.0])


def test_ssi_residual_ignores_scale_and_shift_per_cutmix_region() -> None:
    target = _row([1, 2, 3, 4, 5, 6, 7, 8])
    region = torch.tensor([[[False] * 4 + [True] * 4]])
    # Each region of the prediction is another affine map of the target: no error.
    pred = torch.where(region, 5 * target - 2, 0.5 * target + 3)
    mask = torch.ones_like(region)
    assert ssi_residual(pred, target, mask, region).abs().max() < 1e-9
    assert ssi_residual(pred, target, mask).abs().max() > 0.1  # one normalisation cannot
