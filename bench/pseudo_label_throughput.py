"""Pseudo-labelling throughput on the CPU: batched vs one image at a time.

The teacher (random weights; speed does not depend on them) labels the same 640×480
frames through ``dav2_train.pseudo_label.predict_batch``, the function the step uses:
once one frame per forward pass, once ``--batch`` frames per pass (frames of one
camera share the network shape, so a recording batches fully). Round-robin passes,
median images/s per mode; labels of both modes are compared (same numbers up to
float rounding).

Usage: .venv/bin/python bench/pseudo_label_throughput.py [--encoder vits]
       [--input-size 266] [--images 16] [--batch 8] [--threads 2] [--rounds 3]
       [--out bench/results/pseudo_label_throughput.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _record import BenchRun, write_results
from dav2_train.pseudo_label import predict_batch
from tables import table_of

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import model_input_size


def label_all(model, frames: list[np.ndarray], input_size: int, batch: int) -> list[np.ndarray]:
    labels = []
    for start in range(0, len(frames), batch):
        labels += predict_batch(
            model, frames[start : start + batch], input_size, torch.device("cpu")
        )
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--input-size", type=int, default=266)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/pseudo_label_throughput.json")
    )
    args = parser.parse_args(argv)
    run_record = BenchRun(__file__, argv)
    torch.set_num_threads(args.threads)
    model = randomize_weights_(DepthAnythingV2(args.encoder, "relative"), seed=0).eval()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(args.images)]
    label_all(model, frames[:2], args.input_size, 2)  # warm-up
    seconds: dict[str, list[float]] = {"one_by_one": [], "batched": []}
    outputs = {}
    for _ in range(args.rounds):
        for mode, batch in (("one_by_one", 1), ("batched", args.batch)):
            started = time.perf_counter()
            outputs[mode] = label_all(model, frames, args.input_size, batch)
            seconds[mode].append(time.perf_counter() - started)
    difference = max(
        float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12))
        for a, b in zip(outputs["one_by_one"], outputs["batched"], strict=True)
    )
    rows = [
        {
            "mode": mode,
            "batch": 1 if mode == "one_by_one" else args.batch,
            "seconds_per_round": [round(s, 2) for s in values],
            "images_per_s": round(args.images / float(np.median(values)), 2),
        }
        for mode, values in seconds.items()
    ]
    settings = {
        "encoder": args.encoder,
        "input_size": args.input_size,
        "network_input": list(model_input_size(480, 640, args.input_size)),
        "frames": f"{args.images} x 640x480",
        "threads": args.threads,
        "rounds": args.rounds,
    }
    summary = {"max_relative_difference": difference}
    document = run_record.record(rows, settings, summary)
    write_results(args.out, document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
