"""Backend "auto": the fastest engine that works here (tensorrt → onnxruntime → torch)."""

from __future__ import annotations

import dataclasses
import logging

from dav2_ros.engines.base import Engine, EngineConfig, register_backend
from dav2_ros.engines.create import create_engine
from dav2_ros.model import DepthAnythingV2

log = logging.getLogger(__name__)

AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")


def resolve_engine(model: DepthAnythingV2, config: EngineConfig) -> Engine:
    """Try each backend of ``AUTO_ORDER`` with ``config``; log why each one was skipped.

    With ``config.self_check``, a candidate that fails its self-check is skipped like one
    that cannot be built (the reason carries the figure), whatever ``allow_deviation``
    says: a better engine is next. torch is the last resort and its error, if any,
    propagates (there ``allow_deviation`` applies).
    """
    skipped = []
    check = config.self_check
    strict = dataclasses.replace(check, allow_deviation=False) if check else None
    for backend in AUTO_ORDER:
        last = backend == AUTO_ORDER[-1]
        self_check = check if last else strict
        candidate = dataclasses.replace(config, backend=backend, self_check=self_check)
        if last:
            engine = create_engine(model, candidate)
            break
        try:
            engine = create_engine(model, candidate)
            break
        except Exception as exc:  # any failure means "not this one": fall through, say why
            reason = f"{type(exc).__name__}: {exc}"
            skipped.append(f"{backend} ({reason})")
            log.info("engine auto: skipping %s: %s", backend, reason)
    log.info(
        "engine auto: using %s%s",
        engine.description,
        f" (skipped: {'; '.join(skipped)})" if skipped else "",
    )
    engine.skipped_backends = tuple(skipped)
    return engine


register_backend("auto", resolve_engine)
