"""How many of a stock camera's frames reach the node (``frames_received``), by camera QoS.

Per case, three processes on loopback with their own ROS_DOMAIN_ID:

- a camera publishing rgb8 ``image`` + ``camera_info`` at the rate, reliable (usb_cam,
  RealSense, v4l2_camera by default) or best effort (SensorDataQoS), with Fast DDS's
  default configuration, or with the node's shared-memory profile (``camera_profile``);
- ``depth_node`` started as a user starts it: ``--params-file config/depth.yaml`` (the
  bundled model; ``qos.input_reliability`` as the file says, ``auto``, unless the case
  overrides it), started before or after the camera;
- a reader of ``depth`` (so the node works) and ``/diagnostics``.

The share is the growth of the node's ``frames_received`` between two /diagnostics
messages (timed by the reader) over the frames the camera sent in that time (its rate).
``frames_received`` counts frames that reached the node's callback, before its own
newest-frame mailbox drops any: it measures transport, not the model's speed.

    .venv/bin/python bench/input_qos.py                      # the docs' table, ~15 min
    .venv/bin/python bench/input_qos.py --sizes 640x480 --rates 30 --duration 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import BenchRun, default_path, write_results
from ros_bench_support import CAMERA, default_fast_dds_env
from tables import table_of

REPO = Path(__file__).resolve().parent.parent
DEPTH_NODE = Path(sys.executable).parent / "depth_node"
NAMESPACE = "/qos_bench"

READER = r"""
import json, sys, time, rclpy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node("qos_bench_reader", namespace=sys.argv[1])
node.create_subscription(Image, "depth", lambda m: None, 10, raw=True)
def on_diagnostics(msg):
    for status in msg.status:
        values = {kv.key: kv.value for kv in status.values}
        if status.name.startswith("dav2_depth") and "frames_received" in values:
            with open(sys.argv[2], "a") as f:
                f.write(json.dumps([time.monotonic(), values]) + "\n")
node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
    pass
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    parser.add_argument("--rates", nargs="+", type=float, default=[15.0, 30.0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds a case")
    parser.add_argument("--params-file", type=Path, default=REPO / "config" / "depth.yaml")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


# (camera reliability, camera profile, node input reliability: "" = depth.yaml's)
CAMERAS = [
    ("reliable", False, ""),
    ("best_effort", False, ""),
    ("best_effort", True, ""),
    ("reliable", False, "best_effort"),  # the earlier default, for comparison
]


def env_for(domain_id: int) -> dict[str, str]:
    env = {**default_fast_dds_env(), "ROS_DOMAIN_ID": str(domain_id)}
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return env


def start(args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_ready(process: subprocess.Popen) -> None:
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    return out or ""


def samples(path: Path) -> list[tuple[float, dict]]:
    """The reader's (time.monotonic(), /diagnostics values) lines so far."""
    try:
        return [tuple(json.loads(line)) for line in path.read_text().splitlines()]
    except OSError:
        return []


def wait_for_sample(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not samples(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the node sent no /diagnostics in {timeout_s} s")
        time.sleep(0.2)


def run_case(case: dict, args: argparse.Namespace, work: Path, domain_id: int) -> dict:
    width, height = (int(v) for v in case["size"].split("x"))
    diag = work / f"diag-{domain_id}.jsonl"
    node_args = [str(DEPTH_NODE), "--ros-args", "-r", f"__ns:={NAMESPACE}",
                 "--params-file", str(args.params_file)]  # fmt: skip
    if case["node_input"]:
        node_args += ["-p", f"qos.input_reliability:={case['node_input']}"]
    profile = "on" if case["camera_profile"] else "off"
    camera_args = [sys.executable, "-c", CAMERA, str(case["rate_hz"]), str(width), str(height),
                   case["camera"], NAMESPACE, profile]  # fmt: skip
    node_env = {**env_for(domain_id), "DAV2_CACHE_DIR": str(work / "engines")}
    reader = start([sys.executable, "-c", READER, NAMESPACE, str(diag)], env_for(domain_id))
    wait_ready(reader)
    camera = node = None
    try:
        if case["camera_first"]:
            camera = start(camera_args, env_for(domain_id))
            wait_ready(camera)
        node = start(node_args, node_env, work / f"node-{domain_id}.log")
        wait_for_sample(diag, 180)  # configured (engine built) and publishing
        if not case["camera_first"]:
            camera = start(camera_args, env_for(domain_id))
            wait_ready(camera)
        start_s = time.monotonic() + 2.0  # discovery and the QoS re-match settle
        time.sleep(2.0 + args.duration + 1.2)
        end_s = start_s + args.duration
        window = [(t, v) for t, v in samples(diag) if start_s <= t <= end_s + 1.1]
    finally:
        for process in (camera, node, reader):
            if process is not None:
                stop(process)
    (t0, first), (t1, last) = window[0], window[-1]
    received = int(last["frames_received"]) - int(first["frames_received"])
    expected = (t1 - t0) * case["rate_hz"]
    return {
        **case,
        "window_s": round(t1 - t0, 2),
        "expected": round(expected),
        "received": received,
        "share": min(1.0, received / expected),
        "input_reliability": last.get("input_reliability", ""),
        "input_loss_percent": float(last.get("input_loss_percent", "nan")),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    cases = [
        {
            "size": size,
            "rate_hz": rate,
            "camera": camera,
            "camera_profile": profile,
            "node_input": node_input,
            "camera_first": first,
        }  # fmt: skip
        for size, rate, (camera, profile, node_input), first in itertools.product(
            args.sizes, args.rates, CAMERAS, (True, False)
        )
        if not (node_input and not first)  # the comparison row: camera first only
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, case in enumerate(cases):
            row = run_case(case, args, Path(tmp), 60 + (os.getpid() + index) % 40)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    document = run_record.record(rows, settings)
    print(table_of(document))
    write_results(args.out or default_path("input-qos"), document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
