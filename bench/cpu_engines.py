"""CPU engines against the official ``infer_image``, one run: time a frame, deviation, FLOP/s.

For each model (random ViT-S weights at input 518, the bundled student at its input
size), on the same 640×480 frame (the self-check's calibration frame), timed
round-robin after a warm-up, every runner doing the whole ``infer_image`` path
(preprocess → network → bilinear resize to 640×480):

* ``official infer_image``: the reference implementation's eager attention
  (transformers' port, ``attn_implementation="eager"``, the same weights; see
  ``reference_eager.py``) between this package's transforms, which are the official
  ones (``dav2_ros.model.transforms``);
* ONNX Runtime fp32 and int8, OpenVINO fp32, bf16 and int8;
* ``auto (default)``: what the node builds with its defaults (backend auto, precision
  auto, self-check on): the project's default engine choice, with the line saying why.

Deviation: the self-check's figure, relative L2 of the network output against fp32
torch on the calibration frame (for the reference: its own output against fp32 torch;
transformers interpolates the position embeddings slightly differently). FLOPs are
counted with ``torch.utils.flop_counter`` at the network size (plus the attention
products, which it does not see on CPU). Engines build in a fresh cache, so the
``auto`` row's set-up time is a first start; ``auto_warm_setup_s`` is a second one.

    python bench/cpu_engines.py [--iterations 10] [--threads 2] [--out bench/results/x.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _record import BenchRun, default_path, write_results
from reference_eager import reference_model
from tables import table_of
from torch.utils.flop_counter import FlopCounterMode
from train_step_time import attention_flops

from dav2_ros.commands.bench import INT8_ALIAS, engine_spec, synthetic_frame
from dav2_ros.engines import DepthEstimator, EngineSpec
from dav2_ros.engines.base import SelfCheckSettings
from dav2_ros.engines.self_check import calibration_batch, reference_output, relative_l2
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import model_input_size, prepare_input, resize_output

REFERENCE = "official infer_image"
DEFAULT = "auto (default)"
FRAME_HW = (480, 640)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="ViT-S; the student: x3")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["vits", "bundled"])
    parser.add_argument("--out", type=Path, default=None, help="JSON (default bench/results)")
    return parser.parse_args(argv)


def chosen_model(name: str) -> tuple[str, DepthAnythingV2, int]:
    if name == "bundled":
        loaded = load_model(None)
        return f"bundled {loaded.meta.encoder}", loaded.model.eval(), loaded.meta.input_size
    model = randomize_weights_(DepthAnythingV2(name, "relative"), seed=0).eval()
    return f"{name} random weights", model, 518


def network_flops(model: DepthAnythingV2, input_hw: tuple[int, int]) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, *input_hw))
    return counter.get_total_flops() + attention_flops(model.encoder_name, *input_hw, 1)


def engine_specs(threads: int, cache_dir: str) -> dict[str, EngineSpec]:
    check = SelfCheckSettings(allow_deviation=True)  # measure whatever it deviates
    specs = {
        DEFAULT: EngineSpec("auto", precision="auto", self_check=SelfCheckSettings()),
        "onnxruntime fp32": engine_spec("onnxruntime"),
        "onnxruntime int8": engine_spec(INT8_ALIAS),
        "openvino fp32": engine_spec("openvino", precision="fp32"),
        "openvino bf16": engine_spec("openvino", precision="bf16"),
        "openvino int8": engine_spec("openvino", precision="int8"),
    }
    out = {}
    for label, spec in specs.items():
        options = {**spec.options, "threads": threads}
        self_check = spec.self_check or check
        out[label] = EngineSpec(
            spec.backend, spec.device, spec.precision, options, Path(cache_dir), self_check
        )
    return out


class ReferenceRunner:
    """The official ``infer_image`` path around the reference's eager network."""

    def __init__(self, model: DepthAnythingV2, input_size: int) -> None:
        self.network = reference_model(model)
        self.input_size = input_size

    def network_output(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.network(pixel_values=torch.from_numpy(batch)).predicted_depth.numpy()

    def predict(self, image_rgb: np.ndarray) -> float:
        """Milliseconds for one frame, as ``infer_image`` spends them."""
        started = time.perf_counter()
        batch = prepare_input(image_rgb, self.input_size)
        raw = self.network_output(batch)[0]
        resize_output(raw, *image_rgb.shape[:2])
        return (time.perf_counter() - started) * 1e3


def run_model(name: str, args: argparse.Namespace, frame: np.ndarray) -> list[dict]:
    label, model, input_size = chosen_model(name)
    input_hw = model_input_size(*FRAME_HW, input_size)
    flops = network_flops(model, input_hw)
    batch = calibration_batch(input_hw)
    reference_fp32 = reference_output(model, batch)
    official = ReferenceRunner(model, input_size)
    official_deviation = relative_l2(official.network_output(batch), reference_fp32)
    with tempfile.TemporaryDirectory() as cache_dir:
        specs = engine_specs(args.threads, cache_dir)
        estimators, setup_s = {}, {}
        for runner, spec in specs.items():
            started = time.perf_counter()
            estimator = DepthEstimator(model, spec, input_size)
            estimator.engine_for(*FRAME_HW)
            setup_s[runner] = time.perf_counter() - started
            estimators[runner] = estimator
            print(f"  {label}: {runner} ready in {setup_s[runner]:.1f} s", file=sys.stderr)
        started = time.perf_counter()
        DepthEstimator(model, specs[DEFAULT], input_size).engine_for(*FRAME_HW)
        warm_setup_s = time.perf_counter() - started
        iterations = args.iterations * (1 if "vits" in label else 3)
        times: dict[str, list[float]] = {r: [] for r in [REFERENCE, *estimators]}
        for index in range(args.warmup + iterations):  # round-robin: load hits all alike
            reference_ms = official.predict(frame)
            spent = {REFERENCE: reference_ms}
            for runner, estimator in estimators.items():
                spent[runner] = estimator.predict(frame).total_ms
            if index >= args.warmup:
                for runner, ms in spent.items():
                    times[runner].append(ms)
        rows = []
        reference_ms = float(np.median(times[REFERENCE]))
        for runner, values in times.items():
            median_ms = float(np.median(values))
            row = {
                "model": label,
                "runner": runner,
                "network_hw": list(input_hw),
                "frame_ms": round(median_ms, 2),
                "frame_p90_ms": round(float(np.percentile(values, 90)), 2),
                "speedup_vs_official": round(reference_ms / median_ms, 2),
                "network_gflop": round(flops / 1e9, 2),
                "iterations": len(values),
            }
            if runner == REFERENCE:
                row.update(engine="transformers eager, torch fp32", deviation=official_deviation)
            else:
                engine = estimators[runner].engine
                row.update(
                    engine=engine.description,
                    deviation=engine.self_check.deviation if engine.self_check else 0.0,
                    self_check=engine.self_check.message if engine.self_check else "",
                    setup_s=round(setup_s[runner], 2),
                )
                if engine.auto_choice:
                    row.update(engine_choice=engine.auto_choice, auto_warm_setup_s=warm_setup_s)
            rows.append(row)
        for estimator in estimators.values():
            estimator.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    torch.set_num_threads(args.threads)
    frame = synthetic_frame(*FRAME_HW)
    rows = []
    for name in args.models:
        rows += run_model(name, args, frame)
    settings = {
        "threads": args.threads,
        "frame": "640x480, the self-check's calibration frame",
        "iterations": args.iterations,
        "warmup": args.warmup,
        "weights": "ViT-S: random (seed 0), the same for every runner; the bundled student",
    }
    document = run_record.record(rows, settings)
    print(table_of(document))
    write_results(args.out or default_path("cpu-engines"), document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
