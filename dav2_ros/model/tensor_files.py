"""Reading tensor files safely: pickles only with ``weights_only=True``, safetensors.

Every failure becomes a ``CheckpointError`` whose message names the file and what is
wrong with it (code-carrying pickle, truncated archive, not a state dict, …).
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file and the problem."""


def read_pickle(path: Path) -> object:
    """``torch.load(weights_only=True)``: tensors and plain containers, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        needs_code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if needs_code:
            raise CheckpointError(
                f"{path}: refused to load: the pickle would have to run code to be unpickled "
                f"(it calls {needs_code.group(1)}). Only plain state dicts of tensors are "
                "accepted; if you trust the file, re-save its state_dict() or convert it to "
                "safetensors"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        reason = detail.group(1).strip() if detail else text.strip().splitlines()[-1]
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint, or truncated or corrupt ({reason}); "
            "download or copy it again"
        ) from None
    except Exception as exc:  # damaged bytes break torch's parser in many ways (IndexError…)
        text = str(exc).strip()
        # torch's first sentence says what failed; the rest is generic advice.
        first_line = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint, it is truncated or corrupt "
            f"({first_line}); download or copy it again"
        ) from None


def read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: cannot be read as safetensors, it is truncated or corrupt ({exc}); "
            "copy or export it again"
        ) from None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def as_state_dict(obj: object, path: Path) -> dict[str, Tensor]:
    """Check that an unpickled object is a flat ``{name: tensor}`` mapping."""
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path}: expected a state dict (a mapping of names to tensors), "
            f"found {type(obj).__name__}{' (empty)' if isinstance(obj, dict) else ''}"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise CheckpointError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                "expected a plain state dict"
            )
    return obj
