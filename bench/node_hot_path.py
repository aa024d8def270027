"""The depth node's own per-frame work, stage by stage: the old path vs the new building blocks.

Stages (what the node does around the engine for one frame): ``decode`` (Image → RGB
array), ``resize`` (network output → output size, the engine's postprocess),
``metric`` (invalid → NaN), ``depth_msg`` (32FC1 Image), ``camera_info`` (scaled
CameraInfo), ``cloud`` (rays/back-projection, range limit, colour, packing, PointCloud2),
``publish`` (``publish()`` of depth, camera_info and points to a best-effort reader in
another process, as the node runs: serialisation and the Fast DDS write included).

``old`` is the node as it is (Open3D back-projection, ``pack_organised_cloud``,
``tobytes``); ``new`` uses the ray cache, ``CloudPacker`` and ``dav2_ros.wire``. Both run
round-robin in one process on the same frames, so machine load hits them alike.

    .venv/bin/python bench/node_hot_path.py                      # 640x480 and 1280x720
    .venv/bin/python bench/node_hot_path.py --sizes 640x480 --iterations 5 --out /tmp/x.json
    .venv/bin/python bench/node_hot_path.py --engine torch --device cuda --precision fp16

``--engine`` also times the engine stages (``preprocess``, ``infer``) with that backend
(on ``--encoder`` random weights at ``--input-size``), e.g. on a CUDA machine.
Writes JSON (default ``bench/results/node-hot-path-<date>.json``) and prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ros_bench_support import machine, save, start_reader, stop_reader, today


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], metavar="WxH")
    parser.add_argument("--strides", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--input-size", type=int, default=84, help="network shorter side")
    parser.add_argument("--max-range", type=float, default=0.0, help="points.max_range (m)")
    parser.add_argument("--engine", help="also time preprocess + infer with this backend")
    parser.add_argument("--encoder", default="vits", help="random weights for --engine")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--no-publish", action="store_true", help="skip the DDS publish stage")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/...)")
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


class Frame:
    """One camera frame at one size: the Image message, its camera_info, a network output."""

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
        # A smooth depth field 0.5-8 m with a few invalid pixels, as a model gives.
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


class Publishers:
    """The node's three big-output publishers (reliable keep-last 2, as the node's default)."""

    def __init__(self, node) -> None:
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from dav2_ros.ros.qos import output_qos

        self.depth = node.create_publisher(Image, "depth", output_qos())
        self.info = node.create_publisher(CameraInfo, "depth/camera_info", output_qos())
        self.points = node.create_publisher(PointCloud2, "points", output_qos())

    def publish(self, depth, info, cloud) -> None:
        self.depth.publish(depth)
        self.info.publish(info)
        self.points.publish(cloud)


class Timer:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + (now - self._last) * 1e3
        self._last = now


def old_path(frame: Frame, pubs: Publishers | None, color: bool, stride: int, max_range: float):
    """The node's ``_process``/``_publish`` today, minus the engine."""
    from std_msgs.msg import Header

    from dav2_ros.engines import Prediction
    from dav2_ros.model.transforms import resize_output
    from dav2_ros.ros import outputs
    from dav2_ros.ros.image_decode import image_to_rgb
    from dav2_ros.ros.messages import (
        float_image_msg,
        intrinsics_of,
        pointcloud_msg,
        scaled_camera_info,
    )

    def run() -> dict[str, float]:
        timer = Timer()
        rgb = image_to_rgb(frame.image)
        timer.lap("decode")
        values = resize_output(frame.network_output, frame.height, frame.width)
        timer.lap("resize")
        depth_m = outputs.metric_depth_m(Prediction(values, "metric", 0.0, 0.0, 0.0))
        timer.lap("metric")
        header = Header(stamp=frame.image.header.stamp, frame_id=frame.image.header.frame_id)
        depth_msg = float_image_msg(header, depth_m)
        timer.lap("depth_msg")
        info = scaled_camera_info(frame.info, header, frame.width, frame.height)
        timer.lap("camera_info")
        colours = outputs.rgb_at(rgb, frame.height, frame.width) if color else None
        cloud = outputs.organised_cloud(depth_m, intrinsics_of(info), stride, max_range, colours)
        cloud_msg = pointcloud_msg(header, cloud)
        timer.lap("cloud")
        if pubs is not None:
            pubs.publish(depth_msg, info, cloud_msg)
            timer.lap("publish")
        return timer.stages

    return run


def new_path(frame: Frame, pubs: Publishers | None, color: bool, stride: int, max_range: float):
    """The same outputs from the new building blocks (ray cache, CloudPacker, wire)."""
    from sensor_msgs.msg import Image, PointCloud2, PointField
    from std_msgs.msg import Header

    from dav2_ros.geometry import ByteBuffer, CameraIntrinsics, CloudPacker, PinholeRays, RayCache
    from dav2_ros.model.transforms import resize_output
    from dav2_ros.ros.image_decode import image_to_rgb
    from dav2_ros.ros.messages import scaled_camera_info
    from dav2_ros.wire import fill_float_image, fill_pointcloud2

    rays_cache, packer, depth_buffer = RayCache(), CloudPacker(), ByteBuffer()
    depth_msg, cloud_msg = Image(), PointCloud2()  # reused: only their fields change

    def run() -> dict[str, float]:
        timer = Timer()
        rgb = image_to_rgb(frame.image)
        timer.lap("decode")
        values = resize_output(frame.network_output, frame.height, frame.width)
        timer.lap("resize")
        # Invalid → NaN in place: the resized array is ours (no defensive copy).
        with np.errstate(invalid="ignore"):
            np.copyto(values, np.float32(np.nan), where=~(np.abs(values) < np.inf) | (values < 0))
        timer.lap("metric")
        header = Header(stamp=frame.image.header.stamp, frame_id=frame.image.header.frame_id)
        fill_float_image(depth_msg, header, depth_buffer, values)
        timer.lap("depth_msg")
        info = scaled_camera_info(frame.info, header, frame.width, frame.height)
        timer.lap("camera_info")
        intrinsics = CameraIntrinsics.from_k(info.k, info.width, info.height)
        rays = rays_cache.rays(PinholeRays(intrinsics, stride))
        cloud = packer.pack(values, rays, stride, max_range, rgb if color else None)
        fill_pointcloud2(cloud_msg, header, cloud, PointField)
        timer.lap("cloud")
        if pubs is not None:
            pubs.publish(depth_msg, info, cloud_msg)
            timer.lap("publish")
        return timer.stages

    return run


def engine_stages(args: argparse.Namespace, frame: Frame) -> Callable[[], dict[str, float]]:
    """preprocess + infer of ``--engine`` on this frame (random ``--encoder`` weights)."""
    from dav2_ros.engines import EngineConfig, create_engine
    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.random_weights import randomize_weights_
    from dav2_ros.model.transforms import model_input_size, prepare_input
    from dav2_ros.ros.image_decode import image_to_rgb

    model = randomize_weights_(DepthAnythingV2(args.encoder, "metric", 20.0), seed=0).eval()
    config = EngineConfig(
        backend=args.engine,
        device=args.device,
        precision=args.precision,
        input_hw=model_input_size(frame.height, frame.width, args.input_size),
    )
    engine = create_engine(model, config)
    rgb = image_to_rgb(frame.image)

    def run() -> dict[str, float]:
        timer = Timer()
        batch = prepare_input(rgb, args.input_size)
        timer.lap("preprocess")
        engine.infer(batch)
        timer.lap("infer")
        return timer.stages

    run.description = engine.description  # type: ignore[attr-defined]
    return run


def wait_for_match(pubs: Publishers, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    for publisher in (pubs.depth, pubs.info, pubs.points):
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the reader process did not match the publishers")
            time.sleep(0.05)


def summarise(samples: list[dict[str, float]]) -> dict[str, float]:
    stages = list(samples[0])
    summary = {stage: round(float(np.median([s[stage] for s in samples])), 3) for stage in stages}
    totals = [sum(s.values()) for s in samples]
    summary["total_p50"] = round(float(np.median(totals)), 3)
    summary["total_p90"] = round(float(np.percentile(totals, 90)), 3)
    # On a shared machine the fastest frame is the best estimate of the uncontended cost.
    summary["total_min"] = round(float(np.min(totals)), 3)
    summary["min"] = {
        stage: round(float(np.min([s[stage] for s in samples])), 3) for stage in stages
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    from dav2_ros.ros.transport import use_large_data_profile

    profile = use_large_data_profile()  # as depth_node does, before rclpy.init
    import rclpy

    rclpy.init()
    node = rclpy.create_node("hot_path_bench")
    pubs = None
    reader = None
    if not args.no_publish:
        reader = start_reader()  # Fast DDS defaults, as Nav2 or RViz
        pubs = Publishers(node)
        wait_for_match(pubs)
    cases = []
    load_start = os.getloadavg()[0]
    try:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            frame = Frame(width, height, args.input_size)
            engine = engine_stages(args, frame) if args.engine else None
            for color in (True, False):
                for stride in args.strides:
                    paths = {
                        "old": old_path(frame, pubs, color, stride, args.max_range),
                        "new": new_path(frame, pubs, color, stride, args.max_range),
                    }
                    if engine is not None:
                        paths["engine"] = engine
                    samples: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
                    for index in range(args.warmup + args.iterations):
                        for name, run in paths.items():  # round robin: same load for both
                            stages = run()
                            if index >= args.warmup:
                                samples[name].append(stages)
                    case = {
                        "size": f"{width}x{height}",
                        "color": color,
                        "stride": stride,
                        **{name: summarise(s) for name, s in samples.items()},
                    }
                    if engine is not None:
                        case["engine_description"] = engine.description
                    cases.append(case)
                    print(format_case(case), flush=True)
    finally:
        if reader is not None:
            stop_reader(reader)
        node.destroy_node()
        rclpy.shutdown()
    result = {
        "bench": "node_hot_path",
        "command": " ".join(
            ["bench/node_hot_path.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": today(),
        "machine": machine(load_start),
        "fast_dds_profile": profile.reason,
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


def markdown_table(result: dict) -> str:
    """The README table: per-stage p50 ms, old → new, one row per case."""
    stages = ["decode", "resize", "metric", "depth_msg", "camera_info", "cloud", "publish"]
    head = "| case | " + " | ".join(stages) + " | total p50 (p90) | total min |"
    lines = [head, "|" + "---|" * (len(stages) + 3)]
    for case in result["cases"]:
        old, new = case["old"], case["new"]
        label = f"{case['size']} {'xyz+rgb' if case['color'] else 'xyz'} s{case['stride']}"
        cells = [f"{old[s]:.1f} → {new[s]:.1f}" if s in old else "" for s in stages]
        total = (
            f"**{old['total_p50']:.1f} ({old['total_p90']:.0f}) → "
            f"{new['total_p50']:.1f} ({new['total_p90']:.0f})**"
        )
        fastest = f"{old['total_min']:.1f} → {new['total_min']:.1f}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {total} | {fastest} |")
    return "\n".join(lines)


def format_case(case: dict) -> str:
    head = f"{case['size']} {'xyz+rgb' if case['color'] else 'xyz'} stride {case['stride']}:"
    parts = []
    for name in ("old", "new", "engine"):
        if name in case:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in case[name].items() if k != "min")
            parts.append(f"  {name}: {stages}")
    return "\n".join([head, *parts])


if __name__ == "__main__":
    sys.exit(main())
