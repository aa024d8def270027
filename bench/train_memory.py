"""Training memory while the unlabelled set grows: the streaming loader holds one shard.

For each set size N: write N pseudo-labelled samples (96×128 images, fp16 labels, as
``pseudo-label`` writes them) in WebDataset shards of 100, then run ``dav2-train
student`` (vitt6, input 56, batch 8, 2 DataLoader workers, 1 thread) for ``--steps``
steps in a subprocess, sampling every 0.2 s the RSS of the training process and the
PSS (proportional set size: shared pages counted once) of it plus its loader workers.
Reported: the peaks, and next to them what a loader that concatenates every shard of
the split in RAM (in every rank) would hold for the same set.

Usage: .venv/bin/python bench/train_memory.py [--sizes 1000 10000] [--steps 40]
       [--out bench/results/train_memory.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import yaml
from _record import BenchRun, write_results
from dav2_train.shards import Sample, ShardWriter, sample_key, shard_name, write_manifest
from tables import table_of

HEIGHT, WIDTH, SHARD = 96, 128, 100


def write_set(directory: Path, count: int, seed: int = 0) -> int:
    """``count`` samples of smooth random images and labels; returns bytes on disk."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for shard in range(-(-count // SHARD)):
        with ShardWriter(directory / shard_name(shard), "disparity") as writer:
            for i in range(shard * SHARD, min(count, (shard + 1) * SHARD)):
                small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
                rgb = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
                label = cv2.resize(rng.random((12, 16), dtype=np.float32) + 0.1, (WIDTH, HEIGHT))
                writer.write(Sample(sample_key(shard, i), rgb, label))
    write_manifest(directory, "disparity")
    return sum(p.stat().st_size for p in directory.iterdir())


def tree_memory(process: psutil.Process) -> tuple[int, int]:
    """(RSS of the process, PSS of it and its children) in bytes."""
    rss = process.memory_info().rss
    pss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            pss += member.memory_full_info().pss
        except psutil.Error:
            continue
    return rss, pss


def train_and_sample(run_dir: Path, split: str, steps: int) -> dict:
    section = {
        "command": "student",
        "encoder": "vitt6",
        "input_size": 56,
        "data": split,
        "steps": steps,
        "batch_size": 8,
        "workers": 2,
        "warmup_steps": 5,
        "checkpoint_every": steps,
    }
    config = {
        "run_dir": str(run_dir),
        "max_depth_m": 20.0,
        "seed": 0,
        "device": "cpu",
        "threads": 1,
        f"train_{split}": section,
    }
    config_path = run_dir / f"{split}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [
        str(Path(sys.executable).parent / "dav2-train"),
        "student",
        "--config",
        str(config_path),
        "--section",
        f"train_{split}",
    ]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(child.pid)
    samples = []
    while child.poll() is None:
        try:
            samples.append(tree_memory(watched))
        except psutil.Error:
            break
        time.sleep(0.2)
    _, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{err.decode()[-2000:]}")
    rss, pss = np.array(samples).T / 2**20
    return {
        "command": " ".join(command),
        "wall_s": round(time.monotonic() - started, 1),
        "peak_rss_main_mib": round(float(rss.max()), 1),
        "peak_pss_with_workers_mib": round(float(pss.max()), 1),
        "samples": len(samples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_memory.json"))
    args = parser.parse_args(argv)
    run_record = BenchRun(__file__, argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        for size in args.sizes:
            split = f"set_{size}"
            disk = write_set(run_dir / "data" / split, size)
            row = {
                "images": size,
                "shards": -(-size // SHARD),
                "on_disk_mib": round(disk / 2**20, 1),
                # a loader holding the whole split: rgb uint8 + float32 labels, per rank
                "in_memory_design_mib": round(size * HEIGHT * WIDTH * (3 + 4) / 2**20, 1),
                **train_and_sample(run_dir, split, args.steps),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    settings = {
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "image": f"{WIDTH}x{HEIGHT}",
        "shard_size": SHARD,
        "steps": args.steps,
    }
    document = run_record.record(rows, settings)
    write_results(args.out, document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
