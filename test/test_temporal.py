"""Flicker measure and temporal stabiliser on sequences with known scale behaviour.

The measure is checked against closed-form answers (predictions that are the truth
times a known scale, or a known affine of the true inverse depth); the stabiliser
against what an exponential moving average of the scale must do (jitter shrinks, a
ramp trails by strength / (1 - strength) frames, a step is half followed after one
frame at strength 0.5) and against what it must not do (touch AbsRel of a relative
model, follow pixels whose image changed, align across a cut).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dav2_ros.temporal import (
    TemporalSettings,
    TemporalStabilizer,
    fit_frame,
    score_sequence,
)

H, W = 120, 160
ALIGN = TemporalSettings(mode="align", strength=0.5)


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured RGB image and a smooth depth field (1-8 m) of the same view."""
    rng = np.random.default_rng(seed)
    texture = cv2.resize(rng.uniform(0, 255, (12, 16, 3)), (W, H), interpolation=cv2.INTER_CUBIC)
    depth = cv2.resize(rng.uniform(1.0, 8.0, (3, 4)), (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(texture, 0, 255).astype(np.uint8), depth.astype(np.float32)


def noisy(image: np.ndarray, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    return np.clip(image * gain + rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)


def fit_scales(values: list[np.ndarray], depth: np.ndarray) -> np.ndarray:
    valid = np.ones(depth.shape, bool)
    return np.array([fit_frame(v, depth, valid, "metric").a for v in values])


# --- the measure ---------------------------------------------------------------------


def test_metric_flicker_is_the_change_of_each_frames_own_scale() -> None:
    _, depth = scene()
    scales = [1.0, 1.1, 0.95, 0.95, 1.2]
    predictions = [depth / s for s in scales]  # fit of frame t: exactly s_t
    valid = [np.ones(depth.shape, bool)] * len(scales)
    score = score_sequence(predictions, [depth] * len(scales), valid, "metric")
    expected = [abs(math.log(b / a)) for a, b in zip(scales, scales[1:], strict=False)]
    np.testing.assert_allclose(score.per_frame_flicker, expected, rtol=1e-6, atol=1e-9)
    assert score.flicker == pytest.approx(np.mean(expected), rel=1e-6)
    np.testing.assert_allclose(score.per_frame_abs_rel, [abs(1 / s - 1) for s in scales], 1e-5)


def test_relative_flicker_compares_consecutive_affine_fits_on_this_frame() -> None:
    _, depth = scene()
    affines = [(2.0, 0.1), (2.4, 0.05), (2.4, 0.05), (1.5, 0.3)]  # disparity = a / depth + b
    predictions = [(a / depth + b).astype(np.float32) for a, b in affines]
    valid = np.ones(depth.shape, bool)
    score = score_sequence(predictions, [depth] * 4, [valid] * 4, "relative")
    assert max(score.per_frame_abs_rel) < 1e-5  # affine-invariant: every frame fits exactly
    for t in range(1, 4):
        # The previous frame's map (disparity -> metres) applied to this frame's prediction.
        a_prev, b_prev = affines[t - 1]
        before = a_prev / (predictions[t].astype(np.float64) - b_prev)
        expected = np.median(np.abs(np.log(depth / before)))
        assert score.per_frame_flicker[t - 1] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert score.per_frame_flicker[1] < 1e-6 < score.per_frame_flicker[0]


def test_camera_motion_is_not_flicker() -> None:
    """Perfect predictions of a changing view: the truth moves, the fit does not."""
    depths = [scene(seed)[1] for seed in range(4)]
    valid = [np.ones((H, W), bool)] * 4
    score = score_sequence([d * 1.1 for d in depths], depths, valid, "metric")
    assert score.flicker < 1e-6 and score.abs_rel == pytest.approx(0.1, rel=1e-4)


# --- the stabiliser ------------------------------------------------------------------


def run(settings, depth_type, images, values, stamps=None) -> list:
    stabilizer = TemporalStabilizer(settings, depth_type)
    stamps = stamps or [i / 10 for i in range(len(values))]
    return [stabilizer.update(i, v, s) for i, v, s in zip(images, values, stamps, strict=True)]


def test_mode_none_passes_predictions_through_untouched() -> None:
    image, depth = scene()
    (result,) = run(TemporalSettings(), "metric", [image], [depth])
    assert result.values is depth and not result.aligned and result.reason == "temporal mode none"


def test_still_camera_scale_jitter_shrinks_without_hurting_abs_rel() -> None:
    image, depth = scene()
    rng = np.random.default_rng(1)
    scales = np.exp(rng.normal(0, 0.05, 40))  # the model's scale jitters 5 % frame to frame
    values = [depth * s for s in scales]
    images = [noisy(image, rng, gain=rng.normal(1, 0.02)) for _ in scales]
    results = run(ALIGN, "metric", images, values)
    assert all(r.aligned for r in results[1:]) and min(r.static_fraction for r in results[1:]) > 0.9
    valid = [np.ones(depth.shape, bool)] * len(values)
    raw = score_sequence(values, [depth] * len(values), valid, "metric")
    stable = score_sequence([r.values for r in results], [depth] * len(values), valid, "metric")
    # An EMA with weight 0.5 on white jitter: frame-to-frame change x sqrt(1/6) ~ 0.41.
    assert stable.flicker < 0.6 * raw.flicker
    assert stable.abs_rel <= raw.abs_rel


def test_a_steady_scale_ramp_trails_by_one_frame_at_strength_half() -> None:
    image, depth = scene()
    rng = np.random.default_rng(2)
    step = 0.03  # the prediction's scale grows 3 % per frame
    values = [depth * math.exp(step * t) for t in range(30)]
    results = run(ALIGN, "metric", [noisy(image, rng) for _ in values], values)
    output_scales = fit_scales([r.values for r in results], depth)  # = 1 / output scale
    raw_scales = fit_scales(values, depth)
    # Settled: the output's scale is the raw one of the frame before (lag = 1 frame).
    np.testing.assert_allclose(output_scales[10:], raw_scales[9:-1], rtol=2e-3)
    assert ALIGN.lag_frames == 1.0
    assert TemporalSettings(mode="align", strength=0.75).lag_frames == 3.0


def test_a_step_is_half_followed_after_one_frame_and_fully_soon_after() -> None:
    image, depth = scene()
    rng = np.random.default_rng(3)
    values = [depth] * 5 + [depth * 1.2] * 8
    results = run(ALIGN, "metric", [noisy(image, rng) for _ in values], values)
    applied = np.log([r.scale for r in results])  # correction toward the previous output
    assert applied[5] == pytest.approx(-0.5 * math.log(1.2), abs=3e-3)
    assert abs(applied[-1]) < 0.01 * math.log(1.2)


def test_relative_output_keeps_abs_rel_and_loses_affine_jitter() -> None:
    image, depth = scene()
    rng = np.random.default_rng(4)
    affines = [(math.exp(rng.normal(0, 0.1)), rng.normal(0, 0.02)) for _ in range(30)]
    values = [(a / depth + b).astype(np.float32) for a, b in affines]
    images = [noisy(image, rng) for _ in values]
    results = run(ALIGN, "relative", images, values)
    valid = [np.ones(depth.shape, bool)] * len(values)
    raw = score_sequence(values, [depth] * len(values), valid, "relative")
    stable = score_sequence([r.values for r in results], [depth] * len(values), valid, "relative")
    assert stable.flicker < 0.6 * raw.flicker
    assert stable.abs_rel == pytest.approx(raw.abs_rel, abs=1e-6)  # an affine map changes none


def test_pixels_whose_image_changed_do_not_pull_the_alignment() -> None:
    """Something walks into the left half (new look, nearer depth) while the model's
    scale jumps 10 %: the correction comes from the unchanged right half alone."""
    image, depth = scene()
    other_image, _ = scene(seed=9)
    rng = np.random.default_rng(5)
    second_image, second_depth = image.copy(), depth * 1.1
    second_image[:, : W // 2] = other_image[:, : W // 2]
    second_depth[:, : W // 2] = 0.5
    results = run(
        ALIGN, "metric", [noisy(image, rng), noisy(second_image, rng)], [depth, second_depth]
    )
    assert results[1].aligned and 0.4 < results[1].static_fraction < 0.6
    assert results[1].scale == pytest.approx(1.1**-0.5, rel=2e-3)


@pytest.mark.parametrize(
    "second, stamp_s, reason",
    [
        ("other view", 0.1, "of the image unchanged"),
        ("same", 2.0, "s since the previous frame"),
        ("same", 0.05, None),
        ("smaller", 0.1, "image size changed"),
    ],
)
def test_no_alignment_across_a_cut_a_gap_or_a_new_size(second, stamp_s, reason) -> None:
    image, depth = scene()
    next_image, next_depth = {
        "other view": scene(seed=7),
        "same": (image, depth * 1.3),
        "smaller": (image[:60, :80], depth[:60, :80] * 1.3),
    }[second]
    results = run(ALIGN, "metric", [image, next_image], [depth, next_depth], [0.0, stamp_s])
    assert results[0].reason == "first frame"
    if reason is None:
        assert results[1].aligned
        return
    assert not results[1].aligned and reason in results[1].reason
    assert results[1].values is next_depth  # passed through; the filter restarts from it


def test_a_flat_relative_prediction_is_not_aligned() -> None:
    image, _ = scene()
    flat = np.full((H, W), 0.5, np.float32)
    results = run(ALIGN, "relative", [image, image], [flat, flat * 2])
    assert not results[1].aligned and "flat" in results[1].reason
    assert results[1].values is not None and np.all(results[1].values == 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "smooth"},
        {"strength": 1.0},
        {"strength": -0.1},
        {"static_threshold": 0.0},
        {"min_static_fraction": 0.0},
        {"max_gap_s": 0.0},
    ],
)
def test_settings_reject_impossible_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TemporalSettings(**kwargs)


def test_fast_median_equals_numpy_median_on_finite_values():
    from dav2_ros.temporal.stabilizer import _median

    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 4, 19200, 19201):
        for dtype in (np.float32, np.float64):
            values = rng.normal(1.0, 0.3, size).astype(dtype)
            assert _median(values) == pytest.approx(float(np.median(values)), rel=1e-7)
    assert np.isnan(_median(np.empty(0, np.float32)))
