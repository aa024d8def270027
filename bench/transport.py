"""Do `depth` and `points` reach navigation-stack readers? With and without the Fast DDS profile.

Three processes per run, all on loopback with their own ROS_DOMAIN_ID:

- ``depth_node`` started as a user starts it (``--params-file config/depth.yaml``, the
  bundled model, namespace ``/camera``), with the shared-memory profile (``on``) or
  with ``DAV2_FASTDDS_PROFILE=off`` (``off``: Fast DDS defaults);
- a camera publishing 640x480 rgb8 + camera_info best effort (SensorDataQoS) at the
  rate; it always uses the profile, so the node's input is the same in both runs and
  only the node's output transport differs;
- the readers, with Fast DDS's default configuration (as Nav2 or RViz): a best-effort
  (SensorDataQoS) and a reliable subscription to each of ``depth`` and ``points``, plus
  ``/diagnostics``.

Reported per run: frames the node published in the window (its own counters on
/diagnostics: received − dropped − rejected − skipped, or the frames some reader got if
that is more: the counters are sampled once a second), how many each reader got and the
share, and latency (middleware receipt − image stamp) p50 minus the node's engine p50
(preprocess + infer + postprocess, from /diagnostics).

    .venv/bin/python bench/transport.py                       # 20 s per run, 10 and 30 Hz
    .venv/bin/python bench/transport.py --duration 5 --rates 10 --out /tmp/t.json

Writes JSON (default ``bench/results/transport-<date>.json``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _record import BenchRun, default_path, write_results
from ros_bench_support import CAMERA
from tables import table_of

REPO = Path(__file__).resolve().parent.parent
DEPTH_NODE = Path(sys.executable).parent / "depth_node"
NAMESPACE = "/camera"

READERS = r"""
import json, struct, sys, time, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, PointCloud2
out_path = sys.argv[2]
rclpy.init()
node = rclpy.create_node("bench_readers", namespace=sys.argv[1])
reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
log = {"receipts": [], "diagnostics": []}
def keep(topic, qos_name):
    def callback(raw, info):
        # CDR: 4-byte encapsulation, then header.stamp sec (int32) and nanosec (uint32).
        sec, nanosec = struct.unpack_from("<iI", raw, 4)
        received = info.get("received_timestamp") or time.time_ns()
        log["receipts"].append([topic, qos_name, sec * 10**9 + nanosec, received, len(raw)])
    return callback
for topic, kind in (("depth", Image), ("points", PointCloud2)):
    node.create_subscription(kind, topic, keep(topic, "best_effort"), qos_profile_sensor_data,
                             raw=True)
    node.create_subscription(kind, topic, keep(topic, "reliable"), reliable, raw=True)
def on_diagnostics(msg):
    for status in msg.status:
        if status.name.startswith("dav2_depth"):
            values = {kv.key: kv.value for kv in status.values}
            log["diagnostics"].append([time.time_ns(), values])
node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
    pass
except rclpy._rclpy_pybind11.RCLError:  # SIGINT shut the context down mid-spin
    if rclpy.ok():
        raise
with open(out_path, "w") as f:
    json.dump(log, f)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--rates", nargs="+", type=float, default=[10.0, 30.0])
    parser.add_argument("--profiles", nargs="+", default=["off", "on"], choices=["on", "off"])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--params-file", type=Path, default=REPO / "config" / "depth.yaml")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="after the first depth")
    parser.add_argument(
        "--publication-mode",
        choices=["SYNCHRONOUS", "ASYNCHRONOUS"],
        help="RMW_FASTRTPS_PUBLICATION_MODE for the node (default: its choice)",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


def run_env(domain_id: int, profile: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "PROFILES_FILE" not in k}
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(domain_id),
        PYTHONUNBUFFERED="1",
        DAV2_FASTDDS_PROFILE=profile,
    )
    env.pop("ROS_LOCALHOST_ONLY", None)
    env.pop("RMW_IMPLEMENTATION", None)
    env.pop("RMW_FASTRTPS_PUBLICATION_MODE", None)  # the node chooses, as for a user
    return env


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def one_run(args: argparse.Namespace, profile: str, rate_hz: float, work: Path) -> dict:
    """Node + camera + readers for warm-up plus ``duration``; returns the raw log."""
    domain_id = 120 + (os.getpid() + int(rate_hz) + (profile == "on")) % 90
    node_env = run_env(domain_id, profile)
    if args.publication_mode:
        node_env["RMW_FASTRTPS_PUBLICATION_MODE"] = args.publication_mode
    reader_env = run_env(domain_id, "off")  # the readers: Fast DDS defaults
    camera_env = run_env(domain_id, "on")
    # A camera driver given config/fastdds_large_data.xml, as docs/transport.md advises: the file
    # alone, with Fast DDS's default synchronous publication, whatever --publication-mode.
    camera_env["RMW_FASTRTPS_PUBLICATION_MODE"] = "SYNCHRONOUS"
    log_path = work / f"node-{profile}-{rate_hz:g}.log"
    out_path = work / f"readers-{profile}-{rate_hz:g}.json"
    node_cmd = [str(DEPTH_NODE), "--ros-args", "-r", f"__ns:={NAMESPACE}"]
    node_cmd += ["--params-file", str(args.params_file)]
    with open(log_path, "wb") as node_log:
        node = subprocess.Popen(node_cmd, env=node_env, stdout=node_log, stderr=subprocess.STDOUT)
    readers = subprocess.Popen(
        [sys.executable, "-c", READERS, NAMESPACE, str(out_path)],
        env=reader_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    camera = None
    try:
        assert readers.stdout is not None and readers.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while "ready:" not in log_path.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"depth_node did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        camera = subprocess.Popen(
            [sys.executable, "-c", CAMERA, str(rate_hz), str(args.width), str(args.height),
             "best_effort", NAMESPACE, "on"],
            env=camera_env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        # The first frame builds the engine (ONNX export on a first run): warm up after it.
        deadline = time.monotonic() + 300
        while "engine for" not in log_path.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no engine built:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(args.warmup_s)
        window_start_ns = time.time_ns()
        time.sleep(args.duration)
        window_end_ns = time.time_ns()
    finally:
        if camera is not None:
            stop(camera)
        time.sleep(1.0)  # the last frames reach the readers
        stop(readers)
        stop(node)
    log = json.loads(out_path.read_text())
    log["node_log"] = log_path.read_text(errors="replace").splitlines()[:3]
    log["window_ns"] = [window_start_ns, window_end_ns]
    return log


def summarise(log: dict, profile: str, rate_hz: float) -> dict:
    start_ns, end_ns = log["window_ns"]
    diagnostics = [(t, v) for t, v in log["diagnostics"] if start_ns <= t <= end_ns]
    if len(diagnostics) < 2:
        raise RuntimeError("fewer than 2 /diagnostics messages in the window")
    (t0, first), (t1, last) = diagnostics[0], diagnostics[-1]

    def processed(values: dict) -> int:
        keys = ("frames_dropped", "frames_rejected", "frames_skipped_no_subscriber")
        return int(values["frames_received"]) - sum(int(values[k]) for k in keys)

    counted = processed(last) - processed(first)  # by processing time
    engine_ms_p50 = float(last["engine_ms_p50"])
    # Receipts are selected by image stamp: frames stamped within the window shifted back by
    # the typical stamp-to-receipt delay, so the selection matches the node's counters.
    delay_ns = int(np.median([r[3] - r[2] for r in log["receipts"] if r[1] == "reliable"]))
    stamp_window = (t0 - delay_ns, t1 - delay_ns)
    outputs = {}
    for topic in ("depth", "points"):
        got = {
            qos: [r for r in log["receipts"] if r[0] == topic and r[1] == qos
                  and stamp_window[0] < r[2] <= stamp_window[1]]
            for qos in ("best_effort", "reliable")
        }  # fmt: skip
        # What some reader got was published; the node's counters may say more.
        published = max(counted, len({r[2] for rows in got.values() for r in rows}))
        row = {"published": published, "node_counted": counted}
        for qos, rows in got.items():
            latency_ms = [(r[3] - r[2]) / 1e6 for r in rows]
            sizes = sorted({r[4] for r in rows})
            p50 = float(np.median(latency_ms)) if latency_ms else float("nan")
            row[qos] = {
                "received": len({r[2] for r in rows}),
                "share": round(len({r[2] for r in rows}) / published, 3) if published else 0.0,
                "latency_ms_p50": round(p50, 1),
                "latency_minus_engine_ms_p50": round(p50 - engine_ms_p50, 1),
                "message_bytes": sizes[-1] if sizes else 0,
            }
        outputs[topic] = row
    return {
        "profile": profile,
        "rate_hz": rate_hz,
        "window_s": round((t1 - t0) / 1e9, 1),
        "camera_frames_received_by_node": int(last["frames_received"])
        - int(first["frames_received"]),
        "engine_ms_p50": engine_ms_p50,
        "engine": last.get("engine", ""),
        "node_latency_ms_p50": float(last["latency_p50_ms"]),
        # The node's own work per frame (all but preprocess + infer) and its stages, p50 over
        # the node's last 200 frames, from its /diagnostics at the end of the window.
        "node_work_ms_p50": float(last.get("work_ms_p50", "nan")),
        "node_stages_ms_p50": json.loads(last.get("stages_ms_p50", "{}")),
        "outputs": outputs,
        "node_log": log["node_log"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="dav2_transport_") as tmp:
        for rate_hz in args.rates:
            for profile in args.profiles:
                print(f"run: profile {profile}, {rate_hz:g} Hz, {args.duration:g} s", flush=True)
                run = summarise(one_run(args, profile, rate_hz, Path(tmp)), profile, rate_hz)
                runs.append(run)
                print(table_of(run_record.record([run])).splitlines()[-1], flush=True)
    settings = {
        "image": f"{args.width}x{args.height} rgb8",
        "params_file": os.path.relpath(args.params_file, REPO),
        "duration_s": args.duration,
        "publication_mode": args.publication_mode or "the node's choice",
        "note": args.note,
    }
    document = run_record.record(runs, settings)
    write_results(args.out or default_path("transport"), document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
