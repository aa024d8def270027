"""The one interface every inference backend implements, and the backend registry.

An ``Engine`` maps a normalised ``1×3×h×w`` float32 batch (h, w multiples of 14,
fixed per engine: a camera has one resolution) to the float32 network outputs stacked
on the first axis: ``1×h×w`` depth, or ``2×h×w`` for a model with a confidence head
(plane 0 the depth, plane 1 its expected error). Pre/post-processing is not the
engine's job (see ``pipeline``). An engine that returns one plane has no confidence.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dav2_ros.model import DepthAnythingV2

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "auto")  # auto: see engines.auto
DEFAULT_PRECISION = {"tensorrt": "fp16"}  # every other backend: fp32


class EngineUnavailable(RuntimeError):
    """The backend cannot run here (missing package, no CUDA, …); the message says why."""


@dataclass(frozen=True)
class SelfCheckSettings:
    """Check every engine but fp32 torch against fp32 torch when it is built
    (``dav2_ros.engines.self_check``): ``engine.max_deviation``, ``engine.allow_deviation``."""

    max_deviation: float = 0.02  # relative L2; self_check.DEFAULT_MAX_DEVIATION
    allow_deviation: bool = False  # keep an engine that failed (said as an error)

    def __post_init__(self) -> None:
        if not self.max_deviation > 0:
            raise ValueError(f"max_deviation must be > 0, got {self.max_deviation}")


@dataclass(frozen=True)
class EngineConfig:
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    input_hw: tuple[int, int] = (518, 518)  # network input (multiples of 14)
    cache_dir: Path | None = None
    options: dict = field(default_factory=dict)  # backend-specific extras
    self_check: SelfCheckSettings | None = None  # None: build without checking

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        h, w = self.input_hw
        if h <= 0 or w <= 0 or h % 14 or w % 14:
            raise ValueError(f"input_hw must be positive multiples of 14, got {self.input_hw}")


@dataclass(frozen=True)
class EngineSpec:
    """An engine before its input size is known: ``config(input_hw)`` is what gets built
    for one network input size (a camera has one; ``DepthEstimator`` builds per size)."""

    backend: str = "torch"
    device: str = "cpu"
    precision: str | None = None  # None: the backend's default (tensorrt fp16, else fp32)
    options: Mapping[str, Any] = field(default_factory=dict)  # backend-specific extras
    cache_dir: Path | None = None
    self_check: SelfCheckSettings | None = None  # None: engines are built unchecked

    def config(self, input_hw: tuple[int, int]) -> EngineConfig:
        precision = self.precision or DEFAULT_PRECISION.get(self.backend, "fp32")
        return EngineConfig(
            backend=self.backend,
            device=self.device,
            precision=precision,
            input_hw=tuple(input_hw),
            cache_dir=self.cache_dir,
            options=dict(self.options),
            self_check=self.self_check,
        )


@dataclass(frozen=True)
class EngineIdentity:
    """What was built: enough to build the same engine again, field by field."""

    backend: str
    device: str
    precision: str
    input_hw: tuple[int, int]  # network input (height, width)
    options: Mapping[str, Any]  # backend settings in effect (threads, quantize, provider, …)

    @property
    def description(self) -> str:
        """One line for logs: ``onnxruntime cpu fp32 518x686 (fuse=True, threads=2)``."""
        h, w = self.input_hw
        extras = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.backend} {self.device} {self.precision} {h}x{w}" + (
            f" ({extras})" if extras else ""
        )

    def fields(self) -> dict[str, str]:
        """Diagnostic key/values, one per part (options as JSON)."""
        return {
            "engine_backend": self.backend,
            "engine_device": self.device,
            "engine_precision": self.precision,
            "engine_input_height": str(self.input_hw[0]),
            "engine_input_width": str(self.input_hw[1]),
            "engine_options": json.dumps(dict(self.options), sort_keys=True, default=str),
        }

    @classmethod
    def from_fields(cls, values: Mapping[str, str]) -> EngineIdentity | None:
        """The identity ``fields`` wrote (e.g. read back from /diagnostics), None if absent."""
        if not values.get("engine_backend"):
            return None
        return cls(
            backend=values["engine_backend"],
            device=values["engine_device"],
            precision=values["engine_precision"],
            input_hw=(int(values["engine_input_height"]), int(values["engine_input_width"])),
            options=json.loads(values.get("engine_options") or "{}"),
        )

    def spec(self) -> EngineSpec:
        """The spec that builds this engine again (for its input size)."""
        return EngineSpec(self.backend, self.device, self.precision, dict(self.options))


class Engine(ABC):
    backend: str = "abstract"
    # Backends tried and passed over before this one ("auto"), each "name (why)".
    skipped_backends: tuple[str, ...] = ()
    # What "auto" (backend or precision) chose and why, one line; "" when not chosen.
    auto_choice: str = ""
    # The self-check's verdict on this engine (a ``SelfCheckResult``), or why there is none.
    self_check: Any = None
    self_check_skipped: str = ""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.config.input_hw

    def options_in_effect(self) -> dict[str, Any]:
        """Backend settings that define this engine; subclasses add their resolved ones."""
        return dict(self.config.options)

    @property
    def identity(self) -> EngineIdentity:
        c = self.config
        return EngineIdentity(
            self.backend, c.device, c.precision, tuple(c.input_hw), self.options_in_effect()
        )

    @property
    def description(self) -> str:
        return self.identity.description

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """``1×3×h×w`` float32 → ``1×h×w`` float32 (disparity or metres), or ``2×h×w`` with
        the expected error as plane 1 (a model with a confidence head)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions or device memory."""


EngineFactory = Callable[[DepthAnythingV2, EngineConfig], Engine]
_BACKENDS: dict[str, EngineFactory] = {}


def register_backend(name: str, factory: EngineFactory) -> None:
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def resolve_backend(backend: str) -> EngineFactory:
    """The factory of ``backend``; ValueError naming the known ones if there is none."""
    if backend in _BACKENDS:
        return _BACKENDS[backend]
    if ":" in backend:
        module_name, _, attr = backend.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"engine plugin {backend!r} cannot be loaded: {exc}") from exc
    raise ValueError(
        f"unknown engine backend {backend!r}; known: {', '.join(backend_names())} "
        "(or 'package.module:factory' for a plugin)"
    )
