"""Run a trained model on one RGB image exactly as the deployed node does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.transforms import prepare_input, resize_output


@torch.no_grad()
def predict(
    model: DepthAnythingV2, rgb: np.ndarray, input_size: int, device: torch.device
) -> np.ndarray:
    """HxWx3 uint8 RGB → HxW float32 (disparity or metres) at the image's resolution."""
    batch = torch.from_numpy(prepare_input(rgb, input_size)).to(device)
    out = model(batch)[0].float().cpu().numpy()
    return resize_output(out, rgb.shape[0], rgb.shape[1])


def read_rgb(path: Path) -> np.ndarray:
    """An image file → HxWx3 uint8 RGB (raises naming the file)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path} (not an image or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
