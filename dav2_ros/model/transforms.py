"""Pre- and post-processing identical to the official ``infer_image``.

Pure numpy/OpenCV so the ONNX Runtime path needs no torch at run time. The
official code works on a BGR image from ``cv2.imread``; the node receives RGB,
so ``prepare_input`` takes RGB and the BGR→RGB swap is the caller's (``dav2
predict`` does it right after ``cv2.imread``).
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
PATCH = 14


def _round_to_patch(value: float, minimum: int) -> int:
    """The official ``constrain_to_multiple_of`` (lower_bound mode, no maximum)."""
    rounded = int(np.round(value / PATCH) * PATCH)
    if rounded < minimum:
        rounded = int(np.ceil(value / PATCH) * PATCH)
    return rounded


def model_input_size(height: int, width: int, input_size: int = 518) -> tuple[int, int]:
    """(height, width) the network sees for an image: shorter side → ``input_size``.

    640×480 → 686 wide × 518 high; 1280×720 → 924 × 518.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image must be non-empty, got {height}x{width}")
    if input_size <= 0 or input_size % PATCH:
        raise ValueError(f"input_size must be a positive multiple of {PATCH}, got {input_size}")
    scale = max(input_size / height, input_size / width)
    return _round_to_patch(scale * height, input_size), _round_to_patch(scale * width, input_size)


def prepare_input(image_rgb: np.ndarray, input_size: int = 518) -> np.ndarray:
    """HxWx3 uint8 RGB → 1x3xhxw float32, resized (INTER_CUBIC) and normalised.

    Computed in float64 like the official transform, then cast to float32.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image_rgb.shape}")
    height, width = image_rgb.shape[:2]
    net_h, net_w = model_input_size(height, width, input_size)
    image = image_rgb / 255.0
    image = cv2.resize(image, (net_w, net_h), interpolation=cv2.INTER_CUBIC)
    image = (image - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None]).astype(np.float32)


def resize_output(prediction: np.ndarray, height: int, width: int) -> np.ndarray:
    """hxw network output → height×width float32, bilinear with ``align_corners=True``.

    Same arithmetic as ``F.interpolate(..., mode="bilinear", align_corners=True)``:
    source coordinate = destination × (in − 1) / (out − 1). Separable: along x on the
    network's few rows, then along y at full size. These are the float32 operations of
    the four-neighbour formula (its top and bottom rows are the x-interpolated source
    rows), bit for bit, with two full-size gathers instead of eight (5x faster at 640x480).
    """
    src_h, src_w = prediction.shape
    pred = prediction.astype(np.float32, copy=False)
    if (src_h, src_w) == (height, width):
        return pred
    x0, x1, wx = _bilinear_taps(width, src_w)
    y0, y1, wy = _bilinear_taps(height, src_h)
    rows = pred[:, x0] * (1 - wx) + pred[:, x1] * wx  # src_h × width
    resized = np.take(rows, y0, axis=0)
    resized *= (1 - wy)[:, None]
    lower = np.take(rows, y1, axis=0)
    lower *= wy[:, None]
    resized += lower
    return resized


def _bilinear_taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index: the two source indices and the float32 weight of the second."""
    coords = _align_corners_coords(out_size, in_size)
    first = np.floor(coords).astype(np.intp)
    second = np.minimum(first + 1, in_size - 1)
    return first, second, (coords - first).astype(np.float32)


def _align_corners_coords(out_size: int, in_size: int) -> np.ndarray:
    if out_size == 1:
        return np.zeros(1, dtype=np.float64)
    return np.arange(out_size, dtype=np.float64) * ((in_size - 1) / (out_size - 1))
