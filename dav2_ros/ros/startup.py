"""What the depth node checks and builds when it is configured: its settings, its model
(loaded from the checkpoint), its engine (built on a warm-up frame), and what cleanup
gives back. ``StartupError`` says why it cannot start."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dav2_ros.paramspec import ParameterError
from dav2_ros.ros.parameters import NodeSettings, settings_from_values
from dav2_ros.ros.qos import AUTO, BEST_EFFORT

DEFAULT_INPUT_SIZE = 518


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing checkpoint); the message says why."""


def settings_of(values: Mapping[str, Any]) -> NodeSettings:
    """The node's parameter values, every one checked once."""
    try:
        return settings_from_values(values)
    except ParameterError as exc:
        raise StartupError(str(exc)) from exc


@dataclass(frozen=True)
class ModelEngine:
    """The loaded model's facts and the engine that runs it."""

    meta: Any  # ModelMeta
    name: str  # as logs and /diagnostics name it
    input_size: int
    engine: Any  # EngineSupervisor
    stopping: threading.Event  # set to end the engine's back-off waits
    focal: Any  # dav2_ros.model.focal.FocalChoice: the metres' focal correction
    confidence: str = "off"  # where confidence comes from: head | flip | off


def model_engine(settings: NodeSettings, reporter: Any, strict: bool) -> ModelEngine:
    """Load ``model.*``, make the engine and build it on the warm-up frame. A failed
    warm-up is a StartupError when ``strict`` (a lifecycle configure fails), else it is
    reported and the engine's supervisor retries at the next frame as it always does."""
    from dav2_ros.engines import EngineSupervisor
    from dav2_ros.model.focal import choose_canonical_focal

    loaded = load_model(settings, reporter.info)
    confidence = confidence_source(settings, loaded.meta)
    input_size = settings.input_size or loaded.meta.input_size or DEFAULT_INPUT_SIZE
    focal = choose_canonical_focal(
        loaded.meta.depth_type,
        loaded.meta.canonical_focal_px,
        settings.focal_correction,
        settings.canonical_focal_px,
    )
    estimator = depth_estimator(
        settings, loaded.model, input_size, confidence, focal.canonical_focal_px
    )
    stopping = threading.Event()
    engine = EngineSupervisor(estimator, reporter, stopping)
    problem = warm_up(engine, settings.warmup_hw)
    if problem and strict:
        estimator.close()
        raise StartupError(problem)
    name = model_label(loaded.meta, settings.checkpoint)
    return ModelEngine(loaded.meta, name, input_size, engine, stopping, focal, confidence)


def confidence_source(settings: NodeSettings, meta: Any) -> str:
    """``model.confidence`` resolved for this checkpoint (head, flip or off); StartupError
    naming the parameter when it asks for a head the checkpoint lacks."""
    from dav2_ros.model.confidence import ConfidenceUnavailable, resolve_mode

    try:
        return resolve_mode(settings.confidence, meta.has_confidence_head, meta.source)
    except ConfidenceUnavailable as exc:
        raise StartupError(f"parameter 'model.confidence': {exc}") from exc


def first_reliability(choice: str) -> str:
    """The reliability an input subscription starts with: ``auto`` starts best effort,
    which hears any publisher, and re-matches once it sees what they offer."""
    return BEST_EFFORT if choice == AUTO else choice


def warm_up(engine: Any, image_hw: tuple[int, int]) -> str | None:
    """Build ``engine`` (an ``EngineSupervisor``) and run one frame of ``image_hw``, so
    the first camera frame of that aspect ratio is not slow; why it failed, or None."""
    if image_hw == (0, 0):
        return None
    grey = np.full((*image_hw, 3), 128, np.uint8)
    if engine.predict(grey, (0, 0)) is None:
        return f"the engine failed on its warm-up frame: {engine.state}"
    return None


def release_memory() -> None:
    """Give freed model and engine memory back to the system (cleanup): Python's
    collector, then glibc's heap trim (freed arenas otherwise stay in the RSS)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
    head = ", confidence head" if meta.has_confidence_head else ""
    return f"{meta.encoder} {meta.depth_type}{max_depth}{head} ({checkpoint or 'bundled default'})"


def depth_estimator(
    settings: NodeSettings,
    model: Any,
    input_size: int,
    confidence: str = "off",
    canonical_focal_px: float | None = None,
) -> Any:
    """The node's ``DepthEstimator`` (engines are built at the first frame; ``confidence``
    as resolved by ``confidence_source``), correcting metres to the camera's focal length
    with ``canonical_focal_px``; StartupError if ``engine.backend`` names no backend or
    loadable plugin."""
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.engines.base import SelfCheckSettings

    options: dict[str, Any] = {"threads": settings.threads} if settings.threads else {}
    if settings.calibration:  # int8 engines (openvino) calibrate on these images
        options["calibration"] = settings.calibration
    if settings.calibration_topic:
        options["calibration_topic"] = settings.calibration_topic
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
        return DepthEstimator(
            model, spec, input_size, confidence=confidence, canonical_focal_px=canonical_focal_px
        )
    except ValueError as exc:
        raise StartupError(f"parameter 'engine.backend': {exc}") from exc
