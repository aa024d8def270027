"""Segments of an image, as a label map (H×W int32, -1 = no segment).

SAM (``segment-anything``) when the user brings its checkpoint and the package
imports; otherwise scikit-image's Felzenszwalb graph segmentation, whose regions
follow colour edges the way object masks do (superpixels like SLIC cut objects
into tiles of one size, which makes "different segment" mean little).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

Segmenter = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 RGB → HxW int32 labels

SAM_MODEL_TYPES = ("vit_h", "vit_l", "vit_b")


class SegmenterError(RuntimeError):
    """The requested segmenter cannot run here; the message says why and what to do."""


def felzenszwalb_segments(rgb: np.ndarray) -> np.ndarray:
    """Felzenszwalb regions with parameters scaled to the image (a few dozen per image)."""
    from skimage.segmentation import felzenszwalb

    height, width = rgb.shape[:2]
    area = height * width
    # `scale` grows with the image so a 4 K photo gets regions of the same share of
    # the frame as a 640×480 one; `min_size` drops specks no point could sit inside.
    labels = felzenszwalb(
        rgb, scale=max(100.0, area / 1500.0), sigma=0.8, min_size=max(20, area // 600)
    )
    return labels.astype(np.int32)


def masks_to_labels(masks: list[dict], shape: tuple[int, int]) -> np.ndarray:
    """SAM's automatic masks → label map; smaller masks are painted over larger ones.

    Each mask is a dict with a boolean ``segmentation`` (H×W) and its ``area``, as
    ``SamAutomaticMaskGenerator.generate`` returns them. Pixels no mask covers get -1.
    """
    labels = np.full(shape, -1, dtype=np.int32)
    for index, mask in enumerate(sorted(masks, key=lambda m: -int(m["area"]))):
        labels[np.asarray(mask["segmentation"], dtype=bool)] = index
    return labels


def interior_distance(labels: np.ndarray) -> np.ndarray:
    """Distance in pixels from each pixel to the nearest segment edge or image border.

    A pixel next to a different label (4-neighbourhood), on the border or without a
    segment counts as edge (distance 0): a point with distance d has its own segment
    all around it within d.
    """
    edge = np.zeros(labels.shape, dtype=bool)
    horizontal = labels[:, 1:] != labels[:, :-1]
    vertical = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    edge |= labels < 0
    inside = (~edge).astype(np.uint8)
    return cv2.distanceTransform(inside, cv2.DIST_L2, 5)


def make_segmenter(sam_checkpoint: str | None, sam_model: str | None = None) -> Segmenter:
    """SAM when ``sam_checkpoint`` is given, else Felzenszwalb."""
    if sam_checkpoint is None:
        return felzenszwalb_segments
    return _sam_segmenter(Path(sam_checkpoint), sam_model)


def _sam_segmenter(checkpoint: Path, model_type: str | None) -> Segmenter:
    try:
        from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
    except ImportError as exc:
        raise SegmenterError(
            f"--sam-checkpoint {checkpoint}: the segment-anything package cannot be imported "
            f"here ({exc}). It needs torchvision, which this environment does not install "
            "beside its torch build; install segment-anything and a torchvision matching "
            "torch, or leave out --sam-checkpoint to use scikit-image Felzenszwalb segments"
        ) from None
    if not checkpoint.is_file():
        raise SegmenterError(f"--sam-checkpoint {checkpoint}: no such file")
    model_type = model_type or next((t for t in SAM_MODEL_TYPES if t in checkpoint.name), None)
    if model_type not in SAM_MODEL_TYPES:
        raise SegmenterError(
            f"--sam-checkpoint {checkpoint}: cannot tell the SAM size from the file name; "
            f"pass --sam-model {' | '.join(SAM_MODEL_TYPES)}"
        )
    import torch

    sam = sam_model_registry[model_type](checkpoint=None)
    try:
        # Pickles are read as tensors only: a file that needs code to load is refused.
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        sam.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a SAM checkpoint"
        raise SegmenterError(f"--sam-checkpoint {checkpoint}: cannot load it ({exc})") from None
    generator = SamAutomaticMaskGenerator(sam.eval())

    def segment(rgb: np.ndarray) -> np.ndarray:
        return masks_to_labels(generator.generate(rgb), rgb.shape[:2])

    return segment
