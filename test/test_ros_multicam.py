"""Several cameras: one node per camera namespace, all configured by one params file
(its ``/**`` key matches every namespace). Both nodes run in this process (as composable
nodes would), talking over real Fast DDS; each answers only its own camera."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import Image
from test_ros_support import image_msg, save_tiny_checkpoint, scene_rgb, stamp_ns, write_params

from dav2_ros.ros.node import DepthNode

pytestmark = pytest.mark.ros

CAMERAS = {"/front": 111_000_000_001, "/rear": 222_000_000_002}  # namespace → stamp


def test_one_params_file_serves_a_node_per_camera_namespace(tmp_path: Path) -> None:
    params = write_params(
        tmp_path / "params.yaml",
        {
            "model.checkpoint": str(save_tiny_checkpoint(tmp_path)),
            "engine.backend": "torch",
            "engine.threads": 1,
            "output.resolution": "model",
        },
    )
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(params)], context=context)
    executor = MultiThreadedExecutor(context=context)
    nodes = []
    try:
        nodes = [DepthNode(namespace=ns, context=context) for ns in CAMERAS]
        client = rclpy.create_node("multicam_client", context=context)
        nodes.append(client)
        for node in nodes:
            executor.add_node(node)
        received: list[tuple[str, int]] = []
        publishers = {}
        for ns in CAMERAS:
            client.create_subscription(
                Image, f"{ns}/depth", lambda m, ns=ns: received.append((ns, stamp_ns(m))), 10
            )
            publishers[ns] = client.create_publisher(Image, f"{ns}/image", 5)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(received)) < len(CAMERAS):
            for ns, stamp in CAMERAS.items():
                publishers[ns].publish(image_msg(scene_rgb(60, 80), "rgb8", stamp, ns[1:]))
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
        assert set(received) == set(CAMERAS.items()), received
        # One /diagnostics publisher per node, as the ROS graph counts them.
        diagnostics = client.get_publishers_info_by_topic("/diagnostics")
        per_node = sorted((i.node_namespace, i.node_name) for i in diagnostics)
        assert per_node == sorted((ns, "dav2_depth") for ns in CAMERAS), per_node
        for node in nodes[:-1]:
            assert node.run.settings.output_resolution == "model", "params file not applied"
    finally:
        for node in nodes:
            if isinstance(node, DepthNode):
                node.stop()
            node.destroy_node()
        executor.shutdown()
        rclpy.shutdown(context=context)
