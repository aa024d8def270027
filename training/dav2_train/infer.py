"""Run a trained model on one RGB image exactly as the deployed node does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.confidence import confidence_from_error
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
    return predict_with_confidence(model, rgb, input_size, device, canonical_focal_px, focal_px)[0]


@torch.no_grad()
def predict_with_confidence(
    model: DepthAnythingV2,
    rgb: np.ndarray,
    input_size: int,
    device: torch.device,
    canonical_focal_px: float | None = None,
    focal_px: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict`` and the confidence head's map at the same size (None without a head;
    a relative error: the focal correction leaves it unchanged)."""
    batch = torch.from_numpy(prepare_input(rgb, input_size)).to(device)
    height, width = rgb.shape[:2]
    scale = 1.0
    if canonical_focal_px is not None:
        if focal_px is None:
            raise ValueError("a canonical-camera model needs the image's focal length")
        scale = focal_scale(focal_px, rgb.shape[:2], input_size, canonical_focal_px)
    if not getattr(model, "has_confidence_head", False):
        out = model(batch)[0].float().cpu().numpy()
        return resize_output(out, height, width) * np.float32(scale), None
    depth, log_error = model.depth_and_log_error(batch)
    error = log_error[0].exp().float().cpu().numpy()
    depth = depth[0].float().cpu().numpy()
    return resize_output(depth, height, width) * np.float32(scale), confidence_from_error(
        resize_output(error, height, width)
    )


def read_rgb(path: Path) -> np.ndarray:
    """An image file → HxWx3 uint8 RGB (raises naming the file)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path} (not an image or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
