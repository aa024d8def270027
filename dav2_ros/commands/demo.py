"""Run the whole system on a synthetic camera: depth node + monitor, measured live.

Starts a synthetic camera node, the real ``depth_node`` (config/depth.yaml, the
bundled weights or --checkpoint) and a monitor node on a private loopback-only
DDS domain; prints a live line and a summary table; writes panels, a PLY and
summary.json to --out.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from dav2_ros.commands._model_args import add_download_argument
from dav2_ros.model.hub import is_hub_name, parse_hub_name, resolve


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip().lower())
    if not match or min(int(match.group(1)), int(match.group(2))) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=_positive,
        default=60.0,
        metavar="S",
        help="seconds measured after the first depth image (default 60)",
    )
    parser.add_argument(
        "--rate", type=_positive, default=10.0, metavar="HZ", help="camera rate (default 10)"
    )
    parser.add_argument(
        "--backend",
        default="",
        metavar="B",
        help="engine.backend of the node (torch, onnxruntime, tensorrt, auto; "
        "default: config/depth.yaml)",
    )
    parser.add_argument(
        "--checkpoint",
        default="",
        metavar="PATH",
        help="model file or directory, or an hf: name, for the node (default: the bundled weights)",
    )
    add_download_argument(parser)
    parser.add_argument(
        "--sparse",
        action="store_true",
        help="the camera also publishes sparse_depth (a 16-beam LiDAR's returns, with noise "
        "and outliers) and the node runs with scale.mode sparse; the summary and panels show "
        "the model alone and with the sparse fit on the same frames",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo_out"),
        metavar="DIR",
        help="where panels, points.ply, summary.json and logs go (default demo_out)",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=(640, 480),
        metavar="WxH",
        help="camera resolution (default 640x480)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=0,
        metavar="N",
        help="engine.input_size: network's shorter side, multiple of 14 (default: checkpoint's)",
    )
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        metavar="YAML",
        help="node parameters (default: the package's config/depth.yaml)",
    )
    parser.add_argument(
        "--domain-id",
        type=int,
        default=None,
        metavar="ID",
        help="ROS_DOMAIN_ID for the demo's nodes (default: a free one is picked)",
    )
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=30,
        metavar="N",
        help="frames rendered at start-up and played back and forth (default 30)",
    )
    parser.add_argument(
        "--panel-every",
        type=int,
        default=25,
        metavar="N",
        help="write a PNG panel every N scored frames (default 25, at most 12 panels)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=_positive,
        default=180.0,
        metavar="S",
        help="give up if no depth image arrives within this many seconds (default 180)",
    )


def run(args: argparse.Namespace) -> int:
    from dav2_ros.demo.runner import DemoOptions, run_demo

    if args.input_size and args.input_size % 14:
        raise ValueError(f"--input-size must be a multiple of 14, got {args.input_size}")
    if args.domain_id is not None and not 0 <= args.domain_id <= 101:
        raise ValueError(f"--domain-id must lie in 0..101, got {args.domain_id}")
    if args.panel_every < 1:
        raise ValueError(f"--panel-every must be at least 1, got {args.panel_every}")
    if args.clip_frames < 1:
        raise ValueError(f"--clip-frames must be at least 1, got {args.clip_frames}")
    if is_hub_name(args.checkpoint):
        # Into the cache now (or fail now): the node and the timing then read it offline.
        resolve(parse_hub_name(args.checkpoint), download=args.download)
    elif args.checkpoint and not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint} does not exist")
    width, height = args.size
    return run_demo(
        DemoOptions(
            duration_s=args.duration,
            rate_hz=args.rate,
            width=width,
            height=height,
            backend=args.backend,
            checkpoint=args.checkpoint,
            out_dir=args.out,
            params_file=args.params_file,
            input_size=args.input_size,
            domain_id=args.domain_id,
            clip_frames=args.clip_frames,
            startup_timeout_s=args.startup_timeout,
            panel_every=args.panel_every,
            sparse=args.sparse,
        )
    )
