"""Run a trained model on one RGB image exactly as the deployed node does."""

from __future__ import annotations

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
