"""Fault-injection engine plugin for the robustness tests (not a test module).

Selected like any plugin: ``engine.backend: "faulty_engine:factory"`` with
``test/plugins`` on the node's PYTHONPATH. It is the real torch engine, made to fail
on demand through files in ``$DAV2_FAULT_DIR`` so a test can flip it mid-stream from
outside the node's process, without patching node internals:

- ``infer_fails``: while it exists, ``infer`` raises ``RuntimeError``;
- ``build_fails``: while it exists, building an engine raises ``RuntimeError``;
- ``delay_s``: a number of seconds every ``infer`` sleeps first (slow inference);
- ``wrong_depth``: while it exists, ``infer`` quietly returns wrong depth: the true
  output times the number in the file (default 1.5; ``nan`` gives all NaN), the way a
  miscompiled accelerated engine does (what the engine self-check must refuse).

Each call appends one line to ``$DAV2_FAULT_DIR/calls.log`` (``build``, ``infer ok``,
``infer wrong``, ``infer failed``) so a test can check the node's retry timing (back-off).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from dav2_ros.engines.base import Engine, EngineConfig
from dav2_ros.engines.torch_engine import TorchEngine
from dav2_ros.model import DepthAnythingV2

FAULT_DIR_ENV = "DAV2_FAULT_DIR"
INJECTED = "injected engine fault"


def _fault_dir() -> Path:
    return Path(os.environ.get(FAULT_DIR_ENV, "/nonexistent-dav2-fault-dir"))


def _record(event: str) -> None:
    with open(_fault_dir() / "calls.log", "a") as log:
        log.write(f"{time.monotonic():.3f} {event}\n")


class FaultyEngine(TorchEngine):
    backend = "faulty-torch"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        delay = _fault_dir() / "delay_s"
        if delay.exists():
            time.sleep(float(delay.read_text() or 0))
        if (_fault_dir() / "infer_fails").exists():
            _record("infer failed")
            raise RuntimeError(f"{INJECTED} in infer (remove infer_fails to heal)")
        output = super().infer(batch)
        wrong = _fault_dir() / "wrong_depth"
        if wrong.exists():
            _record("infer wrong")
            return output * np.float32(wrong.read_text().strip() or 1.5)
        _record("infer ok")
        return output


def factory(model: DepthAnythingV2, config: EngineConfig) -> Engine:
    _record("build")
    if (_fault_dir() / "build_fails").exists():
        raise RuntimeError(f"{INJECTED} while building (remove build_fails to heal)")
    return FaultyEngine(model, config)
