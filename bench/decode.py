"""Decode time per image encoding: ``image_to_rgb`` on a ``sensor_msgs/Image`` as rclpy
delivers it (data an ``array.array``), every colour encoding the node reads.

Frames are ``--size`` (default 1280x720, the usual camera mode), rows unpadded, 16-bit
data little-endian (the host's order: no swap), pixel values random. OpenCV runs on one
thread (``cv2.setNumThreads(1)``), as the comparison of encodings needs. Each encoding is
decoded ``--warmup`` times, then ``--runs`` times timed: median and p90 in ms.

Usage: nice .venv/bin/python bench/decode.py [--runs 50] [--out bench/results/decode.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from _record import BenchRun, write_results
from sensor_msgs.msg import Image
from tables import table_of

from dav2_ros.ros.conversions import image_to_rgb
from dav2_ros.ros.encodings import COLOUR_ENCODINGS, ENCODINGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="frame size WxH")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON) to write")
    return parser.parse_args(argv)


def frame_of(encoding: str, width: int, height: int, rng: np.random.Generator) -> Image:
    """A ``width`` x ``height`` ``encoding`` Image of random bytes, every plane filled."""
    traits = ENCODINGS[encoding]
    step = width * traits.channels * traits.dtype.itemsize
    data = rng.integers(0, 256, step * traits.frame_rows(height), np.uint8).tobytes()
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.data = data  # stored as array.array('B'), as a subscription hands it over
    return msg


def time_decode(msg: Image, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        image_to_rgb(msg)
    times_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        image_to_rgb(msg)
        times_ms.append((time.perf_counter() - start) * 1e3)
    return times_ms


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    cv2.setNumThreads(1)
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    rows = []
    for encoding in COLOUR_ENCODINGS:
        times_ms = time_decode(frame_of(encoding, width, height, rng), args.runs, args.warmup)
        rows.append(
            {
                "encoding": encoding,
                "width": width,
                "height": height,
                "runs": args.runs,
                "median_ms": round(float(np.median(times_ms)), 3),
                "p90_ms": round(float(np.percentile(times_ms, 90)), 3),
            }
        )
        print(f"{encoding}: {rows[-1]['median_ms']:.2f} ms", file=sys.stderr, flush=True)
    settings = {"size": args.size, "runs": args.runs, "warmup": args.warmup, "opencv_threads": 1}
    document = run_record.record(rows, {**settings, "opencv": cv2.__version__})
    print(table_of(document))
    if args.out is not None:
        write_results(args.out, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
