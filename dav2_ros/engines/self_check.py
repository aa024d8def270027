"""Engine self-check: a built engine against an fp32 torch reference of the same weights.

Accelerated engines can quietly return wrong depth (TensorRT FP16 on ViTs on some
JetPack builds: wrong values, a scale that wanders). So every engine other than fp32
eager torch (which *is* the reference) runs one calibration frame beside the fp32
model, and a deviation above ``max_deviation`` is an error the caller acts on (``auto``
moves on to the next backend; an explicit backend refuses to start unless allowed).

**The figure: relative L2 of the network outputs**, ``||engine - reference|| /
||reference||`` over the whole ``1 x h x w`` map (metres or disparity alike).

- One scale-free number: the same limit serves metric and relative models, any max depth.
- A wrong global scale counts in full (output x 1.3 reads 0.30), the failure that
  matters for a robot, while quantisation noise spread over pixels counts little.
- A median of per-pixel ratios would ignore a broken region covering half the image, and
  per-pixel ratios explode where the reference is near zero (a relative model's sky); the
  mean relative error (``abs_rel``, where the reference is not ~0) is reported beside it
  for information only.
- NaN or Inf anywhere, a wrong shape, or an exception make it infinite: refused.

**The confidence output** of a model with a confidence head is checked the same way,
apart: the relative L2 of the confidence maps (``exp(-expected error)``, in [0, 1]) against
the reference's, with the same limit. An engine passes only if both do: a wrong
confidence would let a costmap trust wrong depth. The depth figure is the one reported
as the deviation; the confidence's is reported beside it.

It is also the figure ``bench/self_check.py`` records for every engine and model.

**The default limit, 0.02 (2 %)**, is what a reduced precision may cost: ``auto`` may
choose bf16 or int8 only within it, so it is the bound on what the project runs by
default. One limit for every engine, not one per precision: fp32 engines (ONNX Runtime,
OpenVINO) deviate ~1e-6, so only the reduced precisions ever come near it. The figures
(``bench/results/self_check.json`` and ``cpu-engines-*.json``, rendered in
docs/engines.md): the trained model's engines (int8 and bf16 OpenVINO, int8 ONNX
Runtime, bf16 torch) stay below 1 %; random ViT-S networks (which quantise less
predictably than trained ones) come within it with OpenVINO's int8 recipe; an engine
whose depth scale is off by more than 2 % (8 cm at 4 m) is refused.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dav2_ros.engines.base import Engine, EngineConfig
from dav2_ros.engines.torch_engine import stacked_planes
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.confidence import confidence_from_error
from dav2_ros.model.dpt import DepthAndError
from dav2_ros.model.transforms import prepare_input

DEFAULT_MAX_DEVIATION = 0.02
REFERENCE = "torch cpu fp32"


def needs_self_check(config: EngineConfig) -> bool:
    """Everything except eager fp32 torch (the reference itself) is checked."""
    is_reference = (
        config.backend == "torch"
        and config.precision == "fp32"
        and not config.options.get("compile")
    )
    return not is_reference


def calibration_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB frame with structure (gradients) and texture (noise): the
    self-check's calibration frame, and ``dav2 bench``'s synthetic frame."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xs / width, ys / height, 0.5 + 0.5 * np.sin(xs / 17.0 + ys / 23.0)], -1)
    noisy = base * 200 + rng.normal(0, 20, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def calibration_batch(input_hw: tuple[int, int]) -> np.ndarray:
    """The normalised ``1 x 3 x h x w`` batch of the calibration frame at ``input_hw``."""
    height, width = input_hw
    return prepare_input(calibration_frame(height, width), min(height, width))


def reference_output(model: DepthAnythingV2, batch: np.ndarray) -> np.ndarray:
    """The fp32 eager torch output (``1 x h x w``, or ``2 x h x w`` with a confidence head:
    ``Engine.infer``'s planes) of ``model`` on a CPU copy of it.

    Call it before building the engine under test: the torch backend converts the model
    it is given in place (bf16, CUDA), after which its fp32 weights are gone.
    """
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(
            f"the reference needs the model's fp32 weights, but they are "
            f"{', '.join(sorted(str(d) for d in dtypes))}: compute it before building an engine "
            "that converts the model in place"
        )
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    reference = model if on_cpu else copy.deepcopy(model).to("cpu")
    reference = DepthAndError(reference) if reference.has_confidence_head else reference
    with torch.inference_mode():
        return stacked_planes(reference.eval()(torch.from_numpy(batch))).numpy()


def relative_l2(output: np.ndarray, reference: np.ndarray) -> float:
    """``||output - reference|| / ||reference||``; inf for a non-finite output."""
    output = np.asarray(output, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if output.shape != reference.shape or not np.isfinite(output).all():
        return float("inf")
    return float(np.linalg.norm(output - reference) / max(np.linalg.norm(reference), 1e-12))


def mean_relative_error(output: np.ndarray, reference: np.ndarray) -> float:
    """Mean ``|output - reference| / |reference|`` where the reference is not ~0."""
    output = np.asarray(output, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if output.shape != reference.shape or not np.isfinite(output).all():
        return float("inf")
    significant = np.abs(reference) > 1e-3 * np.abs(reference).max()
    return float(np.mean(np.abs(output - reference)[significant] / np.abs(reference)[significant]))


@dataclass(frozen=True)
class SelfCheckResult:
    engine: str  # description of the engine under test
    deviation: float  # relative L2 vs. the reference; inf when unusable
    abs_rel: float  # mean relative error, for information
    max_deviation: float
    passed: bool
    message: str  # one line for the log and /diagnostics
    seconds: float  # engine inference on the calibration frame
    raised: str = ""  # the exception the engine raised on the calibration frame, if it did
    # relative L2 of the confidence maps; None: the model has no confidence head
    confidence_deviation: float | None = None

    def fields(self) -> dict[str, str]:
        """Key/values for /diagnostics and bench JSON."""
        values = {
            "self_check": "passed" if self.passed else "failed",
            "self_check_deviation": f"{self.deviation:.6g}",
            "self_check_max_deviation": f"{self.max_deviation:.6g}",
            "self_check_abs_rel": f"{self.abs_rel:.6g}",
            "self_check_reference": REFERENCE,
        }
        if self.confidence_deviation is not None:
            values["self_check_confidence_deviation"] = f"{self.confidence_deviation:.6g}"
        return values


def check_engine(
    engine: Engine,
    batch: np.ndarray,
    reference: np.ndarray,
    max_deviation: float = DEFAULT_MAX_DEVIATION,
) -> SelfCheckResult:
    """Run ``engine`` on ``batch`` (the calibration frame, ``1 x 3 x h x w``) and compare
    with ``reference`` (``reference_output`` of the same batch). Never raises for a bad
    engine: an exception or a wrong shape is a failed check that says so."""
    if not max_deviation > 0:
        raise ValueError(f"max_deviation must be > 0, got {max_deviation}")
    started = time.perf_counter()
    raised = ""
    try:
        output = engine.infer(batch)
        problem = _shape_or_value_problem(output, reference)
    except Exception as exc:  # a broken engine is a failed check, not a crash
        raised = f"{type(exc).__name__}: {exc}"
        output, problem = None, f"it failed on the calibration frame ({raised})"
    seconds = time.perf_counter() - started
    deviation = relative_l2(output[:1], reference[:1]) if problem is None else float("inf")
    abs_rel = mean_relative_error(output[:1], reference[:1]) if problem is None else float("inf")
    confidence = None
    if reference.shape[0] > 1:  # the confidence head's plane, compared as confidence
        confidence = float("inf")
        if problem is None:
            confidence = relative_l2(
                confidence_from_error(output[1:]), confidence_from_error(reference[1:])
            )
    passed = deviation <= max_deviation and (confidence is None or confidence <= max_deviation)
    name = engine.description
    beside = "" if confidence is None else f", its confidence {confidence:.2%}"
    if passed:
        message = (
            f"self-check passed: {name} deviates {deviation:.2%} (relative L2) from "
            f"{REFERENCE} on the calibration frame{beside}; limit {max_deviation:.2%}"
        )
    else:
        what = problem or (f"it deviates {deviation:.2%} (relative L2) from {REFERENCE}{beside}")
        wrong = "depth" if problem or deviation > max_deviation else "confidence"
        message = (
            f"self-check FAILED: {name} returns wrong {wrong}: {what} on the calibration frame; "
            f"limit {max_deviation:.2%}. Use another backend or precision, or raise "
            "engine.max_deviation / set engine.allow_deviation to accept it"
        )
    return SelfCheckResult(
        name, deviation, abs_rel, max_deviation, passed, message, seconds, raised, confidence
    )


class SelfCheckFailed(RuntimeError):
    """An engine refused by its self-check; ``result`` holds the figure."""

    def __init__(self, result: SelfCheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def build_checked(
    factory: Callable[[DepthAnythingV2, EngineConfig], Engine],
    model: DepthAnythingV2,
    config: EngineConfig,
) -> Engine:
    """``factory(model, config)``, checked against fp32 torch on the calibration frame at
    ``config.input_hw`` when ``needs_self_check``; the verdict is ``engine.self_check``.

    A failed engine is closed and ``SelfCheckFailed`` raised, unless
    ``config.self_check.allow_deviation`` (then it is kept with the failed verdict). An
    engine that raises on the calibration frame is a failed build (RuntimeError, which a
    caller may retry), not wrong depth.
    When the model's weights are no longer fp32 (an engine converted them in place) there
    is no reference: the engine is kept and ``engine.self_check_skipped`` says why.
    """
    settings = config.self_check
    if settings is None or not needs_self_check(config):
        return factory(model, config)
    batch = calibration_batch(config.input_hw)
    try:
        reference = reference_output(model, batch)  # before the engine may convert the model
    except ValueError as exc:
        engine = factory(model, config)
        engine.self_check_skipped = f"self-check skipped: {exc}"
        return engine
    engine = factory(model, config)
    result = check_engine(engine, batch, reference, settings.max_deviation)
    if result.raised:
        engine.close()
        raise RuntimeError(f"{result.engine} failed on its calibration frame: {result.raised}")
    engine.self_check = result
    if not result.passed and not settings.allow_deviation:
        engine.close()
        raise SelfCheckFailed(result)
    return engine


def _shape_or_value_problem(output: np.ndarray, reference: np.ndarray) -> str | None:
    output = np.asarray(output)
    if output.shape != reference.shape:
        planes = " (depth and expected error)" if reference.shape[0] > 1 else ""
        return f"it returned shape {output.shape}, expected {reference.shape}{planes}"
    bad = int(np.size(output) - np.isfinite(output).sum())
    if bad:
        return f"it returned {bad} NaN/Inf values of {output.size}"
    return None
