"""Reading a checkpoint of any supported format into official tensor names + metadata.

Detection: a directory or a file with ``config.json`` beside it is transformers; a
``.safetensors`` with dav2 JSON beside it is the own format; otherwise the tensor
names decide (``pretrained.*``/``depth_head.*``: official). Nothing here builds a
model; ``checkpoints`` resolves the encoder and depth type and builds it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from dav2_ros.model.dpt import DEPTH_TYPES
from dav2_ros.model.formats import (
    FormatError,
    detect_layout,
    dinov2_to_official,
    hf_to_official,
    spec_from_hf_config,
    unwrap_state_dict,
)
from dav2_ros.model.sizes import EncoderSpec, encoder_names, get_encoder_spec
from dav2_ros.model.tensor_files import (
    CheckpointError,
    as_state_dict,
    read_json,
    read_pickle,
    read_safetensors,
)

OWN_FORMAT = "dav2"
# 2: the metadata may describe a confidence head (``confidence_head``). 3: it may record
# ``canonical_focal_px`` (metres of a canonical camera): a reader that would ignore it, and
# publish those metres as the camera's, refuses the file instead. A file is written with
# the lowest version that describes it, so older readers keep reading what they can.
OWN_FORMAT_VERSION = 3
CONFIDENCE_FORMAT_VERSION = 2
CANONICAL_FOCAL_FORMAT_VERSION = 3


def own_format_version(canonical_focal: bool, confidence_head: bool) -> int:
    """The format version a checkpoint with these records is written as."""
    if canonical_focal:
        return CANONICAL_FOCAL_FORMAT_VERSION
    return CONFIDENCE_FORMAT_VERSION if confidence_head else 1


@dataclass
class FoundCheckpoint:
    """A checkpoint read from disk, before the model is built."""

    state_dict: dict[str, Tensor]  # official names
    format: str
    spec: EncoderSpec | None = None
    depth_type: str | None = None
    max_depth: float | None = None
    input_size: int = 518
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    source: Path | None = None  # the file actually read, when it differs from the argument
    confidence_head: dict | None = None  # the metadata's description of the head, if any
    canonical_focal_px: float | None = None  # own format: metres of a canonical camera


def read_checkpoint(path: Path) -> FoundCheckpoint:
    """Detect the format of ``path`` and read it (raises ``CheckpointError``)."""
    if path.is_dir():
        return _read_hf_dir(path)
    if not path.exists():
        for suffix in (".safetensors", ".json"):
            if path.with_name(path.name + suffix).is_file():
                return read_checkpoint(path.with_name(path.name + suffix))
        raise CheckpointError(f"{path}: no such checkpoint file or directory")
    if path.suffix == ".json":
        document = read_json(path)
        if document.get("format") == OWN_FORMAT:
            return _read_own(path.with_suffix(".safetensors"), document, path)
        if "backbone_config" in document:
            return _read_hf_dir(path.parent)
        raise CheckpointError(
            f"{path}: a JSON file that is neither dav2 metadata nor a transformers config.json"
        )
    beside_meta = path.with_suffix(".json")
    if path.suffix == ".safetensors" and beside_meta.is_file():
        document = read_json(beside_meta)
        if document.get("format") == OWN_FORMAT:
            return _read_own(path, document, beside_meta)
    if path.suffix == ".safetensors":
        tensors = read_safetensors(path)
    else:
        tensors = as_state_dict(unwrap_state_dict(read_pickle(path)), path)
    layout = detect_layout(tensors)
    if layout == "hf":
        return _from_hf(tensors, path.parent / "config.json", path)
    if layout == "official":
        return FoundCheckpoint(state_dict=_to_float32(tensors), format="official")
    if layout == "dinov2":
        raise CheckpointError(
            f"{path}: a DINOv2 encoder checkpoint (no depth head), not a depth model; it can "
            "initialise a student's encoder (dav2-train `init:`), not predict depth"
        )
    raise CheckpointError(
        f"{path}: tensor names match no known layout (expected 'pretrained.*'/'depth_head.*' "
        f"or transformers 'backbone.*'/'neck.*'/'head.*'; first names: "
        f"{', '.join(list(tensors)[:3])})"
    )


def read_encoder_checkpoint(path: Path) -> dict[str, Tensor] | None:
    """A DINOv2 encoder file (``.pth``/``.safetensors``) → official ``pretrained.*`` tensors
    (float32); None when the file is a full model or another layout."""
    if path.suffix == ".safetensors":
        tensors = read_safetensors(path)
    else:
        tensors = as_state_dict(unwrap_state_dict(read_pickle(path)), path)
    if detect_layout(tensors) != "dinov2":
        return None
    try:
        return _to_float32(dinov2_to_official(tensors))
    except FormatError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _read_hf_dir(directory: Path) -> FoundCheckpoint:
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(
            f"{directory}: a directory checkpoint must be a transformers model directory "
            "with config.json, which is missing"
        )
    for name in ("model.safetensors", "pytorch_model.bin"):
        weights = directory / name
        if weights.is_file():
            tensors = (
                read_safetensors(weights)
                if name.endswith(".safetensors")
                else as_state_dict(read_pickle(weights), weights)
            )
            return _from_hf(tensors, config_path, weights)
    raise CheckpointError(
        f"{directory}: no model.safetensors or pytorch_model.bin beside config.json "
        "(sharded checkpoints are not supported: merge them first)"
    )


def _from_hf(tensors: dict[str, Tensor], config_path: Path, path: Path) -> FoundCheckpoint:
    if not config_path.is_file():
        raise CheckpointError(
            f"{path}: transformers tensor names but no config.json beside it "
            f"({config_path}); copy the model's config.json there"
        )
    config = read_json(config_path)
    if config.get("model_type") not in (None, "depth_anything"):
        raise CheckpointError(
            f"{config_path}: model_type is {config.get('model_type')!r}, not 'depth_anything'"
        )
    try:
        spec = _registered_twin(spec_from_hf_config(config))
        state = hf_to_official(tensors)
    except FormatError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    depth_type = config.get("depth_estimation_type", "relative")
    if depth_type not in DEPTH_TYPES:
        raise CheckpointError(f"{config_path}: unknown depth_estimation_type {depth_type!r}")
    max_depth = config.get("max_depth") if depth_type == "metric" else None
    return FoundCheckpoint(
        state_dict=_to_float32(state),
        format="hf",
        spec=spec,
        depth_type=depth_type,
        max_depth=float(max_depth) if max_depth is not None else None,
    )


def _read_own(tensors_path: Path, document: dict, json_path: Path) -> FoundCheckpoint:
    if not tensors_path.is_file():
        raise CheckpointError(f"{json_path}: its tensors file {tensors_path.name} is missing")
    version = document.get("format_version", 1)
    if not isinstance(version, int) or version > OWN_FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path}: format_version {version!r} is newer than this dav2_ros reads "
            f"({OWN_FORMAT_VERSION}); update dav2_ros"
        )
    try:
        name = str(document["encoder"])
        depth_type = str(document["depth_type"])
        max_depth = float(document["max_depth"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{json_path}: metadata lacks or garbles {exc}") from None
    if name in encoder_names():
        spec = get_encoder_spec(name)
        if "encoder_spec" in document and spec_to_json(spec) != document["encoder_spec"]:
            raise CheckpointError(
                f"{json_path}: encoder {name!r} in the metadata has other shapes than the "
                f"registered {name!r} ({document['encoder_spec']} vs {spec_to_json(spec)})"
            )
    elif "encoder_spec" in document:
        spec = _spec_from_json(document["encoder_spec"], json_path)
    else:
        raise CheckpointError(
            f"{json_path}: unknown encoder {name!r} and no encoder_spec; known: "
            f"{', '.join(encoder_names())}"
        )
    if depth_type not in DEPTH_TYPES:
        raise CheckpointError(f"{json_path}: depth_type {depth_type!r} is not one of {DEPTH_TYPES}")
    return FoundCheckpoint(
        state_dict=_to_float32(read_safetensors(tensors_path)),
        format=OWN_FORMAT,
        spec=spec,
        depth_type=depth_type,
        max_depth=max_depth,
        input_size=int(document.get("input_size", 518)),
        canonical_focal_px=_canonical_focal(document, json_path),
        provenance=dict(document.get("provenance") or {}),
        metrics=dict(document.get("metrics") or {}),
        source=tensors_path,
        confidence_head=document.get("confidence_head"),
    )


def _canonical_focal(document: dict, json_path: Path) -> float | None:
    """The recorded canonical focal length (pixels of the network input), None if absent."""
    value = document.get("canonical_focal_px")
    if value is None:
        return None
    try:
        focal_px = float(value)
    except (TypeError, ValueError):
        focal_px = math.nan
    if not (math.isfinite(focal_px) and focal_px > 0):
        raise CheckpointError(
            f"{json_path}: canonical_focal_px must be a focal length > 0 pixels, got {value!r}"
        )
    return focal_px


def _to_float32(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _registered_twin(spec: EncoderSpec) -> EncoderSpec:
    """The registered size with exactly these shapes (so metadata carries its name)."""
    for name in encoder_names():
        known = get_encoder_spec(name)
        if dataclasses.replace(known, name=spec.name) == spec:
            return known
    return spec


def spec_to_json(spec: EncoderSpec) -> dict:
    data = dataclasses.asdict(spec)
    data["out_channels"] = list(spec.out_channels)
    data["tapped_blocks"] = list(spec.tapped_blocks)
    return data


def _spec_from_json(data: object, path: Path) -> EncoderSpec:
    try:
        fields = dict(data)  # type: ignore[call-overload]
        fields["out_channels"] = tuple(fields["out_channels"])
        fields["tapped_blocks"] = tuple(fields["tapped_blocks"])
        return EncoderSpec(**fields)
    except (TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: encoder_spec is not a valid encoder description ({exc})"
        ) from None
