"""Shared by the ROS benches (node_hot_path, message_data, transport): a reader process
with Fast DDS defaults, and the machine record and JSON file every result gets."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# A reader that subscribes like Nav2 (best effort) and keeps the serialized bytes only, so
# its own deserialisation does not compete with the timed process for the CPU.
READER = """
import sys, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
rclpy.init()
node = rclpy.create_node("bench_reader")
for topic, kind in (("depth", Image), ("depth/camera_info", CameraInfo), ("points", PointCloud2)):
    node.create_subscription(kind, topic, lambda m: None, qos_profile_sensor_data, raw=True)
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
    pass
"""


def default_fast_dds_env() -> dict[str, str]:
    """This process's environment without a Fast DDS profile: a reader as Nav2 or RViz."""
    return {k: v for k, v in os.environ.items() if "PROFILES_FILE" not in k}


def start_reader() -> subprocess.Popen:
    """The best-effort reader of depth, depth/camera_info and points, subscribed."""
    reader = subprocess.Popen(
        [sys.executable, "-c", READER], env=default_fast_dds_env(), stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    return reader


def stop_reader(reader: subprocess.Popen) -> None:
    reader.terminate()
    try:
        reader.wait(timeout=10)
    except subprocess.TimeoutExpired:  # stuck in DDS teardown on a loaded machine
        reader.kill()
        reader.wait(timeout=10)


def machine(load_start: float) -> dict:
    """What a reader of the numbers needs: CPU, cores, how busy the machine was."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1m_start": round(load_start, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }


def today() -> str:
    return datetime.date.today().isoformat()


def save(record: dict, out: Path | None, stem: str) -> Path:
    """Write ``record`` to ``out`` or ``bench/results/<stem>-<date>.json``."""
    path = out or RESULTS_DIR / f"{stem}-{record['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
