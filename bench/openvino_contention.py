"""OpenVINO on oversubscribed cores: two processes, each with as many threads as cores.

A robot computer runs several nodes on few cores. OpenMP runtimes that spin-wait stall
badly when two processes each ask for every core (docs/engines.md, "contention").
This runs the openvino engine (random ``--encoder`` weights at ``--input-size``, on a
640x480 frame) in one process alone, then in two processes at once, each with
``--threads`` threads, with OpenVINO's CPU pinning off (the default here) and on; per
frame ms of every process are recorded. No stall means: two processes each take about
twice the time alone (the cores are shared), and no frame takes far longer.

    python bench/openvino_contention.py [--frames 30] [--out bench/results/x.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _record import BenchRun, default_path, write_results
from tables import table_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--input-size", type=int, default=266)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pinning", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def estimator(args: argparse.Namespace, pinning: bool):
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.random_weights import randomize_weights_

    model = randomize_weights_(DepthAnythingV2(args.encoder, "relative"), seed=0).eval()
    options = {"threads": args.threads, "pinning": pinning}
    spec = EngineSpec("openvino", "cpu", args.precision, options, Path(args.cache_dir))
    return DepthEstimator(model, spec, args.input_size)


def worker(args: argparse.Namespace) -> int:
    """Time ``--frames`` frames after a warm-up; print their ms as JSON."""
    from dav2_ros.commands.bench import synthetic_frame

    frame = synthetic_frame(480, 640)
    depth = estimator(args, args.pinning)
    depth.predict(frame)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    times = []
    for _ in range(args.frames):
        started = time.perf_counter()
        depth.predict(frame)
        times.append((time.perf_counter() - started) * 1e3)
    print(json.dumps(times), flush=True)
    return 0


def run_case(args: argparse.Namespace, processes: int, pinning: bool) -> list[list[float]]:
    command = [sys.executable, __file__, "--worker", "--cache-dir", args.cache_dir,
               "--encoder", args.encoder, "--input-size", str(args.input_size),
               "--precision", args.precision, "--threads", str(args.threads),
               "--frames", str(args.frames)] + (["--pinning"] if pinning else [])  # fmt: skip
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for w in workers:
        assert w.stdout.readline().strip() == "ready"
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()
    results = [json.loads(w.stdout.readline()) for w in workers]
    for w in workers:
        w.wait(timeout=60)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    run_record = BenchRun(__file__, argv)
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        args.cache_dir = cache_dir
        from dav2_ros.commands.bench import synthetic_frame

        estimator(args, False).predict(synthetic_frame(480, 640))  # build once, cached
        for processes, pinning in ((1, False), (2, False), (1, True), (2, True)):
            results = run_case(args, processes, pinning)
            for index, times in enumerate(results):
                rows.append(
                    {
                        "processes": processes,
                        "pinning": pinning,
                        "process": index,
                        "frame_ms_p50": round(float(np.median(times)), 1),
                        "frame_ms_p90": round(float(np.percentile(times, 90)), 1),
                        "frame_ms_max": round(max(times), 1),
                        "frames": len(times),
                    }  # fmt: skip
                )
            print(f"  {processes} process(es), pinning {pinning}: done", file=sys.stderr)
    settings = {k: v for k, v in vars(args).items() if k in
                ("encoder", "input_size", "precision", "threads", "frames")}  # fmt: skip
    document = run_record.record(rows, settings)
    print(table_of(document))
    write_results(args.out or default_path("openvino-contention"), document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
