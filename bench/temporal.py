"""Flicker and AbsRel with and without the temporal stabiliser.

Sequences come from ``dav2_ros.sim`` with exact depth: rooms, streets and clutter
(style "b": a cheap camera with blur, vignetting and a colour cast, fixed per
sequence), each ``--hold`` frames with the camera still, then ``--moving`` frames
along ``smooth_trajectory`` (a ``--loop``-frame loop: ~3 cm and ~0.3 deg per frame).
Every frame gets fresh sensor noise (sigma 2 DN) and an auto-exposure gain jitter
(sigma 2 %), as a real camera does. The model runs on each frame; the stabiliser
sees frames in order at 10 Hz stamps.

Measures (``dav2_ros.temporal.flicker``): flicker = mean |log| change of each frame's
own fit to ground truth between consecutive frames (scale for metric, scale and shift
in inverse depth for relative), on still and moving frames; AbsRel per frame (metric
as published, relative after the frame's own fit).

Defaults: the bundled model as metric, and its inverse depth as a relative disparity
(a relative model: ``--checkpoint student.safetensors --depth-type relative``).

Usage: .venv/bin/python bench/temporal.py --out bench/results/temporal.json   (~5 min on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _record import BenchRun, write_results
from tables import table_of

from dav2_ros.engines import DepthEstimator, EngineSpec
from dav2_ros.model.checkpoints import load_model
from dav2_ros.sim import Intrinsics, make_scene, render, smooth_trajectory
from dav2_ros.temporal import TemporalSettings, TemporalStabilizer, score_sequence

FPS = 10.0
GAIN_SIGMA = 0.02  # auto-exposure jitter per frame
NOISE_DN = 2.0  # sensor noise, 8-bit levels


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument(
        "--depth-type",
        choices=("metric", "relative", "both"),
        default=None,
        help="how to read the output (default: both for a metric model, else relative); "
        "relative on a metric model uses its inverse depth as disparity",
    )
    parser.add_argument("--input-size", type=int, default=None, help="default: the model's")
    parser.add_argument("--sequences", type=int, default=6, help="room/street/clutter, cycled")
    parser.add_argument("--hold", type=int, default=8, help="frames with the camera still")
    parser.add_argument("--moving", type=int, default=24, help="frames of camera motion")
    parser.add_argument("--loop", type=int, default=600, help="frames per trajectory loop")
    parser.add_argument("--size", default="320x240", help="render size WxH")
    parser.add_argument(
        "--strengths", default="0.5", help="comma-separated temporal.strength values"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    return parser.parse_args(argv)


def render_sequences(args: argparse.Namespace) -> list[dict]:
    """Frames (RGB with noise, depth, valid) of every sequence, rendered once."""
    width, height = (int(v) for v in args.size.split("x"))
    intrinsics = Intrinsics.from_fov(width, height, 70.0)
    sequences = []
    for index in range(args.sequences):
        kind = ("room", "street", "clutter")[index % 3]
        scene = make_scene(args.seed + 300 + index, "b", kind)
        loop = smooth_trajectory(scene, args.loop, seed=index)
        start = int(np.random.default_rng([args.seed, index]).integers(0, args.loop))
        poses = [loop[start]] * args.hold + [
            loop[(start + step) % args.loop] for step in range(1, args.moving + 1)
        ]
        frames = []
        for number, pose in enumerate(poses):
            frame = render(scene, intrinsics, pose, noise_seed=0)  # one camera per sequence
            rng = np.random.default_rng([args.seed, index, number])
            exposed = frame.rgb * rng.normal(1.0, GAIN_SIGMA)
            noisy = exposed + rng.normal(0.0, NOISE_DN, frame.rgb.shape) + 0.5
            frames.append((np.clip(noisy, 0, 255).astype(np.uint8), frame.depth_m, frame.valid))
        sequences.append({"kind": kind, "frames": frames})
        print(f"rendered sequence {index} ({kind})", file=sys.stderr, flush=True)
    return sequences


def predictor(args: argparse.Namespace):
    loaded = load_model(args.checkpoint)
    input_size = args.input_size or loaded.meta.input_size
    spec = EngineSpec(options={"threads": args.threads})
    estimator = DepthEstimator(loaded.model.eval(), spec, input_size)
    name = "bundled" if args.checkpoint is None else Path(args.checkpoint).stem
    return estimator, f"{name} {loaded.meta.encoder} {loaded.meta.depth_type}, input {input_size}"


def as_depth_type(values: np.ndarray, model_type: str, depth_type: str) -> np.ndarray:
    if model_type == depth_type:
        return values
    if model_type == "relative":
        raise ValueError("a relative model cannot be read as metric depth")
    with np.errstate(divide="ignore"):  # a metric model's inverse depth as disparity
        return np.where(values > 0, 1.0 / values, 0.0).astype(np.float32)


def evaluate(sequences, predictions, depth_type, settings: TemporalSettings, hold: int) -> dict:
    flicker, still, moving, abs_rel, aligned, static, update_ms = [], [], [], [], [], [], []
    for sequence, raw in zip(sequences, predictions, strict=True):
        stabilizer = TemporalStabilizer(settings, depth_type)
        outputs = []
        for number, ((rgb, _, _), values) in enumerate(zip(sequence["frames"], raw, strict=True)):
            started = time.perf_counter()
            result = stabilizer.update(rgb, values, number / FPS)
            update_ms.append((time.perf_counter() - started) * 1e3)
            outputs.append(result.values)
            if number:
                aligned.append(result.aligned)
                static.append(result.static_fraction)
        depths = [depth for _, depth, _ in sequence["frames"]]
        valids = [valid for _, _, valid in sequence["frames"]]
        score = score_sequence(outputs, depths, valids, depth_type)
        flicker.append(score.flicker)
        # Change i is between frames i and i + 1: the first hold - 1 are between still frames.
        still.extend(score.per_frame_flicker[: hold - 1])
        moving.extend(score.per_frame_flicker[hold - 1 :])
        abs_rel.append(score.abs_rel)
    return {
        "flicker": float(np.mean(flicker)),
        "flicker_still": float(np.nanmean(still)),
        "flicker_moving": float(np.nanmean(moving)),
        "flicker_per_sequence": flicker,
        "abs_rel": float(np.mean(abs_rel)),
        "abs_rel_per_sequence": abs_rel,
        "aligned_share": float(np.mean(aligned)),
        "static_fraction_median": float(np.median(static)),
        "update_ms_median": float(np.median(update_ms)),
        "lag_frames": settings.lag_frames if settings.mode == "align" else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    estimator, description = predictor(args)
    model_type = estimator.depth_type
    if args.depth_type in (None, "both"):
        depth_types = ["metric", "relative"] if model_type == "metric" else ["relative"]
    else:
        depth_types = [args.depth_type]
    sequences = render_sequences(args)
    raw = [[estimator.predict(rgb).values for rgb, _, _ in s["frames"]] for s in sequences]
    strengths = [float(v) for v in args.strengths.split(",")]
    rows = []
    for depth_type in depth_types:
        predictions = [[as_depth_type(v, model_type, depth_type) for v in seq] for seq in raw]
        label = f"{description} as {depth_type}"
        for mode, strength in [("none", 0.0)] + [("align", s) for s in strengths]:
            settings = TemporalSettings(mode=mode, strength=strength)
            result = evaluate(sequences, predictions, depth_type, settings, args.hold)
            temporal = "none" if mode == "none" else f"align (strength {strength})"
            rows.append(
                {
                    "label": label,
                    "depth_type": depth_type,
                    "temporal": temporal,
                    "settings": vars(settings),
                    "result": result,
                }
            )
            print(
                f"{label}: {temporal}: flicker {result['flicker']:.4f} "
                f"AbsRel {result['abs_rel']:.4f}",
                file=sys.stderr,
                flush=True,
            )
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["camera"] = {"gain_sigma": GAIN_SIGMA, "noise_dn": NOISE_DN, "fps": FPS}
    document = run_record.record(rows, settings)
    print(table_of(document))
    if args.out is not None:
        write_results(args.out, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
