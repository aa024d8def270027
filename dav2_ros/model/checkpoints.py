"""Load any Depth Anything V2 checkpoint a user may bring; save the project's own format.

Formats, auto-detected:
- ``official``: the release's ``.pth`` (plain state dict, ``pretrained.*`` /
  ``depth_head.*``). Relative vs metric is not in the keys: it comes from the
  arguments, else the official repository it was named by (``hf:…``, see ``hub``),
  else the file name (``…metric_hypersim…`` → 20 m, ``…vkitti…`` → 80 m).
- ``hf``: a transformers directory, or ``.safetensors`` / ``.bin`` with
  ``config.json`` beside it (4.x or 5.x tensor names).
- ``dav2``: the own format, ``<stem>.safetensors`` + ``<stem>.json`` metadata, which
  says whether the model carries a confidence head (``confidence_head``).
Any of them may be named ``hf:<owner>/<repo>[/<file>][@<revision>]`` (the Hugging Face
cache, ``dav2_ros.model.hub``). Explicit arguments (``encoder``, ``depth_type``,
``max_depth``) win over metadata.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from dav2_ros.model.checkpoint_readers import (
    OWN_FORMAT,
    FoundCheckpoint,
    own_format_version,
    read_checkpoint,
    spec_to_json,
)
from dav2_ros.model.confidence import ERROR_MEANING, MAPPING
from dav2_ros.model.dpt import DEPTH_TYPES, DepthAnythingV2
from dav2_ros.model.formats import (
    FormatError,
    hf_config,
    official_to_hf,
    shape_signature,
    spec_signature,
)
from dav2_ros.model.hub import declared_licence, is_hub_name, parse_hub_name, resolve
from dav2_ros.model.official_weights import (
    APACHE,
    NON_COMMERCIAL,
    OfficialRepo,
    licence_notice,
    official_repo,
)
from dav2_ros.model.sizes import EncoderSpec, encoder_names, get_encoder_spec
from dav2_ros.model.tensor_files import CheckpointError

__all__ = [
    "DEFAULT_WEIGHTS_DIR",
    "CheckpointError",
    "LoadedModel",
    "ModelMeta",
    "default_checkpoint",
    "infer_encoder",
    "load_model",
    "save_hf_model",
    "save_model",
]

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# Licences of the official weights (dav2-reference.md); students carry their own.
OFFICIAL_LICENCES = {
    "vits": APACHE,
    "vitb": NON_COMMERCIAL,
    "vitl": NON_COMMERCIAL,
    "vitg": NON_COMMERCIAL,
}
# File-name hints of the official metric releases: dataset -> max depth in metres.
_METRIC_NAME_HINTS = (("hypersim", 20.0), ("vkitti", 80.0))


@dataclass
class ModelMeta:
    """What a checkpoint is: shapes, output meaning, where it came from, how good it is.

    ``canonical_focal_px``: a metric model trained in a canonical camera
    (``dav2_ros.model.focal``) predicts the metres of a camera with this focal length, in
    pixels of the network input at ``input_size``; None: plain metres.
    """

    encoder: str
    depth_type: str
    max_depth: float
    input_size: int = 518
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    source: str = ""  # path it was loaded from
    format: str = ""  # "official" | "hf" | "dav2"
    # The confidence head: what its error measures and how it was trained; {} = no head.
    confidence_head: dict = field(default_factory=dict)
    canonical_focal_px: float | None = None  # metres of a canonical camera (focal.py)

    @property
    def has_confidence_head(self) -> bool:
        return bool(self.confidence_head)


@dataclass
class LoadedModel:
    model: DepthAnythingV2
    meta: ModelMeta


def default_checkpoint(weights_dir: Path = DEFAULT_WEIGHTS_DIR) -> Path:
    """The bundled model: ``default.safetensors`` or the only own-format file there."""
    candidates = sorted(
        p for p in weights_dir.glob("*.safetensors") if p.with_suffix(".json").is_file()
    )
    preferred = weights_dir / "default.safetensors"
    if preferred in candidates:
        return preferred
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise CheckpointError(
            f"no bundled default model in {weights_dir}: run `make weights` or pass --checkpoint"
        )
    raise CheckpointError(
        f"{weights_dir} holds several models ({', '.join(p.name for p in candidates)}) and no "
        "default.safetensors; pass --checkpoint"
    )


def load_model(
    path: str | Path | None = None,
    *,
    encoder: str | None = None,
    depth_type: str | None = None,
    max_depth: float | None = None,
    download: bool = False,
    log: Callable[[str], None] | None = None,
) -> LoadedModel:
    """Read a checkpoint of any supported format into a ``DepthAnythingV2`` (eval, CPU, fp32).

    ``path`` None → the bundled default. ``path`` may be an ``hf:`` name
    (``dav2_ros.model.hub``): found in the Hugging Face cache, downloaded first only with
    ``download``; its licence is logged with ``log`` (default: stderr). Raises
    ``CheckpointError`` naming the file and the problem for anything that is not a
    complete, matching checkpoint.
    """
    if is_hub_name(path):
        return _load_named(str(path), encoder, depth_type, max_depth, download, log or _to_stderr)
    path = default_checkpoint() if path is None else Path(path).expanduser()
    return _load_file(path, encoder, depth_type, max_depth)


def _load_file(
    path: Path,
    encoder: str | None,
    depth_type: str | None,
    max_depth: float | None,
    repo: OfficialRepo | None = None,
) -> LoadedModel:
    if depth_type is not None and depth_type not in DEPTH_TYPES:
        raise CheckpointError(f"depth_type must be one of {DEPTH_TYPES}, got {depth_type!r}")
    found = read_checkpoint(path)
    spec = _resolve_spec(found, encoder, path)
    kind, depth_max = _resolve_depth(found, depth_type, max_depth, path, repo)
    model = _build(spec, kind, depth_max, found.state_dict, path)
    head = _confidence_head_meta(model, found, path)
    provenance = dict(found.provenance)
    if found.format != OWN_FORMAT:
        provenance.setdefault("source_file", path.name)
        provenance.setdefault("source_format", found.format)
        if spec.name in OFFICIAL_LICENCES:
            provenance.setdefault("licence", OFFICIAL_LICENCES[spec.name])
    meta = ModelMeta(
        encoder=spec.name,
        depth_type=kind,
        max_depth=depth_max,
        input_size=found.input_size,
        canonical_focal_px=found.canonical_focal_px,
        provenance=provenance,
        metrics=dict(found.metrics),
        source=str(found.source or path),
        format=found.format,
        confidence_head=head,
    )
    return LoadedModel(model=model, meta=meta)


def _load_named(
    text: str,
    encoder: str | None,
    depth_type: str | None,
    max_depth: float | None,
    download: bool,
    log: Callable[[str], None],
) -> LoadedModel:
    """An ``hf:`` name: the cached file, read with what an official repository says about it
    (relative or metric, max depth) where neither the user nor the file says it."""
    name = parse_hub_name(text)
    weights = resolve(name, download)
    repo = official_repo(name.repo_id)
    loaded = _load_file(weights.path, encoder, depth_type, max_depth, repo)
    meta = loaded.meta
    if repo is not None and encoder is None and meta.encoder != repo.encoder:
        log(
            f"note: {name} names a {repo.encoder} repository but its tensors are "
            f"{meta.encoder}'s; loaded as {meta.encoder} (the tensors' shapes decide)"
        )
    licence = declared_licence(weights) or meta.provenance.get("licence")
    meta.provenance.update(hub_name=str(name), hub_commit=weights.commit)
    if licence:
        meta.provenance["licence"] = licence
    log(licence_notice(name.repo_id, licence))
    return loaded


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def save_model(model: DepthAnythingV2, meta: ModelMeta, path: str | Path) -> Path:
    """Write ``<stem>.safetensors`` + ``<stem>.json`` (the own format); return the tensors' path."""
    _check_meta_matches(model, meta)
    stem = Path(path).expanduser()
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors_path = stem.with_name(stem.name + ".safetensors")
    json_path = stem.with_name(stem.name + ".json")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {"format": OWN_FORMAT, "encoder": meta.encoder, "depth_type": meta.depth_type}
    canonical = meta.canonical_focal_px is not None
    document = {
        "format": OWN_FORMAT,
        "format_version": own_format_version(canonical, model.has_confidence_head),
        "tensors": tensors_path.name,
        "encoder": meta.encoder,
        "encoder_spec": spec_to_json(model.spec),
        "depth_type": meta.depth_type,
        "max_depth": float(meta.max_depth),
        "input_size": int(meta.input_size),
        **({"canonical_focal_px": float(meta.canonical_focal_px)} if canonical else {}),
        "provenance": meta.provenance,
        "metrics": meta.metrics,
    }
    if model.has_confidence_head:
        document["confidence_head"] = {
            **confidence_head_description(model.depth_type),
            **meta.confidence_head,
        }
    # Write beside, then rename: a crash never leaves a half-written checkpoint.
    tmp_tensors = tensors_path.with_name(tensors_path.name + ".tmp")
    tmp_json = json_path.with_name(json_path.name + ".tmp")
    save_file(tensors, str(tmp_tensors), metadata=header)
    tmp_json.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_tensors, tensors_path)
    os.replace(tmp_json, json_path)
    return tensors_path


def save_hf_model(model: DepthAnythingV2, directory: str | Path, spelling: str = "4.x") -> Path:
    """Write a transformers directory (``model.safetensors`` + ``config.json``)."""
    if model.has_confidence_head:
        raise CheckpointError(
            "save_hf_model: the transformers format has no confidence head; save this model "
            "with save_model (the project's format), or drop the head first"
        )
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors = official_to_hf(state, spelling)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = hf_config(model.spec, model.depth_type, model.max_depth)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


# --- resolving what the file is ------------------------------------------------------


def _resolve_spec(found: FoundCheckpoint, encoder: str | None, path: Path) -> EncoderSpec:
    try:
        signature = shape_signature(found.state_dict)
    except FormatError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if encoder is not None:
        try:
            spec = get_encoder_spec(encoder)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        source = f"--encoder {encoder}"
    elif found.spec is not None:
        spec, source = found.spec, "its metadata"
    else:
        return _infer_encoder(signature, path)
    if spec_signature(spec) != signature:
        guess = _matching_encoders(signature)
        hint = f" (the tensors fit {', '.join(guess)})" if guess else ""
        raise CheckpointError(
            f"{path}: {source} says encoder {spec.name!r} ({_describe(spec_signature(spec))}) "
            f"but the tensors are {_describe(signature)}{hint}"
        )
    return spec


def infer_encoder(state_dict: dict[str, Tensor], source: str = "state dict") -> EncoderSpec:
    """The registered size whose shapes these (official-layout) tensors have."""
    try:
        signature = shape_signature(state_dict)
    except FormatError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    return _infer_encoder(signature, source)


def _infer_encoder(signature: dict, path: Path | str) -> EncoderSpec:
    names = _matching_encoders(signature)
    if len(names) == 1:
        return get_encoder_spec(names[0])
    if not names:
        raise CheckpointError(
            f"{path}: no known encoder has these shapes ({_describe(signature)}); known: "
            f"{', '.join(encoder_names())}. Register the size in dav2_ros.model.sizes"
        )
    raise CheckpointError(
        f"{path}: the shapes fit several encoders ({', '.join(names)}); pass --encoder"
    )


def _matching_encoders(signature: dict) -> list[str]:
    return [n for n in encoder_names() if spec_signature(get_encoder_spec(n)) == signature]


def _resolve_depth(
    found: FoundCheckpoint,
    depth_type: str | None,
    max_depth: float | None,
    path: Path,
    repo: OfficialRepo | None = None,
) -> tuple[str, float]:
    # The user's arguments, else the file's metadata, else the official repository it was
    # named by, else the file's name.
    hinted_type, hinted_max = found.depth_type, found.max_depth
    if hinted_type is None and repo is not None:
        hinted_type, hinted_max = repo.depth_type, repo.max_depth_m
    if hinted_type is None:
        hinted_type, hinted_max = _depth_from_file_name(path.name)
    kind = depth_type or hinted_type
    depth_max = max_depth if max_depth is not None else hinted_max
    if kind == "metric" and depth_max is None:
        raise CheckpointError(
            f"{path}: a metric model needs its max_depth, which neither the file nor its "
            "name says; pass --max-depth (20 for the Hypersim/indoor, 80 for the VKITTI/"
            "outdoor releases)"
        )
    if kind == "metric" and not depth_max > 0:
        raise CheckpointError(f"{path}: max_depth must be > 0 for a metric model, got {depth_max}")
    return kind, float(depth_max if depth_max is not None else 20.0)


def _depth_from_file_name(name: str) -> tuple[str, float | None]:
    lowered = name.lower()
    for hint, metres in _METRIC_NAME_HINTS:
        if hint in lowered:
            return "metric", metres
    if re.search(r"(^|[^a-z])metric([^a-z]|$)", lowered):
        return "metric", None
    return "relative", None


# --- building ----------------------------------------------------------------------

CONFIDENCE_PREFIX = "depth_head.uncertainty."


def confidence_head_description(depth_type: str) -> dict:
    """What every confidence head's metadata says: its output, what the error measures
    for this depth type, and how confidence is made from it."""
    return {"output": "expected_error", "measures": ERROR_MEANING[depth_type], "mapping": MAPPING}


def _confidence_head_meta(model: DepthAnythingV2, found: FoundCheckpoint, path: Path) -> dict:
    """The head's metadata ({} without one); the tensors decide, the metadata must agree."""
    described = found.confidence_head
    if model.has_confidence_head and found.format == OWN_FORMAT and not described:
        raise CheckpointError(
            f"{path}: the tensors hold a confidence head ({CONFIDENCE_PREFIX}*) but the "
            "metadata does not describe one (confidence_head); export the model again"
        )
    if described and not model.has_confidence_head:
        raise CheckpointError(
            f"{path}: the metadata describes a confidence head but the tensors hold none "
            f"({CONFIDENCE_PREFIX}*); the file is incomplete: export it again"
        )
    if not model.has_confidence_head:
        return {}
    return dict(described or confidence_head_description(model.depth_type))


def _build(
    spec: EncoderSpec, depth_type: str, max_depth: float, state: dict[str, Tensor], path: Path
) -> DepthAnythingV2:
    head = any(k.startswith(CONFIDENCE_PREFIX) for k in state)
    # Built on the meta device: no memory or time for random weights that are replaced.
    with torch.device("meta"):
        model = DepthAnythingV2(spec, depth_type, max_depth, confidence_head=head)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors (e.g. {', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:4])})")
        raise CheckpointError(
            f"{path}: not a complete Depth Anything V2 {spec.name} checkpoint: {'; '.join(parts)}"
        )
    wrong = [
        f"{k} is {tuple(state[k].shape)}, expected {tuple(v.shape)}"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: {len(wrong)} tensors have the wrong shape for encoder {spec.name}: "
            f"{'; '.join(wrong[:4])}"
        )
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def _describe(signature: dict) -> str:
    return (
        f"embed {signature['embed_dim']}, {signature['depth']} blocks, {signature['ffn']} FFN, "
        f"head features {signature['features']}, out_channels {list(signature['out_channels'])}"
    )


def _check_meta_matches(model: DepthAnythingV2, meta: ModelMeta) -> None:
    problems = []
    if meta.encoder != model.spec.name:
        problems.append(f"encoder {meta.encoder!r} vs the model's {model.spec.name!r}")
    if meta.depth_type != model.depth_type:
        problems.append(f"depth_type {meta.depth_type!r} vs the model's {model.depth_type!r}")
    if model.depth_type == "metric" and float(meta.max_depth) != model.max_depth:
        problems.append(f"max_depth {meta.max_depth} vs the model's {model.max_depth}")
    if meta.confidence_head and not model.has_confidence_head:
        problems.append("confidence_head is described but the model has no confidence head")
    if meta.canonical_focal_px is not None:
        if model.depth_type != "metric":
            problems.append("canonical_focal_px on a relative model (it corrects metres only)")
        elif not (math.isfinite(meta.canonical_focal_px) and meta.canonical_focal_px > 0):
            problems.append(f"canonical_focal_px {meta.canonical_focal_px} is not > 0 pixels")
    if problems:
        raise CheckpointError(
            f"save_model: metadata disagrees with the model: {'; '.join(problems)}"
        )
