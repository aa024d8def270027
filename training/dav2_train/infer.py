"""Run a trained model on one RGB image exactly as the deployed node does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.focal import focal_scale
from dav2_ros.model.transforms import prepare_input, resize_output


@torch.no_grad()
def predict(
    model: DepthAnythingV2,
    rgb: np.ndarray,
    input_size: int,
    device: torch.device,
    canonical_focal_px: float | None = None,
    focal_px: tuple[float, float] | None = None,
) -> np.ndarray:
    """HxWx3 uint8 RGB → HxW float32 (disparity or metres) at the image's resolution;
    a canonical-camera model's metres × f / ``canonical_focal_px`` (``focal_px``: the
    image's fx, fy), as the node corrects them."""
    batch = torch.from_numpy(prepare_input(rgb, input_size)).to(device)
    out = model(batch)[0].float().cpu().numpy()
    depth = resize_output(out, rgb.shape[0], rgb.shape[1])
    if canonical_focal_px is not None:
        if focal_px is None:
            raise ValueError("a canonical-camera model needs the image's focal length")
        depth *= focal_scale(focal_px, rgb.shape[:2], input_size, canonical_focal_px)
    return depth


def read_rgb(path: Path) -> np.ndarray:
    """An image file → HxWx3 uint8 RGB (raises naming the file)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path} (not an image or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
