"""Imperfect cameras applied to a rendered linear-RGB image, per style.

Style "a" is a perfect pinhole camera (no entry). Style "b" stands in for a cheap
real camera: defocus blur, vignetting, colour cast, shot and read noise. The
held-out style "c" is another sensor: motion blur, chromatic aberration, banding
read noise (and JPEG compression, applied by ``render`` after the 8-bit conversion).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def camera_b(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cheap, imperfect camera: defocus blur, vignetting, colour cast, sensor noise."""
    H, W = image.shape[:2]
    sigma = rng.uniform(0.6, 1.6)
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma).astype(np.float64)
    y, x = np.mgrid[0:H, 0:W]
    r2 = ((x - W / 2) / (W / 2)) ** 2 + ((y - H / 2) / (H / 2)) ** 2
    image *= (1 - rng.uniform(0.2, 0.45) * r2 / 2)[..., None]
    image *= rng.uniform(0.85, 1.15, size=3)[None, None] * rng.uniform(0.7, 1.3)
    shot = rng.normal(size=image.shape) * np.sqrt(np.clip(image, 0, None) * 0.002)
    read = rng.normal(scale=rng.uniform(0.005, 0.02), size=image.shape)
    return image + shot + read


def camera_c(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another sensor: linear motion blur, lateral chromatic aberration, row-banded noise."""
    H, W = image.shape[:2]
    length = int(rng.integers(1, max(2, W // 80)))
    kernel = np.zeros((2 * length + 1, 2 * length + 1), np.float32)
    angle = rng.uniform(0, np.pi)
    for t in np.linspace(-length, length, 4 * length + 1):
        kernel[int(round(length + t * np.sin(angle))), int(round(length + t * np.cos(angle)))] = 1
    image = cv2.filter2D(image.astype(np.float32), -1, kernel / kernel.sum()).astype(np.float64)
    shift = rng.uniform(0.5, 1.5) * W / 640  # red and blue planes scaled about the centre
    for channel, sign in ((0, 1.0), (2, -1.0)):
        scale = 1 + sign * shift / (W / 2)
        warp = np.array([[scale, 0, (1 - scale) * W / 2], [0, scale, (1 - scale) * H / 2]])
        image[..., channel] = cv2.warpAffine(
            image[..., channel].astype(np.float32), warp, (W, H), borderMode=cv2.BORDER_REFLECT
        )
    gain = rng.uniform(1.0, 2.0)  # low light pushed up: noise grows with it
    rows = rng.normal(scale=0.004, size=(H, 1, 1))
    noise = rng.normal(scale=0.01, size=image.shape)
    return image * gain + (rows + noise) * gain


def jpeg_roundtrip(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """8-bit RGB through JPEG at quality 25-70 (blocking and ringing artefacts)."""
    quality = int(rng.integers(25, 70))
    ok, data = cv2.imencode(
        ".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else rgb


# Stages per style: on the linear image before 8-bit conversion, then on the 8-bit RGB.
SENSORS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "b": camera_b,
    "c": camera_c,
}
ENCODERS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "c": jpeg_roundtrip,
}
