"""Reading tensor files safely: pickles only with ``weights_only=True``, safetensors.

Every failure becomes a ``CheckpointError`` whose message names the file and what is
wrong with it (code-carrying pickle, truncated archive, not a state dict, …).
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file and the problem."""


# The longest module path a real checkpoint's pickle names is well under 100 characters.
MAX_GLOBAL_CHARS = 1000
# A legacy (pre-zip) torch file holds five pickles before its raw tensor bytes.
LEGACY_PICKLES = 5


def read_pickle(path: Path) -> object:
    """``torch.load(weights_only=True)``: tensors and plain containers, never code."""
    refuse_oversized_globals(path)
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


def refuse_oversized_globals(path: Path) -> None:
    """Refuse, before torch reads it, a pickle that names a global longer than any module.

    torch's weights-only loader explains a refused global with a regex that is quadratic in
    the global's name (``_get_wo_message`` in torch/serialization.py): a 20 kB name takes
    8 s, the tail of a damaged 25 MB file filled with one byte takes hours, and the node
    would hang on it. Only the pickle streams are scanned (``pickletools``, linear), never
    the tensor bytes; anything the scan cannot parse is left for torch to report.
    """
    if any(_names_an_oversized_global(stream) for stream in _pickle_streams(path)):
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint, it is corrupt or malicious (its pickle names a "
            f"global longer than {MAX_GLOBAL_CHARS:,} characters); download or copy it again"
        )


def _names_an_oversized_global(stream: io.BufferedIOBase) -> bool:
    """Whether the pickle at the stream's position has a GLOBAL/INST name longer than
    ``MAX_GLOBAL_CHARS``; False also when it cannot be parsed (torch says what is wrong)."""
    next_op = stream.tell()
    try:
        for opcode, argument, _ in pickletools.genops(stream):
            if opcode.name in ("GLOBAL", "INST") and len(argument) > MAX_GLOBAL_CHARS:
                return True
            next_op = stream.tell()
    except ValueError:
        # pickletools wants the name's closing newline; torch reads on to the end of the
        # file without it, so a name that runs on is what a damaged tail looks like.
        stream.seek(next_op)
        return stream.read(1) in (b"c", b"i") and b"\n" not in stream.read(MAX_GLOBAL_CHARS)
    except Exception:
        return False
    return False


def _pickle_streams(path: Path) -> Iterator[io.BufferedIOBase]:
    """The pickles torch.load would unpickle: a zip checkpoint's data.pkl, or the leading
    pickles of a legacy or plain pickle file (torch tells them apart by the zip magic)."""
    with open(path, "rb") as file:
        if file.read(4) != b"PK\x03\x04":
            file.seek(0)
            for _ in range(LEGACY_PICKLES):
                yield file
            return
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            data = archive.read(name) if name else b""
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return
    yield io.BytesIO(data)


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
