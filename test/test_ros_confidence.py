"""``depth/confidence`` and ``points.min_confidence`` over real Fast DDS.

One ``depth_node`` (own process) on a tiny metric checkpoint with a confidence head, fed
by a streaming camera: the topic carries exp(-expected error) with the depth's header,
and the runtime threshold NaNs points and scan beams from the next frame while ``depth``
keeps every pixel. Checkpoints without a head: ``test_ros_confidence_flip.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from test_ros_support import (
    SMALL_HEIGHT,
    SMALL_K,
    SMALL_WIDTH,
    TINY_INPUT_SIZE,
    NodeProcess,
    RosClient,
    running_node,
    save_tiny_checkpoint,
    scene_rgb,
    set_parameters,
    stamp_ns,
    streaming_client,
    tiny_node_values,
    wait_until,
)

from dav2_ros.geometry.laserscan import ScanGeometry, ScanSettings, depth_to_scan
from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.confidence import confidence_from_error
from dav2_ros.model.transforms import prepare_input, resize_output
from dav2_ros.ros.camera_info import lens_of
from dav2_ros.ros.conversions import cloud_to_xyz

pytestmark = pytest.mark.ros

NS = "/cam_conf"
NODE = f"{NS}/dav2_depth"
HEIGHT, WIDTH, K = SMALL_HEIGHT, SMALL_WIDTH, SMALL_K
RATE_HZ = 10.0
SCAN_RANGE_MAX_M = 100.0
TOPICS = {
    "depth": Image,
    "depth/confidence": Image,
    "depth/camera_info": CameraInfo,
    "points": PointCloud2,
    "scan": LaserScan,
}


def node_values(checkpoint: Any, **extra: Any) -> dict[str, Any]:
    """temporal.mode none: each frame as predicted, compared with the model's own output."""
    return tiny_node_values(
        checkpoint, **{"temporal.mode": "none", "scan.range_max": SCAN_RANGE_MAX_M, **extra}
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("conf_ckpt"), confidence_head=True)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, checkpoint: Any) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("conf_node")
    with running_node(work, node_values(checkpoint), namespace=NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with streaming_client(NS, TOPICS, "conf_optical", RATE_HZ) as ros:
        assert wait_until(lambda: ros.messages("depth/confidence"), 30), node.log()[-3000:]
        yield ros


def image_array(msg: Image) -> np.ndarray:
    assert msg.encoding == "32FC1" and msg.step == msg.width * 4 and not msg.is_bigendian
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def by_stamp(client: RosClient, topic: str) -> dict[int, Any]:
    return {stamp_ns(m): m for m in client.messages(topic)}


def expected_confidence(checkpoint: Any) -> np.ndarray:
    """exp(-expected error) of the camera's image, computed here from the checkpoint."""
    model = load_model(checkpoint).model
    batch = torch.from_numpy(prepare_input(scene_rgb(HEIGHT, WIDTH), TINY_INPUT_SIZE))
    with torch.inference_mode():
        _, log_error = model.depth_and_log_error(batch)
    return confidence_from_error(resize_output(log_error[0].exp().numpy(), HEIGHT, WIDTH))


def test_confidence_is_32fc1_in_unit_range_with_the_depths_header(
    client: RosClient, checkpoint: Any
) -> None:
    depths = by_stamp(client, "depth")
    paired = [m for m in client.messages("depth/confidence") if stamp_ns(m) in depths]
    assert paired
    msg = paired[-1]
    depth = depths[stamp_ns(msg)]
    assert msg.header.frame_id == depth.header.frame_id == "conf_optical"
    assert (msg.height, msg.width) == (depth.height, depth.width) == (HEIGHT, WIDTH)
    confidence = image_array(msg)
    assert 0.0 <= confidence.min() < confidence.max() <= 1.0
    np.testing.assert_allclose(confidence, expected_confidence(checkpoint), rtol=1e-4, atol=1e-5)


def frames_after(client: RosClient, topic: str, since_s: float) -> list[Any]:
    sent = dict(client.camera.sent)
    return [m for m in client.messages(topic) if sent.get(stamp_ns(m), 0.0) > since_s]


def set_and_collect(client: RosClient, values: dict[str, Any], frames: int = 3) -> float:
    for result in set_parameters(client, NODE, values):
        assert result.successful, result.reason
    answered = time.monotonic()
    assert wait_until(lambda: len(frames_after(client, "scan", answered)) >= frames, 10)
    return answered


def test_min_confidence_nans_points_and_scan_beams_below_it_from_the_next_frame(
    client: RosClient,
) -> None:
    threshold = float(np.median(image_array(client.messages("depth/confidence")[-1])))
    answered = set_and_collect(client, {"points.min_confidence": threshold})
    confidences = by_stamp(client, "depth/confidence")
    depths = by_stamp(client, "depth")
    infos = by_stamp(client, "depth/camera_info")
    clouds = frames_after(client, "points", answered)
    scans = frames_after(client, "scan", answered)
    assert clouds and scans
    for cloud in clouds:
        stamp = stamp_ns(cloud)
        trusted = image_array(confidences[stamp]) >= threshold
        assert 0.2 < trusted.mean() < 0.8  # the median splits the frame
        z = cloud_to_xyz(cloud)[:, 2].reshape(HEIGHT, WIDTH)
        assert np.isfinite(z[trusted]).all() and np.isnan(z[~trusted]).all()
        assert np.isfinite(image_array(depths[stamp])).all()  # depth keeps every pixel
    settings = ScanSettings(range_max_m=SCAN_RANGE_MAX_M)
    for scan in scans:
        stamp = stamp_ns(scan)
        depth = image_array(depths[stamp])
        kept = np.where(image_array(confidences[stamp]) >= threshold, depth, np.float32(np.nan))
        geometry = ScanGeometry.for_lens(lens_of(infos[stamp]).lens, settings.height_px)
        expected = depth_to_scan(kept, geometry, settings).ranges
        unfiltered = depth_to_scan(depth, geometry, settings).ranges
        np.testing.assert_array_equal(np.asarray(scan.ranges, np.float32), expected)
        assert np.isnan(expected).sum() > np.isnan(unfiltered).sum()
    back = set_and_collect(client, {"points.min_confidence": 0.0})
    for cloud in frames_after(client, "points", back):
        assert np.isfinite(cloud_to_xyz(cloud)[:, 2]).all()
