"""Backend "auto" and precision "auto": the fastest engine that works here and passes
its self-check (tensorrt → openvino → onnxruntime → torch).

Candidates are tried fastest first, from a documented ordering rather than timed at
start-up: timing every candidate would build all of them (minutes for ViT-S on two
cores) and a shared machine's load would make the choice change from start to start.
The ordering is what ``bench/cpu_engines.py`` measures (docs/engines.md, "auto"):

- across backends ``AUTO_ORDER``: TensorRT where there is a CUDA GPU, then OpenVINO,
  ONNX Runtime, torch;
- within a backend, under ``precision: auto``, ``PRECISION_ORDER``: int8 before bf16
  before fp32 (each where the hardware has it; a backend refuses what it cannot run).

The first candidate that builds and passes its self-check is the fastest one that
passes. Lower precisions are only ever chosen through the self-check, so without it
``precision: auto`` means fp32.
"""

from __future__ import annotations

import dataclasses
import logging

from dav2_ros.engines.base import Engine, EngineConfig, register_backend
from dav2_ros.engines.create import create_engine
from dav2_ros.model import DepthAnythingV2

log = logging.getLogger(__name__)

AUTO_ORDER = ("tensorrt", "openvino", "onnxruntime", "torch")
# Fastest first. torch offers only fp32 here: its bf16 converts the model in place (no
# fp32 reference is left for the next candidate) and OpenVINO's bf16 comes first anyway.
PRECISION_ORDER = {
    "tensorrt": ("fp16", "fp32"),
    "openvino": ("int8", "bf16", "fp32"),
    "onnxruntime": ("int8", "fp32"),
    "torch": ("fp32",),
}


def candidates(config: EngineConfig) -> list[tuple[str, str]]:
    """(backend, precision) pairs to try for ``config``, fastest first."""
    backends = AUTO_ORDER if config.backend == "auto" else (config.backend,)
    if config.precision != "auto":
        return [(backend, config.precision) for backend in backends]
    if config.self_check is None:  # nothing would vouch for a lower precision
        return [(backend, "fp32") for backend in backends]
    return [(b, p) for b in backends for p in PRECISION_ORDER.get(b, ("fp32",))]


def resolve_engine(model: DepthAnythingV2, config: EngineConfig) -> Engine:
    """Try each candidate of ``candidates(config)``; log why each one was passed over.

    With ``config.self_check``, a candidate that fails its self-check is passed over like
    one that cannot be built (the reason carries the figure), whatever
    ``allow_deviation`` says: a better engine is next. The last candidate's error, if
    any, propagates (there ``allow_deviation`` applies).
    """
    tried = candidates(config)
    skipped = []
    check = config.self_check
    strict = dataclasses.replace(check, allow_deviation=False) if check else None
    for index, (backend, precision) in enumerate(tried):
        last = index == len(tried) - 1
        name = _name(config, backend, precision)
        candidate = dataclasses.replace(
            config, backend=backend, precision=precision, self_check=check if last else strict
        )
        if last:
            engine = create_engine(model, candidate)
            break
        try:
            engine = create_engine(model, candidate)
            break
        except Exception as exc:  # any failure means "not this one": fall through, say why
            reason = _reason(exc, config.precision == "auto" and precision != "fp32")
            skipped.append(f"{name} ({reason})")
            log.info("engine auto: skipping %s: %s", name, reason)
    engine.skipped_backends = tuple(skipped)
    engine.auto_choice = _choice(config, engine, tried)
    log.info("engine auto: %s", engine.auto_choice)
    return engine


def _name(config: EngineConfig, backend: str, precision: str) -> str:
    """``openvino int8`` under precision auto, ``openvino`` otherwise (as before)."""
    return f"{backend} {precision}" if config.precision == "auto" else backend


def _reason(exc: Exception, reduced_precision: bool) -> str:
    """Why a candidate was passed over. A reduced precision over the deviation limit is
    the expected outcome of trying it, said as such (not as wrong depth)."""
    result = getattr(exc, "result", None)
    if reduced_precision and result is not None:
        return (
            f"deviation {result.deviation:.2%} over the limit {result.max_deviation:.2%} "
            f"(relative L2 against fp32 torch on the calibration frame)"
        )
    return f"{type(exc).__name__}: {exc}"


def _choice(config: EngineConfig, engine: Engine, tried: list[tuple[str, str]]) -> str:
    """One line: what was chosen, why, and what was passed over."""
    order = " → ".join(_name(config, b, p) for b, p in tried)
    check = engine.self_check
    if check is not None:
        figure = (
            f"deviation {check.deviation:.2%} (limit {check.max_deviation:.2%}), first run on "
            f"the calibration frame {check.seconds * 1e3:.0f} ms"
        )
    elif engine.self_check_skipped:
        figure = engine.self_check_skipped
    elif config.self_check is None:
        figure = "no self-check configured"
    else:
        figure = "fp32 torch, the reference itself"
    passed_over = "; ".join(engine.skipped_backends)
    skipped = f"; passed over: {passed_over}" if passed_over else ""
    if config.precision == "auto" and config.self_check is None:
        skipped += "; precision auto without the self-check means fp32"
    return (
        f"using {engine.description}: the first of {order} (fastest first) to build and "
        f"pass its self-check ({figure}){skipped}"
    )


register_backend("auto", resolve_engine)
