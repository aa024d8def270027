"""Models going into a step: a trained section, or any checkpoint file a user brings.

A reference (``pseudo_label.teacher``, a section's ``init``) is either
- the name of a train section of the config → its ``final`` checkpoint;
- a path ``dav2_ros.model.checkpoints.load_model`` reads (official ``.pth`` relative or
  metric, a Hugging Face directory, the project's safetensors + JSON);
- a name ``hf:<owner>/<repo>[/<file>][@<revision>]`` in the Hugging Face cache (fetched
  ahead with ``dav2 fetch``; an official repository's name says relative or metric);
- a mapping ``{path: …, depth_type: metric, max_depth: 20, encoder: vits}`` when the
  file cannot say what it is (official metric files named otherwise);
- for ``init`` only: a DINOv2 encoder checkpoint (``dinov2_vit{s,b,l,g}14_pretrain.pth``
  layout), which initialises the encoder and leaves the head fresh.

Everything is read through ``load_model`` (or, for a bare encoder,
``read_encoder_checkpoint``); trained sections are written with ``save_model``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import CheckpointError, LoadedModel, load_model
from dav2_ros.model.formats import DINOV2_PREFIX
from dav2_ros.model.hub import (
    TRANSFORMERS_FILES,
    CachedWeights,
    is_hub_name,
    parse_hub_name,
    resolve,
)
from dav2_train.config import ConfigError, is_train_section, run_dir


@dataclass
class ModelRef:
    """A loaded reference and the record of where it came from (for provenance)."""

    loaded: LoadedModel
    record: dict = field(default_factory=dict)

    @property
    def model(self) -> DepthAnythingV2:
        return self.loaded.model


def final_checkpoint(config: dict[str, Any], name: str) -> Path:
    """The stem a finished train section saved its model to (``final.safetensors`` + ``.json``)."""
    return run_dir(config) / name / "final"


def is_finished(stem: Path) -> bool:
    return stem.with_suffix(".safetensors").is_file() and stem.with_suffix(".json").is_file()


def load_trained(config: dict[str, Any], name: str) -> ModelRef:
    """The model a finished train section produced (raises if it has not run)."""
    stem = final_checkpoint(config, name)
    if not is_finished(stem):
        raise FileNotFoundError(
            f"{stem}.safetensors does not exist: run the {name!r} training section first"
        )
    loaded = load_model(stem.with_suffix(".safetensors"))
    record = {
        "kind": "section",
        "section": name,
        "fingerprint": loaded.meta.provenance.get("fingerprint", {}).get("digest"),
        "provenance": loaded.meta.provenance,
    }
    return ModelRef(loaded, record)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file, or of a directory's files (name + content), in 1 MiB reads.

    Cached per process by (path, size, mtime): a teacher is hashed once per run.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _sha256(path)
    return _DIGESTS[key]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _parse_ref(ref: Any, what: str) -> tuple[str, dict]:
    if isinstance(ref, dict):
        if "path" not in ref:
            raise ConfigError(f"{what}: a mapping needs `path:` (and optionally depth_type, …)")
        options = {k: ref[k] for k in ("encoder", "depth_type", "max_depth") if k in ref}
        unknown = set(ref) - {"path", *options}
        if unknown:
            raise ConfigError(f"{what}: unknown keys {sorted(unknown)}")
        return str(ref["path"]), options
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"{what}: expected a section name or a checkpoint path, got {ref!r}")
    return ref, {}


def hub_weights(ref: str) -> CachedWeights | None:
    """The cached files of an ``hf:`` reference (cache only: a miss raises and says how to
    fetch it); None for any other reference."""
    return resolve(parse_hub_name(ref)) if is_hub_name(ref) else None


def _hub_identity(weights: CachedWeights) -> dict[str, str]:
    """Name, commit and the tensors' sha256: what a model named on the hub is, wherever
    the cache lies (the cache path stays out of fingerprints)."""
    tensors = weights.path if weights.name.filename else weights.path / TRANSFORMERS_FILES[1]
    return {"name": str(weights.name), "commit": weights.commit, "sha256": file_digest(tensors)}


def checkpoint_path(ref: str) -> Path | None:
    """The path a reference names, if it exists on disk (with or without a suffix); an
    ``hf:`` name's file (or snapshot folder) in the Hugging Face cache."""
    weights = hub_weights(ref)
    if weights is not None:
        return weights.path
    path = Path(ref).expanduser()
    if path.exists():
        return path
    for suffix in (".safetensors", ".json"):
        if path.with_name(path.name + suffix).is_file():
            return path
    return None


def _weights_file(path: Path) -> Path:
    """The file (or directory) holding the tensors a checkpoint path names."""
    if path.exists():
        return path
    return path.with_name(path.name + ".safetensors")


def reference_input(config: dict[str, Any], ref: Any, what: str) -> dict[str, Any]:
    """What a reference is, for fingerprints: a section's own fingerprint or a file's sha256."""
    name, options = _parse_ref(ref, what)
    if not options and is_train_section(config, name):
        stem = final_checkpoint(config, name)
        if not is_finished(stem):
            raise FileNotFoundError(
                f"{what}: section {name!r} has not finished ({stem}.safetensors is missing); "
                "run it first"
            )
        provenance = json.loads(stem.with_suffix(".json").read_text()).get("provenance", {})
        return {"section": name, "fingerprint": provenance.get("fingerprint", {}).get("digest")}
    cached = hub_weights(name)
    if cached is not None:
        return {**_hub_identity(cached), **options}
    path = checkpoint_path(name)
    if path is None:
        load_reference(config, ref, what)  # raises the explanatory error
    weights = _weights_file(path)
    return {"path": str(weights.resolve()), "sha256": file_digest(weights), **options}


def load_reference(config: dict[str, Any], ref: Any, what: str) -> ModelRef:
    """A section name or a checkpoint file/directory → the model and its record."""
    name, options = _parse_ref(ref, what)
    if not options and is_train_section(config, name):
        return load_trained(config, name)
    cached = hub_weights(name)
    path = cached.path if cached is not None else checkpoint_path(name)
    if path is None:
        sections = [k for k in config if is_train_section(config, k)]
        raise FileNotFoundError(
            f"{what}: {name!r} is neither a train section of this config "
            f"({', '.join(sections) or 'none'}) nor an existing checkpoint file or directory"
        )
    if cached is not None:  # by name: the loader reads what the repository says, logs its licence
        loaded = load_model(name, **options)
        identity = {**_hub_identity(cached), "path": str(cached.path)}
    else:
        loaded = load_model(path, **options)
        identity = {"path": str(path.resolve()), "sha256": file_digest(_weights_file(path))}
    record = {
        "kind": "file",
        **identity,
        "format": loaded.meta.format,
        "encoder": loaded.meta.encoder,
        "depth_type": loaded.meta.depth_type,
        "max_depth": loaded.meta.max_depth,
        "licence": loaded.meta.provenance.get("licence"),
    }
    exported = {
        k: loaded.meta.provenance[k] for k in EXPORTED_LINEAGE if k in loaded.meta.provenance
    }
    if exported:  # a dav2-train export: its own lineage goes on with the model
        record["lineage"] = exported
    return ModelRef(loaded, record)


# The lineage lines ``dav2-train export`` writes into a checkpoint's provenance.
EXPORTED_LINEAGE = (
    "initialisation",
    "teachers",
    "data_sources",
    "steps",
    "input_licences",
    "non_commercial_inputs",
)


def flip_output_for_metric(model: DepthAnythingV2) -> None:
    """Negate the last 1×1 conv of a head initialised from a model of the other depth type.

    The relative head's logit grows with *disparity* (near = large); the metric head's
    Sigmoid × max_depth must grow with *depth*. Without the flip the fine-tune starts
    with the ordering inverted and SiLog settles on a near-constant depth.
    """
    last = model.depth_head.scratch.output_conv2[2]
    with torch.no_grad():
        last.weight.neg_()
        last.bias.neg_()


def initialise(model: DepthAnythingV2, config: dict[str, Any], ref: Any, what: str) -> dict:
    """Load ``ref`` into ``model``; return the record of what was loaded.

    A full checkpoint must have the model's encoder size; a DINOv2 encoder file
    fills ``pretrained.*`` only, and the record lists which tensors loaded.
    """
    name, options = _parse_ref(ref, what)
    path = None if is_train_section(config, name) else checkpoint_path(name)
    if path is not None and path.is_file() and not options:
        from dav2_ros.model.checkpoint_readers import read_encoder_checkpoint

        encoder_state = read_encoder_checkpoint(path)
        if encoder_state is not None:
            record = _load_encoder(model, encoder_state, path)
            return {"name": name, **record} if is_hub_name(name) else record
    source = load_reference(config, ref, what)
    if source.loaded.meta.encoder != model.spec.name:
        raise CheckpointError(
            f"{what}: {name} is a {source.loaded.meta.encoder} model, this section trains a "
            f"{model.spec.name}; use an init of the same encoder size (or a teacher to distil)"
        )
    model.load_state_dict(source.model.state_dict())  # same keys for relative and metric heads
    record = {**source.record, "loaded": "encoder and head"}
    if source.loaded.meta.depth_type != model.depth_type:
        flip_output_for_metric(model)
        record["output_flipped"] = True
    return record


def calibrate_metric_logits(
    model: DepthAnythingV2, images: torch.Tensor, depth_m: torch.Tensor, valid: torch.Tensor
) -> dict[str, float]:
    """Scale and shift the flipped head's last 1×1 conv so that, on one batch, its logits
    have the median and spread (MAD) of the targets' logits, logit(depth / max_depth).

    A relative model's output scale drifts without bound (this project's students reached
    logits of 300-3,700): flipped into Sigmoid × max_depth, every pixel then starts
    saturated at 0 or max_depth, the Sigmoid passes no gradient, and SiLog cannot move
    it (a 2,000-step fine-tune ended at 20 m everywhere). Ordering is kept: the scale
    is positive. Returns what was applied, for the run's record.
    """
    last = model.depth_head.scratch.output_conv2[2]
    kept: dict[str, torch.Tensor] = {}
    hook = last.register_forward_hook(lambda _m, _i, out: kept.__setitem__("z", out.detach()))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(images)
    finally:
        hook.remove()
        model.train(was_training)
    fraction = (depth_m / model.max_depth).clamp(1e-3, 1 - 1e-3)
    target = torch.log(fraction / (1 - fraction))[valid]
    logits = kept["z"].squeeze(1)[valid].float()
    if target.numel() == 0:  # no metric pixel in the batch: nothing to calibrate against
        return {"scale": 1.0, "shift": 0.0, "logit_median_before": float("nan"), "pixels": 0}

    def median_and_mad(values: torch.Tensor) -> tuple[float, float]:
        median = values.median()
        return float(median), float((values - median).abs().median())

    z_median, z_mad = median_and_mad(logits)
    t_median, t_mad = median_and_mad(target)
    scale = t_mad / z_mad if z_mad > 0 else 1.0
    shift = t_median - scale * z_median
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(shift)
    return {
        "scale": scale,
        "shift": shift,
        "logit_median_before": z_median,
        "pixels": target.numel(),
    }


def _load_encoder(model: DepthAnythingV2, state: dict[str, torch.Tensor], path: Path) -> dict:
    """Official ``pretrained.*`` tensors of a DINOv2 file → the model's encoder."""
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(DINOV2_PREFIX)}
    wrong = [
        f"{k} {tuple(v.shape)} (model: {tuple(expected[k].shape)})"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: a DINOv2 encoder of another size than this section's "
            f"{model.spec.name}: {'; '.join(wrong[:3])}"
        )
    loaded = sorted(k for k in state if k in expected)
    missing = sorted(k for k in expected if k not in state)
    model.load_state_dict({k: state[k] for k in loaded}, strict=False)
    return {
        "kind": "dinov2-encoder",
        "path": str(path.resolve()),
        "sha256": file_digest(path),
        "loaded": "encoder only",
        "tensors_loaded": len(loaded),
        "tensors_expected": len(expected),
        "missing": missing,
        "ignored": sorted(k for k in state if k not in expected),
        "loaded_names": loaded,
    }
