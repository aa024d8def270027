"""What the depth node checks before it wires anything: its settings, read from its
parameters, its model, loaded from the checkpoint, and its engine's backend.
``StartupError`` says why it cannot start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dav2_ros.paramspec import ParameterError
from dav2_ros.ros.parameters import NodeSettings, declare_parameters, settings_from_values


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing checkpoint); the message says why."""


def read_settings(node: Any) -> NodeSettings:
    """Declare the parameter table on ``node`` and check every value once."""
    try:
        return settings_from_values(declare_parameters(node))
    except ParameterError as exc:
        raise StartupError(str(exc)) from exc


def load_model(settings: NodeSettings, log: Callable[[str], None] | None = None) -> Any:
    """``LoadedModel`` of ``model.*``; StartupError naming the parameter if it fails.

    ``log`` gets the licence line of a model named ``hf:…`` (the node's logger)."""
    try:
        from dav2_ros.model.checkpoints import CheckpointError, load_model
    except ImportError as exc:
        raise StartupError(f"the checkpoint loader is not installed: {exc}") from exc
    try:
        return load_model(
            settings.checkpoint or None,
            encoder=settings.encoder or None,
            depth_type=None if settings.depth_type == "auto" else settings.depth_type,
            max_depth=settings.max_depth_m or None,
            download=settings.download,
            log=log,
        )
    except (CheckpointError, OSError, ValueError) as exc:
        where = f"'{settings.checkpoint}'" if settings.checkpoint else "the bundled default"
        raise StartupError(
            f"cannot load the model from {where} (parameter 'model.checkpoint'): {exc}"
        ) from exc


def model_label(meta: Any, checkpoint: str) -> str:
    """``vitt metric max_depth=10m (path)``: the model as logs and /diagnostics name it."""
    max_depth = f" max_depth={meta.max_depth:g}m" if meta.depth_type == "metric" else ""
    return f"{meta.encoder} {meta.depth_type}{max_depth} ({checkpoint or 'bundled default'})"


def depth_estimator(settings: NodeSettings, model: Any, input_size: int) -> Any:
    """The node's ``DepthEstimator`` (engines are built at the first frame); StartupError
    if ``engine.backend`` names no backend or loadable plugin."""
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.engines.base import SelfCheckSettings

    options = {"threads": settings.threads} if settings.threads else {}
    self_check = None
    if settings.self_check:
        self_check = SelfCheckSettings(settings.max_deviation, settings.allow_deviation)
    spec = EngineSpec(
        settings.backend,
        settings.device,
        settings.precision,
        options,
        self_check=self_check,
    )
    try:
        return DepthEstimator(model, spec, input_size)
    except ValueError as exc:
        raise StartupError(f"parameter 'engine.backend': {exc}") from exc
