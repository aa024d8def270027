"""Soak run of the depth node: a camera stream at 30 Hz for N minutes, nothing may leak.

Starts ``depth_node`` as its own process (as a user would), publishes ``image`` +
``camera_info`` from this process over real Fast DDS (loopback only, own domain id),
and every ``--bad-every-s`` seconds a malformed image, which must be rejected without
harm. Measures frames in/out, drops and rejections (from /diagnostics), latency
(publish → depth received) p50/p99, the node's RSS over time, exceptions (tracebacks or
unexpected frame failures in the node's log: must be 0) and the time SIGINT takes to
stop the node. Writes JSON (default ``bench/results/soak.json``) and prints a summary.

    .venv/bin/python bench/soak.py --minutes 10
    .venv/bin/python bench/soak.py --minutes 1 --out /tmp/soak.json   # a quick check

Without ``--checkpoint`` a random-weight ``vitt`` at input size 126 is used: the soak
tests the node (memory, queues, error paths), not the network's accuracy.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import yaml
from _record import BenchRun, write_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results" / "soak.json"
DEPTH_NODE = Path(sys.executable).parent / "depth_node"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="stream duration")
    parser.add_argument("--rate-hz", type=float, default=30.0, help="camera frame rate")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--checkpoint", default="", help="model; '' = random tiny vitt")
    parser.add_argument("--backend", default="torch", help="engine.backend of the node")
    parser.add_argument("--input-size", type=int, default=126, help="engine.input_size")
    parser.add_argument("--threads", type=int, default=1, help="engine.threads of the node")
    parser.add_argument("--bad-every-s", type=float, default=10.0, help="0 = no bad frames")
    parser.add_argument("--rss-every-s", type=float, default=10.0, help="RSS sample period")
    parser.add_argument("--warmup-s", type=float, default=20.0, help="excluded from RSS growth")
    parser.add_argument("--domain-id", type=int, default=100 + os.getpid() % 100)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def tiny_checkpoint(directory: Path, input_size: int) -> Path:
    """A random-weight ``vitt`` metric model with a non-constant output."""
    import torch

    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.checkpoints import ModelMeta, save_model
    from dav2_ros.model.random_weights import randomize_weights_

    model = randomize_weights_(DepthAnythingV2("vitt", "metric", 10.0), seed=0)
    meta = ModelMeta(
        encoder="vitt",
        depth_type="metric",
        max_depth=10.0,
        input_size=input_size,
        provenance={"note": "random weights for the soak run"},
    )
    with torch.no_grad():
        return save_model(model, meta, directory / "soak_tiny")


def write_params(path: Path, args: argparse.Namespace, checkpoint: str) -> Path:
    params = {
        "model": {"checkpoint": checkpoint},
        "engine": {
            "backend": args.backend,
            "input_size": args.input_size,
            "threads": args.threads,
        },
        "output": {"resolution": "input"},
        "points": {"stride": 2},
    }
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return path


def camera_frames(height: int, width: int, count: int = 30) -> list[np.ndarray]:
    """A moving gradient scene (different pixels every frame), HxWx3 uint8."""
    v, u = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        shift = 7 * i
        frame = np.stack([(u + shift) % 256, (v + 2 * shift) % 256, (u + v + shift) % 256], -1)
        frames.append(frame.astype(np.uint8))
    return frames


class Camera:
    """Publishes images + camera_info, collects depth and /diagnostics (spins a thread)."""

    def __init__(self, width: int, height: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        self.width, self.height = width, height
        self.node = rclpy.create_node("dav2_soak_camera")
        self.image_pub = self.node.create_publisher(Image, "image", qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(
            CameraInfo, "camera_info", qos_profile_sensor_data
        )
        self.sent_at: dict[int, float] = {}
        self.latencies_s: list[float] = []
        self.depth_count = 0
        self.diagnostics: dict[str, str] = {}
        self._lock = threading.Lock()
        self.node.create_subscription(Image, "depth", self._on_depth, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        self._Image, self._CameraInfo = Image, CameraInfo

    def _on_depth(self, msg) -> None:
        now = time.monotonic()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._lock:
            sent = self.sent_at.pop(stamp, None)
            if sent is not None:
                self.depth_count += 1
                self.latencies_s.append(now - sent)

    def _on_diag(self, msg) -> None:
        with self._lock:
            self.diagnostics = {kv.key: kv.value for s in msg.status for kv in s.values}

    def publish(self, rgb: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> None:
        header_sec, header_nsec = divmod(stamp_ns, 1_000_000_000)
        image = self._Image(
            height=rgb.shape[0],
            width=rgb.shape[1],
            encoding=encoding,
            step=rgb.shape[1] * 3,
            data=rgb.tobytes(),
        )
        image.header.stamp.sec, image.header.stamp.nanosec = header_sec, header_nsec
        image.header.frame_id = "soak_camera_optical_frame"
        info = self._CameraInfo(width=self.width, height=self.height)
        info.header = image.header
        f = 0.8 * self.width
        info.k = [f, 0.0, self.width / 2, 0.0, f, self.height / 2, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, self.width / 2, 0.0, 0.0, f, self.height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
        if encoding == "rgb8":
            with self._lock:
                self.sent_at[stamp_ns] = time.monotonic()
                # Stamps never answered (dropped frames) must not pile up here either.
                if len(self.sent_at) > 1000:
                    for old in sorted(self.sent_at)[:500]:
                        del self.sent_at[old]
        self.info_pub.publish(info)
        self.image_pub.publish(image)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2)
        self.node.destroy_node()


def node_exceptions(log: str) -> dict[str, int]:
    return {
        "tracebacks": log.count("Traceback"),
        "frame_failed": log.count("frame failed"),
        "engine_failed": log.count("engine failed"),
    }


def run(args: argparse.Namespace) -> dict:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    work = Path(tempfile.mkdtemp(prefix="dav2_soak_"))
    checkpoint = args.checkpoint or str(tiny_checkpoint(work, args.input_size))
    params = write_params(work / "params.yaml", args, checkpoint)
    log_path = work / "node.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    with open(log_path, "wb") as log:
        node = subprocess.Popen(
            [str(DEPTH_NODE), "--ros-args", "--params-file", str(params)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    import rclpy

    rclpy.init()
    camera = Camera(args.width, args.height)
    frames = camera_frames(args.height, args.width)
    bad = np.zeros((args.height, args.width, 3), np.uint8)
    process = psutil.Process(node.pid)
    rss: list[tuple[float, float]] = []
    sent = bad_sent = 0
    period_s = 1.0 / args.rate_hz
    duration_s = args.minutes * 60
    stamp_ns = 1_900_000_000_000_000_000
    try:
        deadline = time.monotonic() + 120
        while "ready:" not in log_path.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"depth_node did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        start = time.monotonic()
        next_rss = next_bad = 0.0
        while (elapsed := time.monotonic() - start) < duration_s:
            stamp_ns += int(period_s * 1e9)
            camera.publish(frames[sent % len(frames)], stamp_ns)
            sent += 1
            if args.bad_every_s and elapsed >= next_bad:
                next_bad += args.bad_every_s
                camera.publish(bad, stamp_ns + 1, encoding="8UC3")  # must be rejected
                bad_sent += 1
            if elapsed >= next_rss:
                next_rss += args.rss_every_s
                rss.append((round(elapsed, 1), round(process.memory_info().rss / 2**20, 1)))
            if node.poll() is not None:
                raise RuntimeError(f"depth_node died:\n{log_path.read_text()[-3000:]}")
            time.sleep(max(0.0, start + sent * period_s - time.monotonic()))
        elapsed_s = time.monotonic() - start
        time.sleep(2.0)  # outputs in flight, one more /diagnostics
        rss.append(
            (round(time.monotonic() - start, 1), round(process.memory_info().rss / 2**20, 1))
        )
        with camera._lock:
            diagnostics = dict(camera.diagnostics)
            latencies_ms = np.array(camera.latencies_s) * 1e3
            depth_out = camera.depth_count
    finally:
        stop_start = time.monotonic()
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
        try:
            exit_code = node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
            exit_code = node.wait()
        stop_s = time.monotonic() - stop_start
        camera.close()
        rclpy.shutdown()
    log = log_path.read_text(errors="replace")
    warm = [mb for t, mb in rss if t >= args.warmup_s] or [rss[-1][1]]
    result = {
        "config": {
            "minutes": args.minutes,
            "rate_hz": args.rate_hz,
            "image": f"{args.width}x{args.height} rgb8",
            "model": args.checkpoint or f"random vitt metric, input_size {args.input_size}",
            "backend": args.backend,
            "threads": args.threads,
            "bad_frame_every_s": args.bad_every_s,
            "host": f"{platform.node()} {os.cpu_count()} cpus",
            "load_avg_at_end": [round(x, 1) for x in os.getloadavg()],
        },
        "frames_sent": sent,
        "sent_rate_hz": round(sent / elapsed_s, 2),
        "bad_frames_sent": bad_sent,
        "frames_received_by_node": int(diagnostics.get("frames_received", -1)),
        "frames_dropped_stale": int(diagnostics.get("frames_dropped", -1)),
        "frames_rejected": int(diagnostics.get("frames_rejected", -1)),
        "depth_out": depth_out,
        "output_rate_hz": round(depth_out / elapsed_s, 2),
        "latency_ms": {
            "p50": round(float(np.percentile(latencies_ms, 50)), 1) if depth_out else None,
            "p99": round(float(np.percentile(latencies_ms, 99)), 1) if depth_out else None,
            "max": round(float(latencies_ms.max()), 1) if depth_out else None,
        },
        "rss_mb": rss,
        "rss_growth_after_warmup_pct": round(100 * (warm[-1] - warm[0]) / warm[0], 2),
        "exceptions": node_exceptions(log),
        "stop_s": round(stop_s, 2),
        "exit_code": exit_code,
        "node_log": str(log_path),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    result = run(args)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_results(args.out, run_record.record([result], settings))
    lat = result["latency_ms"]
    exceptions = sum(result["exceptions"].values())
    print(
        f"soak {args.minutes:g} min at {result['sent_rate_hz']} Hz: {result['frames_sent']} frames "
        f"in, {result['depth_out']} depth out, {result['frames_dropped_stale']} dropped (stale), "
        f"{result['frames_rejected']} rejected of {result['bad_frames_sent']} bad; latency p50 "
        f"{lat['p50']} ms p99 {lat['p99']} ms; RSS growth {result['rss_growth_after_warmup_pct']} "
        f"%; exceptions {exceptions}; SIGINT stop {result['stop_s']} s -> {args.out}"
    )
    ok = exceptions == 0 and result["exit_code"] == 0 and result["depth_out"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
