"""Augmentations against values worked out by hand, and the node's own preprocessing."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from dav2_train.augment import (
    StrongAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    crop_origin,
    cutmix_batch,
    gaussian_blur,
    gaussian_kernel_size,
)
from dav2_train.shards import Sample
from dav2_train.stream import SampleTransform

from dav2_ros.model.transforms import prepare_input


def _pixels(*values: tuple[float, float, float]) -> np.ndarray:
    return np.array([values], dtype=np.float32)  # 1 x N x 3


def test_brightness_scales_and_clips() -> None:
    out = adjust_brightness(_pixels((0.4, 0.2, 0.8)), 1.5)
    assert out[0, 0].tolist() == pytest.approx([0.6, 0.3, 1.0])


def test_contrast_blends_with_the_mean_grey_of_the_image() -> None:
    # two grey pixels 0.2 and 0.6: mean luma 0.4; factor 0.5 -> 0.5 x + 0.2
    out = adjust_contrast(_pixels((0.2, 0.2, 0.2), (0.6, 0.6, 0.6)), 0.5)
    assert out[0, :, 0].tolist() == pytest.approx([0.3, 0.5])


def test_saturation_blends_with_each_pixels_grey() -> None:
    red = _pixels((1.0, 0.0, 0.0))  # luma 0.299
    assert adjust_saturation(red, 0.0)[0, 0].tolist() == pytest.approx([0.299] * 3)
    # factor 2: 2 x - 0.299 -> (1.701, -0.299, -0.299), clipped to [0, 1]
    assert adjust_saturation(red, 2.0)[0, 0].tolist() == pytest.approx([1.0, 0.0, 0.0])
    half = adjust_saturation(red, 0.5)[0, 0]  # 0.5 x + 0.1495
    assert half.tolist() == pytest.approx([0.6495, 0.1495, 0.1495])


def test_hue_rotates_red_to_green_and_blue() -> None:
    red = _pixels((1.0, 0.0, 0.0))
    assert adjust_hue(red, 1 / 3)[0, 0].tolist() == pytest.approx([0, 1, 0], abs=1e-5)
    assert adjust_hue(red, -1 / 3)[0, 0].tolist() == pytest.approx([0, 0, 1], abs=1e-5)


def test_color_jitter_draws_factors_from_its_generator_in_a_fixed_order() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    aug = StrongAugment(color_p=1.0, grayscale_p=0.0)
    draws = np.random.default_rng(7)
    draws.random()  # the colour-jitter coin
    b, c, s = draws.uniform(0.5, 1.5), draws.uniform(0.5, 1.5), draws.uniform(0.5, 1.5)
    h = draws.uniform(-0.25, 0.25)
    image = rgb.astype(np.float32) / 255
    expected = adjust_hue(adjust_saturation(adjust_contrast(adjust_brightness(image, b), c), s), h)
    out = color_jitter(rgb, np.random.default_rng(7), aug)
    np.testing.assert_array_equal(out, np.round(expected * 255).astype(np.uint8))


def test_grayscale_replicates_luma() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0]]], dtype=np.uint8)
    out = color_jitter(rgb, np.random.default_rng(0), StrongAugment(color_p=0.0, grayscale_p=1.0))
    # luma of red 0.299 -> 76.2 -> 76; of green 0.587 -> 149.7 -> 150
    assert out[0, 0].tolist() == [76, 76, 76] and out[0, 1].tolist() == [150, 150, 150]


def test_gaussian_blur_of_an_impulse_is_the_sampled_gaussian() -> None:
    sigma = 1.0
    size = gaussian_kernel_size(sigma)  # covers +-3 sigma
    assert size == 7
    image = np.zeros((1, 15, 15), np.float32)
    image[0, 7, 7] = 1.0
    out = gaussian_blur(image, sigma)[0]
    taps = np.array([math.exp(-(x**2) / (2 * sigma**2)) for x in range(-3, 4)])
    taps /= taps.sum()  # e^0 = 1, e^-1/2 = 0.6065, e^-2 = 0.1353, e^-4.5 = 0.0111
    np.testing.assert_allclose(out[4:11, 4:11], np.outer(taps, taps), atol=1e-6)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_crop_origin_stays_inside_and_refuses_small_images() -> None:
    rng = np.random.default_rng(0)
    origins = {crop_origin(20, 30, 14, rng) for _ in range(200)}
    assert {o[0] for o in origins} == set(range(7)) and {o[1] for o in origins} == set(range(17))
    with pytest.raises(ValueError, match="cannot crop"):
        crop_origin(10, 30, 14, rng)


def test_cutmix_pastes_the_previous_samples_box_with_its_label() -> None:
    image = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 10, 12).clone()
    target = torch.arange(3, dtype=torch.float32).view(3, 1, 1).expand(3, 10, 12) + 10
    mask = torch.ones(3, 10, 12, dtype=torch.bool)
    mask[2, :, :6] = False
    out_image, out_target, out_mask, region = cutmix_batch(
        image, target, mask, np.random.default_rng(1), probability=1.0
    )
    for i in range(3):
        partner = (i - 1) % 3  # sample i gets a box of sample i - 1
        box = region[i]
        assert 0 < box.sum() < 120
        rows, cols = box.nonzero()[:, 0], box.nonzero()[:, 1]
        assert box.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a box
        assert torch.all(out_image[i][:, box] == partner) and torch.all(out_image[i][:, ~box] == i)
        assert torch.all(out_target[i][box] == partner + 10)
        assert torch.equal(out_mask[i][box], mask[partner][box])
    assert torch.all(image[0] == 0)  # inputs untouched
    same = cutmix_batch(image, target, mask, np.random.default_rng(1), probability=0.0)
    assert not same[3].any() and torch.equal(same[0], image)


def test_sample_transform_is_the_nodes_resize_then_a_crop() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (42, 70, 3), dtype=np.uint8)
    disparity = rng.random((42, 70)).astype(np.float32) + 0.5
    transform = SampleTransform("disparity", input_size=28, crop_size=28, hflip=False)
    out = transform(Sample("k", rgb, disparity), np.random.default_rng(5))
    node = prepare_input(rgb, 28)[0]  # the node: INTER_CUBIC, shorter side 28 -> 28 x 42
    assert node.shape == (3, 28, 42)
    top, left = crop_origin(28, 42, 28, np.random.default_rng(5))
    np.testing.assert_array_equal(out["image"].numpy(), node[:, top : top + 28, left : left + 28])
    label = cv2.resize(disparity, (42, 28), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out["target"].numpy(), label[top : top + 28, left : left + 28])
    assert out["mask"].all()


def test_metric_labels_are_resized_by_nearest_neighbour_and_nan_is_masked() -> None:
    rng = np.random.default_rng(4)
    depth_m = rng.choice([1.0, 2.5, 7.0, np.nan], size=(42, 56)).astype(np.float32)
    rgb = np.zeros((42, 56, 3), np.uint8)
    transform = SampleTransform("depth_m", input_size=28, crop_size=28, hflip=True)
    out = transform(Sample("k", rgb, depth_m), rng)
    values = set(out["target"][out["mask"]].unique().tolist())
    assert values <= {1.0, 2.5, 7.0}  # no depth invented between neighbours
    assert torch.equal(out["mask"], torch.isfinite(out["target"]))


def test_horizontal_flip_mirrors_image_and_label_together() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (28, 56, 3), dtype=np.uint8)
    disparity = rng.random((28, 56)).astype(np.float32)
    transform = SampleTransform("disparity", input_size=28, crop_size=28, hflip=True)
    flipped = next(s for s in range(50) if _draws_flip(s))  # a seed whose flip coin says yes
    out = transform(Sample("k", rgb, disparity), np.random.default_rng(flipped))
    top, left = crop_origin(28, 56, 28, np.random.default_rng(flipped))
    node = prepare_input(rgb, 28)[0][:, top : top + 28, left : left + 28]
    np.testing.assert_array_equal(out["image"].numpy(), node[:, :, ::-1])
    label = cv2.resize(disparity, (56, 28), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(
        out["target"].numpy(), label[top : top + 28, left : left + 28][:, ::-1]
    )


def _draws_flip(seed: int) -> bool:
    rng = np.random.default_rng(seed)
    crop_origin(28, 56, 28, rng)
    return rng.random() < 0.5
