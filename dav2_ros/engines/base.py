"""The one interface every inference backend implements, and the backend registry.

An ``Engine`` maps a normalised ``1×3×h×w`` float32 batch (h, w multiples of 14,
fixed per engine: a camera has one resolution) to a ``1×h×w`` float32 network
output. Pre/post-processing is not the engine's job (see ``pipeline``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dav2_ros.model import DepthAnythingV2

PRECISIONS = ("fp32", "fp16", "bf16")


class EngineUnavailable(RuntimeError):
    """The backend cannot run here (missing package, no CUDA, …); the message says why."""


@dataclass(frozen=True)
class EngineConfig:
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    input_hw: tuple[int, int] = (518, 518)  # network input (multiples of 14)
    cache_dir: Path | None = None
    options: dict = field(default_factory=dict)  # backend-specific extras

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        h, w = self.input_hw
        if h <= 0 or w <= 0 or h % 14 or w % 14:
            raise ValueError(f"input_hw must be positive multiples of 14, got {self.input_hw}")


class Engine(ABC):
    backend: str = "abstract"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.config.input_hw

    @property
    def description(self) -> str:
        c = self.config
        return f"{self.backend} {c.device} {c.precision} {c.input_hw[0]}x{c.input_hw[1]}"

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """``1×3×h×w`` float32 → ``1×h×w`` float32 (disparity or metres)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions or device memory."""


EngineFactory = Callable[[DepthAnythingV2, EngineConfig], Engine]
_BACKENDS: dict[str, EngineFactory] = {}


def register_backend(name: str, factory: EngineFactory) -> None:
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def create_engine(model: DepthAnythingV2, config: EngineConfig) -> Engine:
    """Build the engine ``config.backend`` names.

    ``backend`` is a registered name, or ``"package.module:factory"`` for a plugin
    (imported, then called like a registered factory).
    """
    factory = _resolve(config.backend)
    return factory(model, config)


def _resolve(backend: str) -> EngineFactory:
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
