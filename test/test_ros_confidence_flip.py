"""Checkpoints without a confidence head over real Fast DDS: no ``depth/confidence`` by
default (and ``points.min_confidence`` is reported as having no effect); the flip
disagreement on the topic when ``model.confidence: flip`` asks for it. Each test starts
its own short-lived ``depth_node``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sensor_msgs.msg import Image, PointCloud2
from test_ros_confidence import HEIGHT, RATE_HZ, WIDTH, image_array, node_values
from test_ros_support import (
    TINY_INPUT_SIZE,
    RosClient,
    running_node,
    save_tiny_checkpoint,
    scene_rgb,
    streaming_client,
    wait_until,
)

from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.confidence import confidence_from_error, flip_disagreement
from dav2_ros.model.transforms import prepare_input, resize_output
from dav2_ros.ros.conversions import cloud_to_xyz

pytestmark = pytest.mark.ros


def diagnostic_values(client: RosClient) -> dict[str, str]:
    for msg in reversed(client.messages("/diagnostics")):
        for status in msg.status:
            if status.hardware_id == "dav2_depth":
                return {kv.key: kv.value for kv in status.values} | {"message": status.message}
    return {}


def test_without_a_head_there_is_no_topic_and_a_threshold_is_reported(tmp_path: Any) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path)
    values = node_values(checkpoint, **{"points.min_confidence": 0.5})
    with running_node(tmp_path, values, namespace="/cam_noconf") as process:
        assert "confidence off" in process.log()
        with streaming_client("/cam_noconf", {"points": PointCloud2}, "nc", RATE_HZ) as ros:
            assert wait_until(lambda: ros.messages("points"), 30), process.log()[-2000:]
            assert ros.node.count_publishers("/cam_noconf/depth/confidence") == 0
            assert ros.node.count_publishers("/cam_noconf/depth") == 1
            assert wait_until(
                lambda: "gives no confidence" in diagnostic_values(ros).get("message", ""), 10
            ), diagnostic_values(ros)
            cloud = ros.messages("points")[-1]
            assert np.isfinite(cloud_to_xyz(cloud)[:, 2]).all()  # nothing filtered


def test_flip_gives_any_checkpoint_a_confidence_topic(tmp_path: Any) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path)
    values = node_values(checkpoint, **{"model.confidence": "flip"})
    topics = {"depth/confidence": Image, "depth/relative": Image}
    with running_node(tmp_path, values, namespace="/cam_flip") as process:
        assert "confidence flip" in process.log()
        with streaming_client("/cam_flip", topics, "fl", RATE_HZ) as ros:
            assert wait_until(lambda: ros.messages("depth/confidence"), 30), process.log()
    model = load_model(checkpoint).model
    rgb = scene_rgb(HEIGHT, WIDTH)
    with torch.inference_mode():
        depth = model(torch.from_numpy(prepare_input(rgb, TINY_INPUT_SIZE)))[0].numpy()
        mirrored = model(torch.from_numpy(prepare_input(rgb[:, ::-1].copy(), TINY_INPUT_SIZE)))
    disagreement = flip_disagreement(depth, mirrored[0].numpy(), "metric")
    expected = confidence_from_error(resize_output(disagreement, HEIGHT, WIDTH))
    received = image_array(ros.messages("depth/confidence")[-1])
    np.testing.assert_allclose(received, expected, rtol=1e-3, atol=1e-3)
    assert received.min() < 1.0
