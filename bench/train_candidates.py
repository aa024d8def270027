"""Student and teacher candidates: deployment speed and training step time, measured.

The bundled student and its teacher are chosen by measurement on the target machine:

* speed: ``dav2 bench``'s own path (ONNX Runtime, 2 threads, a 640×480 frame, random
  weights of the candidate's size: speed does not depend on the weights), total ms;
  the student must stay ≤ 66 ms (≥ 15 frames/s);
* training cost: seconds per optimizer step (batch ``--batch`` of ``--crop``² crops,
  forward + the real relative loss + backward + AdamW), with 1 and 2 torch threads.

Candidates are timed round-robin (one step / frame each in turn) so a load change on
the shared machine hits them alike; the 1-minute load average is recorded with every
number. Writes ``<out>/train_candidates.json`` and prints the tables.

Usage: .venv/bin/python bench/train_candidates.py --out bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _record import BenchRun, write_results
from tables import table_of

SPEED_CANDIDATES = ("vitt6:168", "vitt6:182", "vitt6:196", "vitt8:168", "vitt:168")
TRAIN_CANDIDATES = ("vitt6", "vitt8", "vitt", "vitm", "vits")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", nargs="*", default=list(SPEED_CANDIDATES), metavar="ENC:SIZE")
    parser.add_argument("--train", nargs="*", default=list(TRAIN_CANDIDATES), metavar="ENC")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--crop", type=int, default=168)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per candidate")
    parser.add_argument("--rounds", type=int, default=2, help="round-robin passes of dav2 bench")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def bench_speed(candidate: str, json_path: Path) -> dict:
    encoder, size = candidate.split(":")
    command = [
        sys.executable,
        "-m",
        "dav2_ros.cli",
        "bench",
        "--backend",
        "onnxruntime",
        "--encoder",
        encoder,
        "--depth-type",
        "metric",
        "--input-size",
        size,
        "--image-size",
        "640x480",
        "--threads",
        "2",
        "--iterations",
        "30",
        "--json",
        str(json_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result = json.loads(json_path.read_text())
    return {
        "total_ms": result["total_ms"],
        "infer_ms": result["infer_ms"],
        "input_hw": result["input_hw"],
        "load": os.getloadavg()[0],
    }


def train_steps(encoders: list[str], threads: int, crop: int, batch: int, steps: int) -> dict:
    """Median s/step of each encoder, timed round-robin in this process."""
    import torch
    from dav2_train.losses import relative_loss

    from dav2_ros.model import DepthAnythingV2

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    models = {e: DepthAnythingV2(e, "relative", 20.0) for e in encoders}
    optims = {e: torch.optim.AdamW(m.parameters(), 1e-4) for e, m in models.items()}
    image = torch.randn(batch, 3, crop, crop)
    target = torch.rand(batch, crop, crop) + 0.1
    mask = torch.ones(batch, crop, crop, dtype=torch.bool)
    times: dict[str, list[float]] = {e: [] for e in encoders}
    for step in range(steps + 1):  # the first step of each warms up
        for encoder, model in models.items():
            started = time.perf_counter()
            loss = relative_loss(model(image), target, mask, 2.0, 0.0).mean()
            optims[encoder].zero_grad()
            loss.backward()
            optims[encoder].step()
            if step:
                times[encoder].append(time.perf_counter() - started)
    params = {e: sum(p.numel() for p in m.parameters()) / 1e6 for e, m in models.items()}
    return {
        e: {
            "s_per_step": float(np.median(times[e])),
            "params_m": round(params[e], 2),
            "load": os.getloadavg()[0],
        }
        for e in encoders
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    scratch = (args.out or Path("/tmp")) / "train_candidates_bench"
    scratch.mkdir(parents=True, exist_ok=True)
    rows = []
    for round_index in range(args.rounds):
        for candidate in args.speed:
            speed = bench_speed(candidate, scratch / f"{candidate.replace(':', '_')}.json")
            rows.append({"kind": "speed", "candidate": candidate, "pass": round_index, **speed})
            print(candidate, speed, flush=True)
    for threads in args.threads:
        train = train_steps(args.train, threads, args.crop, args.batch, args.steps)
        for encoder, figures in train.items():
            rows.append({"kind": "train", "threads": threads, "encoder": encoder, **figures})
        print(threads, json.dumps(train), flush=True)
    settings = {"crop": args.crop, "batch": args.batch, "steps": args.steps}
    document = run_record.record(rows, settings)
    print(table_of(document))
    if args.out:
        write_results(args.out / "train_candidates.json", document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
