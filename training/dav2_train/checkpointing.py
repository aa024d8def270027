"""A resumable training checkpoint: the model in the node's format plus the trainer state.

``<section>/last/`` holds ``model.safetensors`` + ``model.json`` (``save_model``, read
back with ``load_model``) and ``state.pt``: optimizer, scheduler, grad scaler, step,
history, and per rank the data loader's position and the RNG states. The folder is
written beside (``last.tmp``) and swapped in by renames, so a kill at any moment
leaves either the previous checkpoint or the new one.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, load_model, save_model

MODEL_STEM = "model"
STATE_FILE = "state.pt"


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as tensors and plain types (loadable with weights_only)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path, model: DepthAnythingV2, meta: ModelMeta, state: dict[str, Any]
) -> None:
    """Write ``directory`` (model + ``state.pt``) atomically, replacing an older one."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, meta, tmp / MODEL_STEM)
    torch.save(state, tmp / STATE_FILE)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(directory: Path) -> Path | None:
    """The complete checkpoint folder, also after a kill between the two renames."""
    directory = Path(directory)
    for candidate in (directory, directory.with_name(directory.name + ".old")):
        if (candidate / STATE_FILE).is_file() and (candidate / f"{MODEL_STEM}.json").is_file():
            return candidate
    return None


def load_checkpoint(directory: Path) -> tuple[DepthAnythingV2, dict[str, Any]]:
    """(model as saved, trainer state), both on the CPU (RNG states must stay CPU
    tensors; the optimizer moves its own state to its parameters' device). Pickles only
    with ``weights_only=True``."""
    loaded = load_model(directory / f"{MODEL_STEM}.safetensors")
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    return loaded.model, state


def discard(directory: Path) -> None:
    for candidate in (
        directory,
        directory.with_name(directory.name + ".old"),
        directory.with_name(directory.name + ".tmp"),
    ):
        shutil.rmtree(candidate, ignore_errors=True)
