"""Depth models as the node runs them (``DepthEstimator`` and its engines), read as disparity.

Used by ``propose`` (the voting experts) and ``evaluate`` (the model under test):
any checkpoint ``load_model`` reads (a path or an ``hf:`` name in the Hugging Face
cache), any engine backend, one static engine per network input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dav2_ros.engines import DepthEstimator, EngineSpec
from dav2_ros.model.checkpoints import LoadedModel, load_model
from dav2_ros.model.hub import is_hub_name, parse_hub_name

BUNDLED = "bundled"  # stands for the bundled default model on the command line


class ExpertError(RuntimeError):
    """A model that cannot be loaded or run; the message names it."""


def as_disparity(values: np.ndarray, depth_type: str) -> np.ndarray:
    """Relative output as is; metres → 1/m (bigger = closer either way)."""
    if depth_type == "relative":
        return values
    return 1.0 / np.maximum(values, 1e-3)


@dataclass
class Expert:
    name: str
    checkpoint: str  # as given on the command line ("bundled" for the bundled model)
    loaded: LoadedModel
    input_size: int
    backend: str = "torch"
    device: str = "cpu"
    _estimator: DepthEstimator | None = field(default=None, repr=False)

    @property
    def depth_type(self) -> str:
        return self.loaded.meta.depth_type

    def describe(self) -> dict:
        meta = self.loaded.meta
        return {
            "name": self.name,
            "checkpoint": self.checkpoint,
            "source": meta.source,
            "encoder": meta.encoder,
            "depth_type": meta.depth_type,
            "input_size": self.input_size,
            "backend": self.backend,
        }

    def disparity(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB → HxW disparity at the image's resolution."""
        if self._estimator is None:  # one engine per network input size, kept for reuse
            spec = EngineSpec(backend=self.backend, device=self.device)
            self._estimator = DepthEstimator(
                self.loaded.model, spec, self.input_size, max_engines=None
            )
        try:
            self._estimator.engine_for(*rgb.shape[:2])
        except Exception as exc:  # noqa: BLE001 - any backend failure is this expert's
            msg = f"{self.name}: cannot build a {self.backend} engine: {exc}"
            raise ExpertError(msg) from None
        values = self._estimator.predict(rgb).values
        return as_disparity(values.astype(np.float32, copy=False), self.depth_type)

    def close(self) -> None:
        if self._estimator is not None:
            self._estimator.close()


def load_expert(
    checkpoint: str,
    input_size: int | None = None,
    backend: str = "torch",
    device: str = "cpu",
    loaded: LoadedModel | None = None,
) -> Expert:
    """``checkpoint`` (or ``"bundled"``) → an ``Expert``; input size from the file or 518.

    ``loaded``: the checkpoint already read (one file serving several input sizes).
    """
    path = None if checkpoint == BUNDLED else checkpoint
    if loaded is None:
        try:
            loaded = load_model(path)
        except (ValueError, OSError) as exc:
            raise ExpertError(f"expert {checkpoint!r} cannot be loaded: {exc}") from None
    size = input_size or loaded.meta.input_size or 518
    if size % 14:
        raise ExpertError(f"expert {checkpoint!r}: input size {size} is not a multiple of 14")
    if path is None:
        stem = "bundled"
    elif is_hub_name(checkpoint):  # hf:owner/repo[/file][@rev]: the file, else the repository
        name = parse_hub_name(checkpoint)
        stem = Path(name.filename or name.repo_id).stem
    else:
        stem = Path(checkpoint).stem
    return Expert(f"{stem}@{size}", checkpoint, loaded, size, backend, device)
