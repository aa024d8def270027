"""YAML run configuration: one file describes every step of a training run.

Top level: ``run_dir`` (all outputs), ``seed``, ``image`` (width/height of
rendered frames), ``max_depth_m``, then one section per step. Train sections
are run by the command named in their ``command`` key (teacher, student,
finetune-metric, confidence), so one config can hold several runs of the same command
(``student`` and the synthetic-only ``baseline``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

TRAIN_COMMANDS = ("teacher", "student", "finetune-metric", "confidence")

TRAIN_DEFAULTS: dict[str, Any] = {
    "command": None,  # teacher | student | finetune-metric | confidence
    "data": None,  # a split under <run_dir>/data (or a list of splits)
    "encoder": "vitt6",  # confidence: the init's encoder (this key is not read)
    "input_size": 168,  # shorter side of the network input (the node's resize), multiple of 14
    "crop_size": None,  # square random crop; None = input_size (the paper: 518 x 518)
    "steps": 100,  # optimizer steps
    "batch_size": 8,  # per process and micro-batch
    "accumulate": 1,  # micro-batches per optimizer step (gradient accumulation)
    "lr_encoder": 2e-4,
    "lr_decoder": 1e-3,
    "weight_decay": 0.05,
    "warmup_steps": 50,
    "poly_power": 0.9,
    "gradient_weight": 2.0,
    # Relative models: weight of losses.live_range_penalty (keeps the head's output above
    # its final ReLU, where pixels learn); 0 = the paper's loss alone.
    "live_range_weight": 1.0,
    "trim_fraction": None,  # None: 0.1 on pseudo labels (the paper), 0 on ground truth
    "silog_lambda": 0.5,
    # Pixels without a valid depth (sky, beyond max_depth_m) in metric ground truth:
    # "far" teaches them as far (relative: disparity 0; metric: 0.98 x max depth),
    # "ignore" leaves them out of the loss. None: far for relative, ignore for metric
    # (the paper's SiLog is on valid pixels only).
    "sky": None,
    "init": None,  # a train section, a checkpoint load_model reads, or a DINOv2 encoder file
    # A confidence head trained with the model (student, finetune-metric): a Laplace NLL of
    # the model's own error, behind a stop-gradient (the depth learns exactly as without it).
    # The `confidence` command trains only the head, on its frozen `init`.
    "confidence_head": False,
    "lr_confidence": 1e-3,
    "hflip": True,
    # Random resize: the shorter side drawn among the multiples of 14 in
    # [lo, hi] x input_size (then the crop), so a sample's focal length at the network
    # input varies; null: always input_size.
    "resize_range": None,
    # finetune-metric: learn the metres of a canonical camera with this focal length, in
    # pixels of the network input (dav2_ros.model.focal): labels x canonical / the sample's
    # focal length (from its K). Recorded in the checkpoint; the node corrects back.
    "canonical_focal_px": None,
    "strong_augment": "auto",  # colour jitter, blur, CutMix; auto = on pseudo labels only
    "augment": {},  # StrongAugment parameters (dav2_train.augment)
    "workers": 2,  # DataLoader worker processes per rank
    "precision": "auto",  # auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp16
    "activation_checkpointing": False,  # recompute ViT blocks in backward (ViT-L/G memory)
    "checkpoint_every": 100,
    "log_every": 10,
}
SKY_MODES = ("far", "ignore")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(ValueError):
    pass


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read the YAML file; ``overrides`` are ``section.key=value`` strings (value in YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; see training/configs/ for examples")
    with path.open() as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{path}: expected a mapping at the top level, got {type(config).__name__}"
        )
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        target = config
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = yaml.safe_load(value)
    for key in ("run_dir", "max_depth_m"):
        if key not in config:
            raise ConfigError(f"{path}: missing top-level key {key!r}")
    config["_path"] = str(path)
    config["_overrides"] = list(overrides or [])
    return config


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in config or not isinstance(config[name], dict):
        known = [k for k, v in config.items() if isinstance(v, dict) and not k.startswith("_")]
        raise ConfigError(
            f"config {config.get('_path')} has no section {name!r}; sections: {', '.join(known)}"
        )
    return config[name]


def is_train_section(config: dict[str, Any], name: str) -> bool:
    value = config.get(name)
    return isinstance(value, dict) and value.get("command") in TRAIN_COMMANDS


def train_section(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The section merged over ``TRAIN_DEFAULTS``; unknown keys are refused (typos)."""
    values = section(config, name)
    unknown = sorted(set(values) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"train section {name!r}: unknown keys {unknown}; known: {sorted(TRAIN_DEFAULTS)}"
        )
    merged = copy.deepcopy(TRAIN_DEFAULTS)
    for key, value in values.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if merged["command"] not in TRAIN_COMMANDS:
        raise ConfigError(
            f"train section {name!r}: command must be one of {TRAIN_COMMANDS}, "
            f"got {merged['command']!r}"
        )
    if merged["command"] == "confidence" and not merged["init"]:
        raise ConfigError(
            f"train section {name!r}: a confidence section trains a head on a frozen model: "
            "`init:` (a train section or a checkpoint) is missing"
        )
    if not merged["data"]:
        raise ConfigError(
            f"train section {name!r}: `data:` (a split under run_dir/data) is missing"
        )
    if merged["sky"] not in (None, *SKY_MODES):
        raise ConfigError(f"train section {name!r}: sky must be one of {SKY_MODES} or null")
    if merged["precision"] not in PRECISIONS:
        raise ConfigError(f"train section {name!r}: precision must be one of {PRECISIONS}")
    check_focal_settings(name, merged)
    return merged


def check_focal_settings(name: str, cfg: dict[str, Any]) -> None:
    """``canonical_focal_px`` (metric fine-tunes, > 0) and ``resize_range`` ([lo, hi])."""
    canonical = cfg["canonical_focal_px"]
    if canonical is not None:
        if cfg["command"] != "finetune-metric":
            raise ConfigError(
                f"train section {name!r}: canonical_focal_px rescales metric labels; only a "
                f"finetune-metric section learns metres (this one is {cfg['command']})"
            )
        if not isinstance(canonical, (int, float)) or not canonical > 0:
            raise ConfigError(
                f"train section {name!r}: canonical_focal_px must be a focal length > 0 "
                f"pixels of the network input, got {canonical!r}"
            )
    bounds = cfg["resize_range"]
    if bounds is not None:
        ok = isinstance(bounds, (list, tuple)) and len(bounds) == 2
        if not ok or not all(isinstance(b, (int, float)) and b > 0 for b in bounds):
            raise ConfigError(
                f"train section {name!r}: resize_range must be [lo, hi] factors of "
                f"input_size (e.g. [1.0, 1.5]), got {bounds!r}"
            )
        if bounds[0] > bounds[1]:
            raise ConfigError(f"train section {name!r}: resize_range {bounds}: lo > hi")


def data_splits(cfg: dict[str, Any]) -> list[str]:
    data = cfg["data"]
    return [str(d) for d in data] if isinstance(data, list) else [str(data)]


def run_dir(config: dict[str, Any]) -> Path:
    return Path(config["run_dir"])


def split_dir(config: dict[str, Any], split: str) -> Path:
    return run_dir(config) / "data" / split
