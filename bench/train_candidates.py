"""Student and teacher candidates: deployment speed and training step time, measured.

Issue 14 chooses the shipped student and its teacher by measurement on this machine:

* speed: ``dav2 bench``'s own path (ONNX Runtime, 2 threads, a 640×480 frame, random
  weights of the candidate's size: speed does not depend on the weights), total ms;
  the student must stay ≤ 66 ms (≥ 15 frames/s);
* training cost: seconds per optimizer step (batch ``--batch`` of ``--crop``² crops,
  forward + the real relative loss + backward + AdamW), with 1 and 2 torch threads.

Candidates are timed round-robin (one step / frame each in turn) so a load change on
the shared machine hits them alike; the 1-minute load average is recorded with every
number. Writes ``bench/results/train_candidates.json`` and ``.md``.

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


def markdown(result: dict) -> str:
    lines = [
        "| student candidate | network (640×480 →) | `dav2 bench` total ms (2 threads) | load |",
        "|---|---|---|---|",
    ]
    for candidate, rows in result["speed"].items():
        totals = ", ".join(f"{r['total_ms']:.1f}" for r in rows)
        loads = ", ".join(f"{r['load']:.1f}" for r in rows)
        hw = rows[0]["input_hw"]
        lines.append(f"| {candidate} | {hw[1]}×{hw[0]} | {totals} | {loads} |")
    lines += [
        "",
        "| encoder | params (M) | "
        + " | ".join(f"s/step, {t} thread(s)" for t in result["train"])
        + " | load |",
        "|---|---|" + "---|" * len(result["train"]) + "---|",
    ]
    encoders = next(iter(result["train"].values()))
    for encoder in encoders:
        cells = [f"{result['train'][t][encoder]['s_per_step']:.2f}" for t in result["train"]]
        loads = "/".join(f"{result['train'][t][encoder]['load']:.1f}" for t in result["train"])
        params = encoders[encoder]["params_m"]
        lines.append(f"| {encoder} | {params} | " + " | ".join(cells) + f" | {loads} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from dav2_ros.commands.bench import machine_info, versions

    scratch = (args.out or Path("/tmp")) / "train_candidates_bench"
    scratch.mkdir(parents=True, exist_ok=True)
    speed: dict[str, list[dict]] = {c: [] for c in args.speed}
    for _ in range(args.rounds):
        for candidate in args.speed:
            speed[candidate].append(
                bench_speed(candidate, scratch / f"{candidate.replace(':', '_')}.json")
            )
            print(candidate, speed[candidate][-1], flush=True)
    train = {}
    for threads in args.threads:
        train[threads] = train_steps(args.train, threads, args.crop, args.batch, args.steps)
        print(threads, json.dumps(train[threads]), flush=True)
    result = {
        "speed": speed,
        "train": train,
        "crop": args.crop,
        "batch": args.batch,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(markdown(result))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "train_candidates.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "train_candidates.md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
