"""Engine comparison matrix: backends × encoders × input sizes on one synthetic frame.

For each (encoder, input size) every backend is built on the same weights and the
engines are timed round-robin (one frame each in turn), so a load change on a shared
machine hits them alike and the onnxruntime / torch ratios are fair. The int8 graph's
accuracy cost is measured against the fp32 graph on the same frame.

Writes ``bench/results/<machine>-<date>[-<tag>].json`` and prints the table.
Random weights (no ``--checkpoint``) have the real FLOPs; their accuracy numbers say
how much int8 perturbs *this* network, not a trained one.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
from _record import RESULTS_DIR, BenchRun, write_results
from tables import table_of

from dav2_ros.commands._model_args import build_model, parse_image_size
from dav2_ros.commands.bench import (
    INT8_ALIAS,
    build_estimators,
    engine_spec,
    machine_info,
    measure,
    record,
    synthetic_frame,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime", INT8_ALIAS])
    parser.add_argument("--encoders", nargs="+", default=["vits", "vitt"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[266, 392, 518])
    parser.add_argument("--image-size", type=parse_image_size, default=(480, 640), metavar="WxH")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", help="time these weights instead of random ones")
    parser.add_argument("--cache-dir", help="engine cache (default $DAV2_CACHE_DIR or ~/.cache)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument("--tag", default="", help="suffix for the result file names")
    return parser.parse_args(argv)


def machine_slug(info: dict) -> str:
    cpu = re.sub(r"[^a-z0-9]+", "-", info["cpu"].lower()).strip("-")
    gpu = re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-") if "gpu" in info else ""
    return f"{cpu}-{info['cores']}c" + (f"-{gpu}" if gpu else "")


def accuracy(candidate: np.ndarray, reference: np.ndarray) -> dict:
    """Relative L2 and AbsRel of ``candidate`` against ``reference`` (where it is > 0)."""
    valid = reference > 1e-6 * float(np.abs(reference).max())
    rel_l2 = float(np.linalg.norm(candidate - reference) / np.linalg.norm(reference))
    abs_rel = float(np.mean(np.abs(candidate[valid] - reference[valid]) / reference[valid]))
    return {"rel_l2": rel_l2, "abs_rel": abs_rel}


def run_case(model, chosen, args, input_size: int, frame: np.ndarray) -> tuple[list, dict]:
    specs = {
        b: engine_spec(b, args.device, threads=args.threads, cache_dir=args.cache_dir)
        for b in args.backends
    }
    estimators = build_estimators(model, specs, input_size, args.image_size)
    print(f"  {model.encoder_name} @ {input_size}: engines ready", file=sys.stderr, flush=True)
    times = measure({k: v[0] for k, v in estimators.items()}, frame, args.iterations, args.warmup)
    records = [
        record(
            label,
            est,
            setup_s,
            times[label],
            chosen,
            {"image_hw": args.image_size, "warmup": args.warmup},
        )
        for label, (est, setup_s) in estimators.items()
    ]
    outputs = {label: est.predict(frame).values for label, (est, _) in estimators.items()}
    checks = {}
    if "torch" in outputs:
        for label, values in outputs.items():
            if label != "torch":
                checks[f"{label}_vs_torch"] = accuracy(values, outputs["torch"])
    if "onnxruntime" in outputs and INT8_ALIAS in outputs:
        checks[f"{INT8_ALIAS}_vs_onnxruntime"] = accuracy(
            outputs[INT8_ALIAS], outputs["onnxruntime"]
        )
    for est, _ in estimators.values():
        est.close()
    return records, checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    info = machine_info()
    frame = synthetic_frame(*args.image_size)
    records, accuracies = [], {}
    for encoder in args.encoders:
        model_args = argparse.Namespace(
            checkpoint=args.checkpoint, encoder=encoder, depth_type=None, max_depth=None
        )
        chosen = build_model(model_args, random_by_default=True)
        for size in args.sizes:
            case_records, checks = run_case(chosen.model, chosen, args, size, frame)
            records += case_records
            accuracies[f"{encoder}@{size}"] = checks
            for r in case_records:
                print(
                    f"  {r['backend']:<18} infer {r['infer_ms']:8.1f} ms "
                    f"(p90 {r['infer_p90_ms']:.1f})  total {r['total_ms']:8.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
        if args.checkpoint:
            break  # one checkpoint is one encoder
    date = time.strftime("%Y-%m-%d", time.gmtime())
    settings = {k: v for k, v in vars(args).items() if k != "out_dir"}
    document = run_record.record(records, settings, summary={"accuracy": accuracies})
    stem = "-".join(filter(None, [machine_slug(info), date, args.tag]))
    write_results(args.out_dir / f"{stem}.json", document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
