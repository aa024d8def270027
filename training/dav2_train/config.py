"""YAML run configuration: one file describes every step of a training run.

Top level: ``run_dir`` (all outputs), ``seed``, ``image`` (width/height of
rendered frames), ``max_depth_m``, then one section per step. Train sections
are run by the command named in their ``command`` key (teacher, student,
finetune-metric), so one config can hold several runs of the same command
(``student`` and the synthetic-only ``baseline``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TRAIN_DEFAULTS: dict[str, Any] = {
    "encoder": "vitt6",
    "input_size": 168,  # shorter side of the network input, multiple of 14
    "steps": 100,
    "batch_size": 8,
    "lr_encoder": 2e-4,
    "lr_decoder": 1e-3,
    "weight_decay": 0.05,
    "warmup_steps": 50,
    "poly_power": 0.9,
    "gradient_weight": 2.0,
    "trim_fraction": 0.0,
    "silog_lambda": 0.5,
    "checkpoint_every": 100,
    "log_every": 10,
    "init": None,  # a previous train section whose weights start this one
    "device": "auto",
    "amp": True,  # only on CUDA
    "hflip": True,
}


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
    for key in ("run_dir", "max_depth_m", "image"):
        if key not in config:
            raise ConfigError(f"{path}: missing top-level key {key!r}")
    config["_path"] = str(path)
    return config


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in config or not isinstance(config[name], dict):
        known = [k for k, v in config.items() if isinstance(v, dict) and not k.startswith("_")]
        raise ConfigError(
            f"config {config.get('_path')} has no section {name!r}; sections: {', '.join(known)}"
        )
    return config[name]


def train_section(config: dict[str, Any], name: str) -> dict[str, Any]:
    merged = dict(TRAIN_DEFAULTS)
    merged.update(section(config, name))
    return merged


def run_dir(config: dict[str, Any]) -> Path:
    return Path(config["run_dir"])
