"""Datasets on disk: synthetic shards, pseudo-label shards and plain image folders.

A shard is one compressed ``.npz`` with stacked arrays: ``rgb`` (N×H×W×3 uint8)
plus ``depth_m`` (float32, NaN invalid), ``valid`` (bool) and ``K`` (N×3×3) for
synthetic data, or ``disparity`` (float32) for pseudo labels. Shards of a split
are loaded into memory once (a few hundred MB at the default size).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dav2_ros.model.transforms import IMAGENET_MEAN, IMAGENET_STD, model_input_size

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def shard_paths(split_dir: Path) -> list[Path]:
    paths = sorted(Path(split_dir).glob("shard-*.npz"))
    if not paths:
        raise FileNotFoundError(
            f"no shard-*.npz files in {split_dir}; run `dav2-train synth` (or pseudo-label) first"
        )
    return paths


def load_shards(split_dir: Path) -> dict[str, np.ndarray]:
    """Concatenate every array of every shard in ``split_dir``."""
    parts: dict[str, list[np.ndarray]] = {}
    for path in shard_paths(split_dir):
        with np.load(path) as shard:
            for key in shard.files:
                parts.setdefault(key, []).append(shard[key])
    return {key: np.concatenate(values) for key, values in parts.items()}


def image_paths(folder: Path) -> list[Path]:
    """Every image below ``folder`` (recursive, sorted, so ranks agree on the order)."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no {'/'.join(IMAGE_SUFFIXES)} images under {folder}")
    return paths


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path} (not an image or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def normalise_rgb(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float32, ImageNet-normalised (as ``prepare_input``, no resize)."""
    image = (
        rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN.astype(np.float32)
    ) / IMAGENET_STD.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def resize_to_input(arrays: dict[str, np.ndarray], input_size: int) -> dict[str, np.ndarray]:
    """Resize frames once so the network sees what the node gives it at ``input_size``.

    Shorter side → ``input_size`` as ``model_input_size``; RGB and disparity by area
    averaging, depth and masks by nearest neighbour (no invented depths at edges).
    """
    height, width = arrays["rgb"].shape[1:3]
    net_h, net_w = model_input_size(height, width, input_size)
    if (net_h, net_w) == (height, width):
        return arrays
    resized = {}
    for key, stack in arrays.items():
        if key == "K":
            scale = np.array([[net_w / width], [net_h / height], [1.0]])
            resized[key] = stack * scale[None]
            continue
        interpolation = cv2.INTER_AREA if key in ("rgb", "disparity") else cv2.INTER_NEAREST
        frames = [
            cv2.resize(frame.astype(np.uint8) if frame.dtype == bool else frame, (net_w, net_h),
                       interpolation=interpolation)
            for frame in stack
        ]  # fmt: skip
        resized[key] = np.stack(frames).astype(stack.dtype)
    return resized


class DepthShards(Dataset):
    """Samples ``(image 3xHxW, target HxW, mask HxW)`` from a split directory.

    ``target`` is metric depth (NaN invalid) for synthetic shards and teacher
    disparity for pseudo-label shards; ``self.target_kind`` says which.
    """

    def __init__(self, split_dir: Path, hflip: bool = False, input_size: int | None = None) -> None:
        arrays = load_shards(split_dir)
        if input_size is not None:
            arrays = resize_to_input(arrays, input_size)
        self.rgb = arrays["rgb"]
        if "depth_m" in arrays:
            self.target_kind = "depth_m"
            self.target = arrays["depth_m"]
            self.mask = arrays["valid"]
        elif "disparity" in arrays:
            self.target_kind = "disparity"
            self.target = arrays["disparity"]
            self.mask = np.ones(self.target.shape, dtype=bool)
        else:
            raise ValueError(
                f"shards in {split_dir} hold {sorted(arrays)}; expected depth_m+valid or disparity"
            )
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rgb, target, mask = self.rgb[index], self.target[index], self.mask[index]
        # Deterministic per (index, epoch-free) flip would bias; a cheap RNG is fine here.
        if self.hflip and torch.rand(()) < 0.5:
            rgb, target, mask = rgb[:, ::-1], target[:, ::-1], mask[:, ::-1]
        return (
            normalise_rgb(rgb),
            torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(mask)),
        )
