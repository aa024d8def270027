"""The depth node's own per-frame work, stage by stage: before issue 13 and now.

``new`` is the real node: a ``DepthNode`` in this process (bundled model, or random
``--encoder`` weights), fed one camera frame at a time through its own ``_process``
(decode, engine, outputs) with its camera_info set; the stages are the node's own laps
(``FrameClock``, the same numbers /diagnostics shows). ``old`` is the path before issue 13
(``bench/old_hot_path.py``, frozen from main at 95cfca8) on a network output of the same
size. Both publish ``depth``, ``depth/camera_info`` and ``points`` to a best-effort reader
in another process (Fast DDS defaults, as Nav2 or RViz), both with the shared-memory
profile as ``depth_node`` starts, round-robin in one process so machine load hits them
alike. The node's own work is every stage but the engine's ``preprocess`` and ``infer``.

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
from old_hot_path import old_path
from ros_bench_support import machine, save, start_reader, stop_reader, today


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], metavar="WxH")
    parser.add_argument("--strides", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--colors", nargs="+", default=["on", "off"], choices=["on", "off"])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--input-size", type=int, default=84, help="network shorter side")
    parser.add_argument("--max-range", type=float, default=0.0, help="points.max_range (m)")
    parser.add_argument("--engine", default="onnxruntime", help="the node's engine.backend")
    parser.add_argument("--encoder", default="", help="random weights of this size (default: "
                        "the bundled model)")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=1, help="the node's engine.threads")
    parser.add_argument("--paths", nargs="+", default=["old", "new"], choices=["old", "new"])
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/...)")
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


class Frame:
    """One camera frame at one size: the Image message, its camera_info, and for the old
    path a network output of the size the engine gives (smooth 0.5-8 m, a few invalid)."""

    def __init__(self, width: int, height: int, input_size: int) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        from dav2_ros.model.transforms import model_input_size

        rng = np.random.default_rng(0)
        self.width, self.height = width, height
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.image = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        self.image.data = rgb.tobytes()
        self.image.header.frame_id = "camera_optical_frame"
        net_h, net_w = model_input_size(height, width, input_size)
        v, u = np.mgrid[0:net_h, 0:net_w]
        raw = 0.5 + 7.5 * (0.5 + 0.5 * np.sin(u / 9.0) * np.cos(v / 7.0))
        raw[::17, ::13] = -1.0
        self.network_output = raw.astype(np.float32)
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
    meta = ModelMeta(args.encoder, "metric", 20.0, args.input_size, {"note": "random weights"})
    return str(save_model(model, meta, work / f"random_{args.encoder}"))


def new_path(args: argparse.Namespace, checkpoint: str, frame: Frame, color: bool, stride: int):
    """The real node, one frame per call; returns (run, close)."""
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


def old_publishers(node) -> dict:
    """The node's three big outputs as it publishes them (reliable, keep last 2)."""
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from dav2_ros.ros.qos import output_qos

    types = {"depth": Image, "depth/camera_info": CameraInfo, "points": PointCloud2}
    return {topic: node.create_publisher(t, topic, output_qos()) for topic, t in types.items()}


def wait_for_match(publishers: dict, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    for publisher in publishers.values():
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the reader process did not match the publishers")
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
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    from dav2_ros.ros.transport import use_large_data_profile

    profile = use_large_data_profile()  # as depth_node does, before rclpy.init
    import rclpy

    rclpy.init()
    bench_node = rclpy.create_node("hot_path_bench")
    publishers = old_publishers(bench_node)
    reader = start_reader()  # Fast DDS defaults, as Nav2 or RViz
    wait_for_match(publishers)
    cases = []
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="dav2_hot_path_"))
    checkpoint = checkpoint_for(args, work)
    try:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            frame = Frame(width, height, args.input_size)
            for color in (c == "on" for c in args.colors):
                for stride in args.strides:
                    paths, close, engine = {}, None, []
                    if "old" in args.paths:
                        paths["old"] = old_path(frame, publishers, color, stride, args.max_range)
                    if "new" in args.paths:
                        paths["new"], close, engine = new_path(
                            args, checkpoint, frame, color, stride
                        )
                    samples: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
                    try:
                        for index in range(args.warmup + args.iterations):
                            for name, run in paths.items():  # round robin: same load for both
                                stages = run()
                                if index >= args.warmup:
                                    samples[name].append(stages)
                    finally:
                        if close is not None:
                            close()
                    case = {
                        "size": f"{width}x{height}",
                        "color": color,
                        "stride": stride,
                        "load_avg_1m": round(os.getloadavg()[0], 2),
                        **{name: summarise(s) for name, s in samples.items()},
                    }
                    if engine:
                        case["engine"] = engine[0]
                    cases.append(case)
                    print(format_case(case), flush=True)
    finally:
        stop_reader(reader)
        bench_node.destroy_node()
        rclpy.shutdown()
    result = {
        "bench": "node_hot_path",
        "command": " ".join(
            ["bench/node_hot_path.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": today(),
        "machine": machine(load_start),
        "fast_dds_profile": profile.reason,
        "publication_mode": os.environ.get("RMW_FASTRTPS_PUBLICATION_MODE", "(rmw default)"),
        "iterations": args.iterations,
        "input_size": args.input_size,
        "max_range_m": args.max_range,
        "note": args.note,
        "cases": cases,
    }
    out = save(result, args.out, "node-hot-path")
    print(markdown_table(result))
    print(f"wrote {out}")
    return 0


STAGES = ["decode", "postprocess", "metric", "depth build", "depth/camera_info build",
          "points build", "publish"]  # fmt: skip


def markdown_table(result: dict) -> str:
    """The README table: per-stage p50 ms, old → new, one row per case."""
    names = [s.replace("depth/camera_info", "camera_info") for s in STAGES]
    head = "| case | load | " + " | ".join(names) + " | own work p50 (p90) | own work min |"
    lines = [head, "|" + "---|" * (len(STAGES) + 4)]
    for case in result["cases"]:
        old, new = case.get("old", {}), case.get("new", {})
        label = f"{case['size']} {'xyz+rgb' if case['color'] else 'xyz'} s{case['stride']}"
        cells = [" → ".join(f"{p[s]:.1f}" for p in (old, new) if s in p) for s in STAGES]
        total = " → ".join(f"{p['own_p50']:.1f} ({p['own_p90']:.0f})" for p in (old, new) if p)
        fastest = " → ".join(f"{p['own_min']:.1f}" for p in (old, new) if p)
        lines.append(
            f"| {label} | {case['load_avg_1m']:.1f} | " + " | ".join(cells)
            + f" | **{total}** | {fastest} |"
        )  # fmt: skip
    return "\n".join(lines)


def format_case(case: dict) -> str:
    head = f"{case['size']} {'xyz+rgb' if case['color'] else 'xyz'} stride {case['stride']}:"
    parts = []
    for name in ("old", "new"):
        if name in case:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in case[name].items() if k != "min")
            parts.append(f"  {name}: {stages}")
    return "\n".join([head, *parts])


if __name__ == "__main__":
    sys.exit(main())
