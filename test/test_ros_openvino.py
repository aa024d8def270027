"""The depth node with ``engine.backend: openvino`` serves depth over real Fast DDS: the
same metres as the torch backend computes for the same checkpoint, and /diagnostics
names the engine it built."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image
from test_ros_robustness import running_node, values_of
from test_ros_support import (
    NodeProcess,
    RosClient,
    camera_client,
    exchange,
    image_msg,
    save_tiny_checkpoint,
    scene_rgb,
    stamp_ns,
)

pytest.importorskip("openvino")
pytestmark = pytest.mark.ros

NS = "/cam_ov"
FRAME = "cam_ov_optical_frame"
HEIGHT, WIDTH = 120, 160


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("openvino_model"))


@pytest.fixture(scope="module")
def node(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("openvino_node")
    params = {
        "model.checkpoint": str(checkpoint),
        "engine.backend": "openvino",
        "engine.precision": "fp32",
        "engine.threads": 1,
        "output.resolution": "model",
        "temporal.mode": "none",
        "engine.warmup_width": WIDTH,
        "engine.warmup_height": HEIGHT,
    }
    with running_node(work, params, {"DAV2_CACHE_DIR": str(work / "cache")}, NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with camera_client(NS, {"depth": Image}) as ros:
        yield ros


def torch_depth(checkpoint: Path, rgb: np.ndarray) -> np.ndarray:
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model.checkpoints import load_model

    loaded = load_model(str(checkpoint))
    estimator = DepthEstimator(loaded.model, EngineSpec("torch"), loaded.meta.input_size)
    return estimator.predict(rgb, (0, 0)).values


def test_openvino_node_serves_the_depth_torch_computes(
    client: RosClient, node: NodeProcess, checkpoint: Path
) -> None:
    rgb = scene_rgb(HEIGHT, WIDTH)
    stamp = 1_900_000_000_000_000_000
    depth = exchange(client, image_msg(rgb, "rgb8", stamp, FRAME))
    assert stamp_ns(depth) == stamp and depth.header.frame_id == FRAME
    values = np.frombuffer(bytes(depth.data), np.float32).reshape(depth.height, depth.width)
    expected = torch_depth(checkpoint, rgb)
    assert values.shape == expected.shape
    assert np.linalg.norm(values - expected) / np.linalg.norm(expected) <= 1e-4
    assert "engine for 160x120 images: openvino cpu fp32 126x168" in node.log(), node.log()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        diagnostics = [values_of(m) for m in client.messages("/diagnostics")]
        served = [v for v in diagnostics if v.get("engine_backend") == "openvino"]
        if served:
            break
        time.sleep(0.2)
    assert served, diagnostics[-1:]
    assert served[-1]["engine_precision"] == "fp32"
    assert '"threads": 1' in served[-1]["engine_options"]
