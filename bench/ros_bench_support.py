"""Shared by the ROS benches (node_hot_path, message_data): a reader process with Fast
DDS defaults, subscribed as Nav2 or RViz subscribe."""

from __future__ import annotations

import os
import subprocess
import sys

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
