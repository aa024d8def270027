"""Augmentations of the Depth Anything recipe, as pure functions of an explicit RNG.

Every random draw comes from the ``np.random.Generator`` the caller passes, which the
stream seeds per sample (seed, epoch, shard, index): a resumed run draws exactly what
the uninterrupted run drew, with no RNG state to carry.

Strong perturbations (colour jitter, grayscale, Gaussian blur, CutMix) are the ones
Depth Anything applies to unlabelled images (V1 §3.2, kept in V2): the student must
match the teacher's label of the clean image from a perturbed view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class StrongAugment:
    """Parameters of the strong perturbations (Depth Anything V1/V2, UniMatch values)."""

    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.5
    hue: float = 0.25  # fraction of the hue circle
    color_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in network-input pixels
    cutmix_p: float = 0.5

    @classmethod
    def from_config(cls, values: dict) -> StrongAugment:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(
                f"strong_augment: unknown keys {sorted(unknown)}; known: {sorted(known)}"
            )
        fields = dict(values)
        if "blur_sigma" in fields:
            fields["blur_sigma"] = tuple(float(s) for s in fields["blur_sigma"])
        return cls(**fields)


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 float → HxW luma."""
    return rgb @ _LUMA


def adjust_brightness(rgb: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(rgb * factor, 0.0, 1.0)


def adjust_contrast(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's mean grey (torchvision's definition)."""
    mean = float(grayscale(rgb).mean())
    return np.clip(factor * rgb + (1 - factor) * mean, 0.0, 1.0)


def adjust_saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Blend with each pixel's own grey."""
    return np.clip(factor * rgb + (1 - factor) * grayscale(rgb)[..., None], 0.0, 1.0)


def adjust_hue(rgb: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by ``shift`` of a full turn (−0.5 … 0.5)."""
    hsv = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2HSV)  # H in degrees
    hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * shift, 360.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)


def color_jitter(rgb: np.ndarray, rng: np.random.Generator, aug: StrongAugment) -> np.ndarray:
    """uint8 RGB → uint8 RGB: colour jitter (p ``color_p``) then grayscale (p ``grayscale_p``).

    Brightness, contrast and saturation factors are uniform in [1 − x, 1 + x] and
    applied in that order, then the hue shift, uniform in [−hue, hue].
    """
    image = rgb.astype(np.float32) / 255.0
    if rng.random() < aug.color_p:
        image = adjust_brightness(
            image, rng.uniform(max(0, 1 - aug.brightness), 1 + aug.brightness)
        )
        image = adjust_contrast(image, rng.uniform(max(0, 1 - aug.contrast), 1 + aug.contrast))
        image = adjust_saturation(
            image, rng.uniform(max(0, 1 - aug.saturation), 1 + aug.saturation)
        )
        image = adjust_hue(image, rng.uniform(-aug.hue, aug.hue))
    if rng.random() < aug.grayscale_p:
        image = np.repeat(grayscale(image)[..., None], 3, axis=2)
    return np.round(image * 255.0).astype(np.uint8)


def gaussian_kernel_size(sigma: float) -> int:
    """Odd kernel width covering ±3σ."""
    return 2 * math.ceil(3 * sigma) + 1


def gaussian_blur(image_chw: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each channel of a C×H×W float image (reflected borders)."""
    size = gaussian_kernel_size(sigma)
    return np.stack(
        [cv2.GaussianBlur(channel, (size, size), sigma) for channel in image_chw]
    ).astype(image_chw.dtype)


def crop_origin(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a uniformly random ``size``×``size`` window."""
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {width}x{height} image")
    return int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))


def cutmix_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
) -> tuple[int, int, int, int]:
    """(top, left, box height, box width): area share and aspect ratio uniform (UniMatch)."""
    for _ in range(100):
        box_area = rng.uniform(*area) * height * width
        aspect = rng.uniform(*ratio)
        box_h, box_w = (
            int(round(math.sqrt(box_area * aspect))),
            int(round(math.sqrt(box_area / aspect))),
        )
        if 0 < box_h <= height and 0 < box_w <= width:
            return (
                int(rng.integers(height - box_h + 1)),
                int(rng.integers(width - box_w + 1)),
                box_h,
                box_w,
            )
    box = max(1, min(height, width) // 2)
    return (height - box) // 2, (width - box) // 2, box, box


def cutmix_batch(
    image: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    probability: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paste a box of sample i−1 (image and its label) into sample i with ``probability``.

    Returns (image, target, mask, region): ``region`` is True where a pixel came from
    the partner. Labels of two images have unrelated scale and shift, so the relative
    loss normalises the two regions separately (``losses.relative_loss``).
    """
    batch, height, width = target.shape
    region = torch.zeros_like(mask)
    if batch < 2 or probability <= 0:
        return image, target, mask, region
    image, target, mask = image.clone(), target.clone(), mask.clone()
    partner = torch.roll(torch.arange(batch), 1).tolist()
    source_image, source_target, source_mask = image.clone(), target.clone(), mask.clone()
    for i in range(batch):
        if rng.random() >= probability:
            continue
        top, left, box_h, box_w = cutmix_box(height, width, rng)
        rows, cols = slice(top, top + box_h), slice(left, left + box_w)
        j = partner[i]
        image[i, :, rows, cols] = source_image[j, :, rows, cols]
        target[i, rows, cols] = source_target[j, rows, cols]
        mask[i, rows, cols] = source_mask[j, rows, cols]
        region[i, rows, cols] = True
    return image, target, mask, region
