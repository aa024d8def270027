"""A relative model publishes ``depth/relative`` and never ``depth`` or ``points``
(REP 118: disparity is not metres). The node runs in this process (constructed with
parameter overrides, as a composable node would be), talking over real Fast DDS."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from test_ros_support import (
    RosClient,
    camera_info_msg,
    image_msg,
    ros_client,
    save_tiny_checkpoint,
    scene_rgb,
    stamp_ns,
)

from dav2_ros.ros.node import DepthNode

pytestmark = pytest.mark.ros

NS = "/cam_rel"
HEIGHT, WIDTH = 90, 120


def test_relative_model_publishes_only_relative_depth(tmp_path: Path) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path, depth_type="relative")
    with ros_client(namespace=NS) as client:
        depth_node = DepthNode(
            namespace=NS,
            parameter_overrides=[
                Parameter("model.checkpoint", value=str(checkpoint)),
                Parameter("engine.backend", value="torch"),
                Parameter("engine.threads", value=1),
            ],
        )
        try:
            client._executor.add_node(depth_node)
            check_relative_outputs(client)
        finally:
            depth_node.stop()
            depth_node.destroy_node()


def check_relative_outputs(client: RosClient) -> None:
    for topic, msg_type in [("depth", Image), ("depth/relative", Image), ("points", PointCloud2)]:
        client.subscribe(topic, msg_type)
    image_pub = client.node.create_publisher(Image, "image", 5)
    info_pub = client.node.create_publisher(CameraInfo, "camera_info", 5)
    info_pub.publish(camera_info_msg(WIDTH, HEIGHT, [100, 0, 60, 0, 100, 45, 0, 0, 1], "f"))
    frame = image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", 123_000_000_007, "rel_frame")
    relative = None
    deadline = time.monotonic() + 40
    while relative is None and time.monotonic() < deadline:
        image_pub.publish(frame)
        relative = client.wait_for("depth/relative", timeout_s=1.5)
    assert relative is not None, "no depth/relative from a relative model"
    assert stamp_ns(relative) == 123_000_000_007 and relative.header.frame_id == "rel_frame"
    assert relative.encoding == "32FC1" and (relative.width, relative.height) == (WIDTH, HEIGHT)
    values = np.frombuffer(bytes(relative.data), np.float32)
    assert np.isfinite(values).all() and (values >= 0).all()
    time.sleep(1.0)
    assert client.messages("depth") == [] and client.messages("points") == []
