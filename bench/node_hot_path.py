"""The depth node's own per-frame work, stage by stage.

The real node: a ``DepthNode`` in this process (bundled model, or random ``--encoder``
weights), fed one camera frame at a time through its own ``_process`` (decode, engine,
outputs) with its camera_info set; the stages are the node's own laps (``FrameClock``,
the same numbers /diagnostics shows). It publishes ``depth``, ``depth/camera_info`` and
``points`` to a best-effort reader in another process (Fast DDS defaults, as Nav2 or
RViz), with the shared-memory profile as ``depth_node`` starts. The node's own work is
every stage but the engine's ``preprocess`` and ``infer``.

    .venv/bin/python bench/node_hot_path.py                      # 640x480 and 1280x720
    .venv/bin/python bench/node_hot_path.py --sizes 640x480 --iterations 5 --out /tmp/x.json
    .venv/bin/python bench/node_hot_path.py --engine torch --device cuda --precision fp16 \
        --encoder vits --input-size 518

Writes JSON (default ``bench/results/node-hot-path-<date>.json``) and prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _record import BenchRun, default_path, write_results
from ros_bench_support import start_reader, stop_reader
from tables import table_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], metavar="WxH")
    parser.add_argument("--strides", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--colors", nargs="+", default=["on", "off"], choices=["on", "off"])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--input-size", type=int, default=0, help="network shorter side "
                        "(0: the checkpoint's)")  # fmt: skip
    parser.add_argument("--max-range", type=float, default=0.0, help="points.max_range (m)")
    parser.add_argument("--engine", default="onnxruntime", help="the node's engine.backend")
    parser.add_argument("--encoder", default="", help="random weights of this size (default: "
                        "the bundled model)")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=1, help="the node's engine.threads")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/...)")
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


class Frame:
    """One camera frame at one size: the Image message and its camera_info."""

    def __init__(self, width: int, height: int) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        rng = np.random.default_rng(0)
        self.width, self.height = width, height
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.image = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        self.image.data = rgb.tobytes()
        self.image.header.frame_id = "camera_optical_frame"
        fx = 0.8 * width
        self.info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
        self.info.k = [fx, 0.0, width / 2 - 0.5, 0.0, fx, height / 2 - 0.5, 0.0, 0.0, 1.0]
        self.info.p = [fx, 0.0, width / 2 - 0.5, 0.0, 0.0, fx, height / 2 - 0.5, 0.0,
                       0.0, 0.0, 1.0, 0.0]  # fmt: skip
        self.info.d = [0.0] * 5


def checkpoint_for(args: argparse.Namespace, work: Path) -> str:
    """'' (the bundled model) or a checkpoint of random ``--encoder`` weights."""
    if not args.encoder:
        return ""
    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.checkpoints import ModelMeta, save_model
    from dav2_ros.model.random_weights import randomize_weights_

    model = randomize_weights_(DepthAnythingV2(args.encoder, "metric", 20.0), seed=0)
    input_size = args.input_size or 518
    meta = ModelMeta(args.encoder, "metric", 20.0, input_size, {"note": "random weights"})
    return str(save_model(model, meta, work / f"random_{args.encoder}"))


def node_path(args: argparse.Namespace, checkpoint: str, frame: Frame, color: bool, stride: int):
    """The real node, one frame per call; returns (run, close, [engine state])."""
    from rclpy.parameter import Parameter

    from dav2_ros.ros.node import DepthNode
    from dav2_ros.ros.node import Frame as NodeFrame

    values = {
        "model.checkpoint": checkpoint,
        "engine.backend": args.engine,
        "engine.device": args.device,
        "engine.precision": args.precision,
        "engine.input_size": args.input_size,
        "engine.threads": args.threads,
        "points.stride": stride,
        "points.color": color,
        "points.max_range": args.max_range,
    }
    node = DepthNode(parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    node._camera_info = frame.info
    wait_for_reader(node)
    engine_description = []

    def run() -> dict[str, float]:
        node._process(node.run, NodeFrame(frame.image, time.monotonic()))
        if not engine_description:
            engine_description.append(node.run.engine.state)
        return dict(node.run.stats.last_stages_ms)

    def close() -> None:
        node.stop()
        node.destroy_node()

    return run, close, engine_description


def wait_for_reader(node, timeout_s: float = 20.0) -> None:
    """Until the reader process subscribes to the node's three big outputs."""
    deadline = time.monotonic() + timeout_s
    for topic in ("depth", "depth/camera_info", "points"):
        while node.count_subscribers(topic) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the reader process did not subscribe to {topic}")
            time.sleep(0.05)


ENGINE = ("preprocess", "infer")


def summarise(samples: list[dict[str, float]]) -> dict:
    stages = [stage for stage in samples[0] if stage not in ENGINE]
    own = [sum(ms for stage, ms in s.items() if stage not in ENGINE) for s in samples]
    summary = {stage: round(float(np.median([s[stage] for s in samples])), 3) for stage in stages}
    summary["publish"] = round(
        float(
            np.median([sum(ms for k, ms in s.items() if k.endswith(" publish")) for s in samples])
        ),
        3,
    )
    summary["own_p50"] = round(float(np.median(own)), 3)
    summary["own_p90"] = round(float(np.percentile(own, 90)), 3)
    # On a shared machine the fastest frame is the best estimate of the uncontended cost.
    summary["own_min"] = round(float(np.min(own)), 3)
    summary["min"] = {
        stage: round(float(np.min([s[stage] for s in samples])), 3) for stage in stages
    }
    for stage in ENGINE:
        if stage in samples[0]:
            summary[f"engine_{stage}"] = round(float(np.median([s[stage] for s in samples])), 3)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    from dav2_ros.ros.transport import use_large_data_profile

    profile = use_large_data_profile()  # as depth_node does, before rclpy.init
    import rclpy

    rclpy.init()
    reader = start_reader()  # Fast DDS defaults, as Nav2 or RViz
    rows = []
    work = Path(tempfile.mkdtemp(prefix="dav2_hot_path_"))
    checkpoint = checkpoint_for(args, work)
    try:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            frame = Frame(width, height)
            for color in (c == "on" for c in args.colors):
                for stride in args.strides:
                    run, close, engine = node_path(args, checkpoint, frame, color, stride)
                    samples: list[dict[str, float]] = []
                    try:
                        for index in range(args.warmup + args.iterations):
                            stages = run()
                            if index >= args.warmup:
                                samples.append(stages)
                    finally:
                        close()
                    row = {
                        "size": f"{width}x{height}",
                        "color": color,
                        "stride": stride,
                        "load_avg_1m": round(os.getloadavg()[0], 2),
                        "engine": engine[0] if engine else "",
                        "node": summarise(samples),
                    }
                    rows.append(row)
                    print(format_row(row), flush=True)
    finally:
        stop_reader(reader)
        rclpy.shutdown()
    settings = {
        "fast_dds_profile": profile.reason,
        "publication_mode": os.environ.get("RMW_FASTRTPS_PUBLICATION_MODE", "(rmw default)"),
        "iterations": args.iterations,
        "warmup": args.warmup,
        "input_size": args.input_size,
        "engine_backend": args.engine,
        "encoder": args.encoder or "bundled model",
        "max_range_m": args.max_range,
        "note": args.note,
    }
    document = run_record.record(rows, settings)
    write_results(args.out or default_path("node-hot-path"), document)
    print(table_of(document))
    return 0


def format_row(row: dict) -> str:
    head = f"{row['size']} {'xyz+rgb' if row['color'] else 'xyz'} stride {row['stride']}:"
    stages = ", ".join(f"{k} {v:.2f}" for k, v in row["node"].items() if k != "min")
    return f"{head}\n  {stages}"


if __name__ == "__main__":
    sys.exit(main())
