"""Shared by the ROS benches (node_hot_path, message_data, transport, input_qos): a reader
process with Fast DDS defaults, subscribed as Nav2 or RViz subscribe, and a camera."""

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


# A camera: rgb8 image + camera_info at a rate, reliable or best effort, with Fast DDS's
# defaults or the node's shared-memory profile. argv: rate width height reliability
# namespace profile(on|off). Prints "ready", and "sent N" when stopped.
CAMERA = r"""
import sys, numpy as np, rclpy
rate, width, height = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
reliability, namespace, profile = sys.argv[4], sys.argv[5], sys.argv[6]
if profile == "on":
    from dav2_ros.ros.transport import use_large_data_profile
    use_large_data_profile()
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
rclpy.init()
node = rclpy.create_node("bench_camera", namespace=namespace)
best_effort = reliability == "best_effort"
policy = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
qos = QoSProfile(depth=5 if best_effort else 10, reliability=policy)
image_pub = node.create_publisher(Image, "image", qos)
info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
v, u = np.mgrid[0:height, 0:width]
rgb = np.stack([u * 255 // width, v * 255 // height, (3 * u + v) % 256], -1).astype(np.uint8)
image = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=rgb.tobytes())
f = 0.8 * width
info = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5)
info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
info.p = [f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
sent = 0
def tick():
    global sent
    stamp = node.get_clock().now().to_msg()
    image.header.stamp = info.header.stamp = stamp
    image.header.frame_id = info.header.frame_id = "camera_optical_frame"
    info_pub.publish(info)
    image_pub.publish(image)
    sent += 1
node.create_timer(1.0 / rate, tick)
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
    pass
except rclpy._rclpy_pybind11.RCLError:  # SIGINT shut the context down mid-spin
    if rclpy.ok():
        raise
print(f"sent {sent}", flush=True)
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
