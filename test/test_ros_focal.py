"""The node's focal correction over real Fast DDS: a checkpoint that records its canonical
focal length publishes metres × f / f_canonical, f from each frame's camera_info; with no
camera_info the metres stay the network's, and the node says so once.

The tests run in file order on one node: the first sends no camera_info at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from sensor_msgs.msg import Image
from test_ros_support import (
    TINY_INPUT_SIZE,
    NodeProcess,
    RosClient,
    camera_client,
    camera_info_msg,
    exchange,
    image_msg,
    running_node,
    save_tiny_checkpoint,
    scene_rgb,
    stamp_ns,
)

pytestmark = pytest.mark.ros

NS = "/cam_focal"
FRAME = "cam_focal_optical_frame"
HEIGHT, WIDTH = 120, 160  # network 126 x 168 at input 126: both sides x 1.05
CANONICAL_PX = 105.0
UNCORRECTED_TEXT = "metric depth not corrected to the camera's focal length"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), canonical_focal_px=CANONICAL_PX)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, checkpoint) -> Iterator[NodeProcess]:
    values = {
        "model.checkpoint": str(checkpoint),
        "engine.backend": "torch",
        "engine.threads": 1,
        "output.resolution": "model",
        "temporal.mode": "none",  # each frame as predicted: outputs compared frame by frame
    }
    with running_node(tmp_path_factory.mktemp("node"), values, namespace=NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with camera_client(NS, {"depth": Image}) as ros:
        yield ros


@pytest.fixture(scope="module")
def network_m(checkpoint) -> np.ndarray:
    """The network's own metres for the test image, computed here, outside the node."""
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model.checkpoints import load_model

    spec = EngineSpec("torch", "cpu", options={"threads": 1})
    estimator = DepthEstimator(load_model(checkpoint).model, spec, TINY_INPUT_SIZE)
    return estimator.predict(scene_rgb(HEIGHT, WIDTH), (0, 0)).values


_stamp = [1_800_000_000_000_000_000]


def frame() -> Image:
    _stamp[0] += 33_000_000
    return image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", _stamp[0], FRAME)


def depth_of(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def depth_once_info_applies(client: RosClient, fx: float, expected: np.ndarray) -> np.ndarray:
    """Publish camera_info with focal length ``fx`` and images until the depth shows it
    (the node uses the latest camera_info it received); that depth."""
    info = camera_info_msg(WIDTH, HEIGHT, [fx, 0.0, 80.0, 0.0, fx, 60.0, 0.0, 0.0, 1.0], FRAME)
    deadline, ratio = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        client.info_pub.publish(info)
        time.sleep(0.1)
        depth = depth_of(exchange(client, frame()))
        if np.allclose(depth, expected, rtol=1e-4):
            return depth
        ratio = float(np.median(depth / expected))
    raise AssertionError(f"fx {fx}: depth / expected stayed {ratio}")


def test_without_camera_info_the_metres_are_the_networks_and_the_node_says_so_once(
    client: RosClient, node: NodeProcess, network_m: np.ndarray
) -> None:
    assert "focal correction: on, metres x f / 105 px" in node.log()
    for _ in range(3):
        depth = depth_of(exchange(client, frame()))
        np.testing.assert_allclose(depth, network_m, rtol=1e-4)
    assert node.log().count(UNCORRECTED_TEXT) == 1, node.log()[-2000:]
    assert "(no camera_info received)" in node.log()


def test_camera_info_focal_lengths_give_depth_in_their_ratio(
    client: RosClient, node: NodeProcess, network_m: np.ndarray
) -> None:
    # f at the network input = fx x 1.05: 150 px -> 157.5 = 1.5 x canonical.
    at_150 = depth_once_info_applies(client, 150.0, network_m * 1.5)
    at_300 = depth_once_info_applies(client, 300.0, network_m * 3.0)
    np.testing.assert_allclose(at_300 / at_150, 2.0, rtol=1e-4)
    assert stamp_ns(exchange(client, frame())) == _stamp[0]  # still serving
