"""What confidence costs per frame: the head, and the flip disagreement's second pass.

One 640x480 frame (``dav2 bench``'s synthetic frame) through ``DepthEstimator.predict``,
the node's path (preprocess, engine, resize to the camera's size, confidence), on the
same engine backend and thread count the node uses on a CPU:

- ``without head, off``: the checkpoint without its confidence head (the baseline);
- ``without head, flip``: the same model plus a second pass on the mirrored image
  (``model.confidence: flip``, what official checkpoints can have);
- ``with head, off`` and ``with head, head``: the checkpoint with its head, confidence
  skipped (no subscriber) and made (the head's second graph output, resized and mapped).

The cases alternate round by round (``--rounds``), so a change of machine load falls on
all of them; medians and p90 over every round's frames, and each case's ratio to the
baseline's median.

Usage: nice .venv/bin/python bench/confidence_cost.py [--checkpoint FILE] [--backend
onnxruntime] [--threads 2] [--rounds 5] [--frames 20] [--out bench/results/confidence_cost.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _record import BenchRun, write_results
from tables import table_of

from dav2_ros.commands.bench import synthetic_frame
from dav2_ros.engines import DepthEstimator, EngineSpec
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", default="640x480", help="camera frame WxH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=20, help="timed frames per case and round")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON) to write")
    return parser.parse_args(argv)


def without_head(model: DepthAnythingV2) -> DepthAnythingV2:
    """The same weights without the confidence head (the model before it had one)."""
    plain = DepthAnythingV2(model.spec, model.depth_type, model.max_depth).eval()
    state = {k: v for k, v in model.state_dict().items() if k in plain.state_dict()}
    plain.load_state_dict(state)
    return plain


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = BenchRun(__file__, argv)
    loaded = load_model(args.checkpoint)
    width, height = (int(v) for v in args.image_size.lower().split("x"))
    frame = synthetic_frame(height, width)
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="confidence-cost-"))
    spec = EngineSpec(args.backend, options={"threads": args.threads}, cache_dir=cache)
    size = loaded.meta.input_size
    plain = without_head(loaded.model)
    cases = {
        "without head, off": (DepthEstimator(plain, spec, size, confidence="flip"), "off"),
        "without head, flip": (DepthEstimator(plain, spec, size, confidence="flip"), "flip"),
    }
    if loaded.model.has_confidence_head:
        headed = DepthEstimator(loaded.model, spec, size, confidence="head")
        cases["with head, off"] = (headed, "off")
        cases["with head, head"] = (headed, "head")
    for estimator, mode in cases.values():  # build every engine and warm it up
        for _ in range(3):
            estimator.predict(frame, confidence=mode)
    times: dict[str, list[float]] = {name: [] for name in cases}
    infer: dict[str, list[float]] = {name: [] for name in cases}
    for round_index in range(args.rounds):
        for name, (estimator, mode) in cases.items():
            for _ in range(args.frames):
                started = time.perf_counter()
                prediction = estimator.predict(frame, confidence=mode)
                times[name].append((time.perf_counter() - started) * 1e3)
                infer[name].append(prediction.infer_ms)
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    baseline = float(np.median(times["without head, off"]))
    rows = [
        {
            "case": name,
            "confidence": mode,
            "median_ms": float(np.median(times[name])),
            "p90_ms": float(np.percentile(times[name], 90)),
            "infer_median_ms": float(np.median(infer[name])),
            "ratio_to_baseline": float(np.median(times[name])) / baseline,
            "frames": len(times[name]),
        }
        for name, (_, mode) in cases.items()
    ]
    engine = cases["without head, off"][0].engine
    settings = {
        "checkpoint": loaded.meta.source,
        "encoder": loaded.meta.encoder,
        "input_size": size,
        "image_size": args.image_size,
        "backend": args.backend,
        "engine": engine.description if engine else args.backend,
        "threads": args.threads,
        "rounds": args.rounds,
        "frames_per_round": args.frames,
    }
    document = run.record(rows, settings)
    table = table_of(document)
    print(table)
    if args.out:
        write_results(args.out, document, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
