"""Self-check deviation of each engine against the fp32 torch reference.

What ``engine.max_deviation`` is chosen from: for each model and engine, the relative
L2 deviation ``dav2_ros.engines.self_check`` computes on calibration frames rendered by
``dav2_ros.sim`` (a room, a street, clutter) and on ``dav2 bench``'s synthetic frame.
Models: the bundled metric student, and random weights of ViT-T / ViT-S (what a real
checkpoint of that size costs, with outputs that are not trivially smooth). Engines:
ONNX Runtime fp32 and int8, torch bf16 (CPU), and, on a GPU, torch fp16 and TensorRT
fp16. A wrong-scale engine (output x 1.3) is measured too, as what must be refused.

Usage: .venv/bin/python bench/self_check.py --out bench/results/self_check.json
(6-15 min on the shared 2-core VM, mostly ONNX export and int8 quantisation.)
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _record import BenchRun, write_results
from tables import table_of

from dav2_ros.commands.bench import synthetic_frame
from dav2_ros.engines import EngineConfig, EngineUnavailable, create_engine
from dav2_ros.engines.base import Engine
from dav2_ros.engines.self_check import check_engine, reference_output
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import model_input_size, prepare_input
from dav2_ros.sim import Intrinsics, make_scene, random_pose, render


class ScaledEngine(Engine):
    """An engine that returns the reference's output times ``factor``: wrong depth."""

    backend = "wrong-scale"

    def __init__(self, model: DepthAnythingV2, config: EngineConfig, factor: float) -> None:
        super().__init__(config)
        self.model, self.factor = model, factor

    def infer(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy() * self.factor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", default="640x480", help="camera frame WxH")
    parser.add_argument("--random-input-size", type=int, default=266, help="random models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    return parser.parse_args(argv)


def calibration_frames(width: int, height: int) -> dict[str, np.ndarray]:
    frames = {"synthetic": synthetic_frame(height, width)}
    intrinsics = Intrinsics.from_fov(width, height, 70.0)
    for seed, kind in enumerate(("room", "street", "clutter")):
        scene = make_scene(100 + seed, "a", kind)
        frames[kind] = render(
            scene, intrinsics, random_pose(scene, np.random.default_rng(seed))
        ).rgb
    return frames


def models(args: argparse.Namespace) -> list[tuple[str, DepthAnythingV2, int]]:
    bundled = load_model(None)
    found = [(f"bundled {bundled.meta.encoder}", bundled.model.eval(), bundled.meta.input_size)]
    # Random networks quantise unpredictably: two seeds of the same ViT-T show the spread.
    for encoder, depth_type, seed in (
        ("vitt", "relative", 0),
        ("vitt", "relative", 1),
        ("vits", "metric", 0),
    ):
        model = randomize_weights_(DepthAnythingV2(encoder, depth_type), seed=seed).eval()
        found.append((f"random {encoder} {depth_type} seed {seed}", model, args.random_input_size))
    return found


def engine_configs(input_hw: tuple[int, int], cache_dir: Path) -> dict[str, EngineConfig]:
    configs = {
        "onnxruntime fp32": EngineConfig("onnxruntime", input_hw=input_hw, cache_dir=cache_dir),
        "onnxruntime int8": EngineConfig(
            "onnxruntime", input_hw=input_hw, cache_dir=cache_dir, options={"quantize": "int8"}
        ),
        "torch cpu bf16": EngineConfig("torch", precision="bf16", input_hw=input_hw),
    }
    if torch.cuda.is_available():
        configs["torch cuda fp16"] = EngineConfig(
            "torch", device="cuda", precision="fp16", input_hw=input_hw
        )
        configs["tensorrt fp16"] = EngineConfig(
            "tensorrt", device="cuda", precision="fp16", input_hw=input_hw, cache_dir=cache_dir
        )
    return configs


def measure(args: argparse.Namespace, cache_dir: Path) -> list[dict]:
    width, height = (int(v) for v in args.image_size.split("x"))
    frames = calibration_frames(width, height)
    rows = []
    for label, model, input_size in models(args):
        input_hw = model_input_size(height, width, input_size)
        batches = {name: prepare_input(rgb, input_size) for name, rgb in frames.items()}
        # Before any engine: the torch backend converts the model it gets in place.
        references = {name: reference_output(model, batch) for name, batch in batches.items()}
        configs = engine_configs(input_hw, cache_dir)
        for engine_label, config in configs.items():
            # A private copy per engine, so a bf16 engine cannot alter the next one's weights.
            try:
                started = time.perf_counter()
                engine = create_engine(copy.deepcopy(model), config)
                build_s = time.perf_counter() - started
            except EngineUnavailable as exc:
                print(f"{label}: {engine_label} skipped ({exc})", file=sys.stderr)
                continue
            rows.append(_row(label, engine_label, engine, batches, references, build_s))
            engine.close()
        wrong = ScaledEngine(model, EngineConfig("torch", input_hw=input_hw), 1.3)
        rows.append(_row(label, "wrong scale (x1.3)", wrong, batches, references, 0.0))
    return rows


def _row(label, engine_label, engine, batches, references, build_s) -> dict:
    results = {
        name: check_engine(engine, batch, references[name]) for name, batch in batches.items()
    }
    row = {
        "model": label,
        "engine": engine_label,
        "description": engine.description,
        "input_hw": list(engine.input_hw),
        "build_s": round(build_s, 2),
        "deviation": {name: r.deviation for name, r in results.items()},
        "abs_rel": {name: r.abs_rel for name, r in results.items()},
    }
    row["max_deviation_seen"] = max(row["deviation"].values())
    print(
        f"{label:<22} {engine_label:<20} rel L2 max {row['max_deviation_seen']:.4%} "
        + " ".join(f"{n}={d:.4%}" for n, d in row["deviation"].items()),
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="dav2-self-check-") as temp:
        rows = measure(args, args.cache_dir or Path(temp))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    document = run_record.record(rows, settings)
    print(table_of(document))
    if args.out is not None:
        write_results(args.out, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
