"""Time preprocess / infer / postprocess of one engine on a synthetic camera frame.

Without ``--checkpoint`` the network has random weights of ``--encoder``'s size
(same FLOPs as the real model). Reports medians and p90 over ``--iterations``
frames after ``--warmup``; ``--json`` also records the machine and versions.
Several engines measured together are run round-robin (one frame each in turn),
so a load change on a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from dav2_ros.commands._model_args import add_model_arguments, build_model, parse_image_size

STAGES = ("preprocess", "infer", "postprocess", "total")
INT8_ALIAS = "onnxruntime-int8"  # = onnxruntime with dynamic int8 encoder linear layers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default="torch",
        help=f"torch | onnxruntime | {INT8_ALIAS} | openvino | tensorrt | auto (default torch)",
    )
    add_model_arguments(parser, random_by_default=True)
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help="network short side (default: the checkpoint's, 518 for random weights)",
    )
    parser.add_argument("--image-size", type=parse_image_size, default=(480, 640), metavar="WxH")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | gpu | npu (openvino)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16", "int8", "auto"),
        help="default fp32 (tensorrt: fp16); auto: the fastest within the self-check's limit",
    )
    parser.add_argument("--quantize", choices=("int8",), help="onnxruntime only")
    parser.add_argument("--compile", action="store_true", help="torch only: torch.compile")
    parser.add_argument("--cache-dir", help="engine cache (default $DAV2_CACHE_DIR or ~/.cache)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")


def engine_spec(
    label: str,
    device: str = "cpu",
    precision: str | None = None,
    quantize: str | None = None,
    threads: int | None = None,
    compile: bool = False,
    cache_dir: str | None = None,
):
    """The ``EngineSpec`` a backend label of this command names (``INT8_ALIAS`` is
    onnxruntime with an int8 encoder); the one mapping of these names."""
    from dav2_ros.engines import EngineSpec

    backend = label
    if label == INT8_ALIAS:
        backend, quantize = "onnxruntime", "int8"
    options: dict = {}
    if quantize:
        options["quantize"] = quantize
    if threads:
        options["threads"] = threads
    if compile:
        options["compile"] = True
    return EngineSpec(backend, device, precision, options, Path(cache_dir) if cache_dir else None)


def synthetic_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB frame with structure (gradients) and texture (noise): the
    engines' self-check calibration frame."""
    from dav2_ros.engines.self_check import calibration_frame

    return calibration_frame(height, width, seed)


def build_estimators(model, specs: dict, input_size: int, image_hw) -> dict:
    """Engines for ``{label: EngineSpec}`` on one model, built now for ``image_hw``
    frames: ``{label: (DepthEstimator, setup_s)}``."""
    from dav2_ros.engines import DepthEstimator

    built = {}
    for label, spec in specs.items():
        estimator = DepthEstimator(model, spec, input_size)
        started = time.perf_counter()
        estimator.engine_for(*image_hw)
        built[label] = (estimator, time.perf_counter() - started)
    return built


def measure(estimators: dict, image_rgb: np.ndarray, iterations: int, warmup: int) -> dict:
    """Run every estimator ``warmup + iterations`` times, round-robin; return per-stage
    millisecond lists ``{label: {stage: [ms, …]}}`` of the timed iterations."""
    if iterations < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}")
    times = {label: {stage: [] for stage in STAGES} for label in estimators}
    for index in range(warmup + iterations):
        for label, estimator in estimators.items():
            prediction = estimator.predict(image_rgb)
            if index < warmup:
                continue
            for stage in STAGES:
                times[label][stage].append(float(getattr(prediction, f"{stage}_ms")))
    return times


def summarise(stage_times: dict) -> dict:
    """``{stage}_ms`` medians and ``{stage}_p90_ms`` for each stage."""
    summary = {}
    for stage in STAGES:
        values = np.asarray(stage_times[stage])
        summary[f"{stage}_ms"] = round(float(np.median(values)), 3)
        summary[f"{stage}_p90_ms"] = round(float(np.percentile(values, 90)), 3)
    return summary


def machine_info() -> dict:
    """CPU model, cores, GPU (if any), load: what a reader needs to compare numbers."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "hostname": platform.node()}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return info


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in ("torch", "onnxruntime", "onnx", "torch-tensorrt", "tensorrt"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def record(label, estimator, setup_s, stage_times, chosen, args_like) -> dict:
    """The JSON record of one engine's run."""
    engine = estimator.engine
    identity = engine.identity
    return {
        **_self_check_fields(engine),
        "backend": label,
        "encoder": chosen.model.encoder_name,
        "input_size": estimator.input_size,
        "input_hw": list(engine.input_hw),
        "image_size": f"{args_like['image_hw'][1]}x{args_like['image_hw'][0]}",
        "device": identity.device,
        "precision": identity.precision,
        "engine": engine.description,
        "engine_options": dict(identity.options),
        "engine_setup_s": round(setup_s, 3),
        "weights": chosen.source,
        "iterations": len(stage_times["total"]),
        "warmup": args_like["warmup"],
        **summarise(stage_times),
        "machine": machine_info(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _self_check_fields(engine) -> dict:
    """The engine's self-check figure against fp32 torch (``self_check_deviation``), and
    what auto chose and why (``engine_choice``)."""
    choice = {"engine_choice": engine.auto_choice} if engine.auto_choice else {}
    if engine.self_check is not None:
        return {**engine.self_check.fields(), **choice}
    skipped = engine.self_check_skipped or "not needed (fp32 torch is the reference)"
    return {"self_check": skipped, **choice}


def format_table(result: dict) -> str:
    lines = [
        f"{result['engine']} | {result['encoder']} | network "
        f"{result['input_hw'][1]}x{result['input_hw'][0]} | {result['iterations']} iterations",
        f"{'stage':<12} {'median ms':>10} {'p90 ms':>10}",
    ]
    for stage in STAGES:
        median, p90 = result[f"{stage}_ms"], result[f"{stage}_p90_ms"]
        lines.append(f"{stage:<12} {median:>10.1f} {p90:>10.1f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.quantize and args.backend not in ("onnxruntime", INT8_ALIAS):
        raise ValueError(f"--quantize needs --backend onnxruntime, got {args.backend!r}")
    chosen = build_model(args, random_by_default=True)
    from dav2_ros.engines.base import SelfCheckSettings

    spec = engine_spec(
        args.backend,
        args.device,
        args.precision,
        args.quantize,
        args.threads,
        args.compile,
        args.cache_dir,
    )
    # Measure whatever it deviates, and record the figure beside the timings.
    spec = dataclasses.replace(spec, self_check=SelfCheckSettings(allow_deviation=True))
    input_size = args.input_size or chosen.input_size
    ((label, (estimator, setup_s)),) = build_estimators(
        chosen.model, {args.backend: spec}, input_size, args.image_size
    ).items()
    print(f"engine ready in {setup_s:.1f} s: {estimator.engine.description}", file=sys.stderr)
    if estimator.engine.self_check is not None:
        print(estimator.engine.self_check.message, file=sys.stderr)
    image = synthetic_frame(*args.image_size)
    times = measure({label: estimator}, image, args.iterations, args.warmup)
    result = record(
        label,
        estimator,
        setup_s,
        times[label],
        chosen,
        {"image_hw": args.image_size, "warmup": args.warmup},
    )
    print(format_table(result))
    if args.json:
        path = Path(args.json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    estimator.close()
    return 0
