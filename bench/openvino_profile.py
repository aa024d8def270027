"""Where an OpenVINO engine's time goes: per-layer performance counters by layer type.

Builds the openvino engine (fp32, bf16, int8) for random ViT-S weights at 518 on a
640×480 frame (network 518×686), imports its cached compiled model again with
``PERF_COUNT`` on, runs the calibration frame ``--iterations`` times and sums the
counters' real time per layer type (and the kernels OpenVINO chose for it).

    python bench/openvino_profile.py [--iterations 3] [--out bench/results/x.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from _record import BenchRun, default_path, write_results
from tables import table_of

from dav2_ros.engines import EngineConfig, create_engine
from dav2_ros.engines.self_check import calibration_batch
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import model_input_size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--input-size", type=int, default=518)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def profile(engine, batch, iterations: int) -> dict[str, dict]:
    """Per layer type: real ms per frame, layer count and the kernels used."""
    properties = {**engine._runtime_properties(), **engine._compile_properties()}
    compiled = engine.core.import_model(
        engine.cache_result.path.read_bytes(), engine.ov_device, {**properties, "PERF_COUNT": True}
    )
    request = compiled.create_infer_request()
    request.infer({0: batch})  # warm-up
    totals: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "layers": 0, "kernels": set()})
    for _ in range(iterations):
        request.infer({0: batch})
        for info in request.profiling_info:
            if info.status != info.Status.EXECUTED:
                continue
            entry = totals[info.node_type]
            entry["ms"] += info.real_time.total_seconds() * 1e3 / iterations
            entry["layers"] += 1
            entry["kernels"].add(info.exec_type)
    return totals


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    torch.set_num_threads(args.threads)
    model = randomize_weights_(DepthAnythingV2(args.encoder, "relative"), seed=0).eval()
    input_hw = model_input_size(480, 640, args.input_size)
    batch = calibration_batch(input_hw)
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for precision in args.precisions:
            config = EngineConfig(
                "openvino", precision=precision, input_hw=input_hw,
                cache_dir=Path(cache_dir), options={"threads": args.threads},
            )  # fmt: skip
            engine = create_engine(model, config)
            totals = profile(engine, batch, args.iterations)
            frame_ms = sum(t["ms"] for t in totals.values())
            for node_type, t in sorted(totals.items(), key=lambda kv: -kv[1]["ms"]):
                rows.append(
                    {
                        "precision": precision,
                        "layer_type": node_type,
                        "ms": round(t["ms"], 2),
                        "share": round(t["ms"] / frame_ms, 4),
                        "layers": t["layers"] // args.iterations,
                        "kernels": sorted(t["kernels"]),
                        "frame_ms": round(frame_ms, 1),
                    }  # fmt: skip
                )
            engine.close()
            print(f"  {precision}: {frame_ms:.0f} ms in layers", file=sys.stderr)
    settings = {"encoder": args.encoder, "network_hw": list(input_hw), "threads": args.threads,
                "iterations": args.iterations, "weights": "random (seed 0)"}  # fmt: skip
    document = run_record.record(rows, settings)
    print(table_of(document))
    write_results(args.out or default_path("openvino-profile"), document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
