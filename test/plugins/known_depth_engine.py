"""Engine plugin with known geometry for the scan and lens tests (not a test module).

Selected like any plugin: ``engine.backend: "known_depth_engine:factory"`` with
``test/plugins`` on the node's PYTHONPATH (and ``engine.self_check: false``: it is wrong
depth on purpose). Whatever the image, it returns a wall facing the camera at
``WALL_M`` metres along the optical axis, with column bands the scan must handle:
NaN (no depth), +Inf (becomes NaN in ``depth``), beyond ``scan.range_max`` and short of
``scan.range_min`` (dropped: NaN) and a nearer box (the shortest range of its column).
While ``$DAV2_FAULT_DIR/scale`` exists, the depth is multiplied by the number in it (a
model whose scale jumps, for the temporal stabiliser).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dav2_ros.engines.base import Engine, EngineConfig
from dav2_ros.model import DepthAnythingV2

WALL_M = 2.0
# (first column, last column + 1) as fractions of the width, and the depth there.
BANDS = (
    ((0.10, 0.15), float("nan")),
    ((0.25, 0.30), float("inf")),
    ((0.40, 0.45), 25.0),  # beyond scan.range_max 10 m
    ((0.55, 0.60), 0.2),  # short of scan.range_min 0.45 m
    ((0.70, 0.80), 1.25),  # a box in front of the wall
)


def known_depth_m(height: int, width: int) -> np.ndarray:
    """The HxW depth this engine returns for a network input of that size."""
    depth_m = np.full((height, width), WALL_M, dtype=np.float32)
    for (start, stop), value in BANDS:
        depth_m[:, round(start * width) : round(stop * width)] = value
    return depth_m


class KnownDepthEngine(Engine):
    backend = "known-depth"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        depth_m = known_depth_m(*batch.shape[2:])[None]
        scale = Path(os.environ.get("DAV2_FAULT_DIR", "/nonexistent-dav2-fault-dir")) / "scale"
        return depth_m * np.float32(scale.read_text()) if scale.exists() else depth_m


def factory(model: DepthAnythingV2, config: EngineConfig) -> Engine:
    return KnownDepthEngine(config)
