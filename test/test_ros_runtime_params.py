"""Output parameters set while frames flow (``ros2 param set`` over DDS) change the next
frame's output; bad and read-only values are refused with their reason; no frame is lost
or built half with the old and half with the new value.

One ``depth_node`` in its own process: a relative model with ``scale.mode: fixed``, so one
node publishes metres (from ``scale.a``/``scale.b``), points and scan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sensor_msgs.msg import Image, LaserScan, PointCloud2
from test_ros_support import (
    SMALL_HEIGHT,
    SMALL_K,
    SMALL_WIDTH,
    NodeProcess,
    RosClient,
    running_node,
    save_tiny_checkpoint,
    set_parameters,
    stamp_ns,
    streaming_client,
    tiny_node_values,
    wait_until,
)

from dav2_ros.ros.conversions import cloud_to_xyz

pytestmark = pytest.mark.ros

NS = "/cam_rt"
NODE = f"{NS}/dav2_depth"
HEIGHT, WIDTH, K = SMALL_HEIGHT, SMALL_WIDTH, SMALL_K
RATE_HZ = 10.0
SCALE_A, SCALE_B = 0.5, 0.1


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("runtime_params")
    values = tiny_node_values(
        save_tiny_checkpoint(work, "relative", output_bias=3.0),
        **{"scale.mode": "fixed", "scale.a": SCALE_A, "scale.b": SCALE_B, "scan.range_max": 100.0},
    )
    with running_node(work, values, namespace=NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    topics = {"depth": Image, "depth/relative": Image, "points": PointCloud2, "scan": LaserScan}
    with streaming_client(NS, topics, "rt_optical", RATE_HZ) as ros:
        assert wait_until(lambda: ros.messages("points"), 30), node.log()[-3000:]
        yield ros


def outputs_after(client: RosClient, topic: str, since_s: float) -> list[Any]:
    """Messages on ``topic`` of frames the camera sent after ``since_s``."""
    sent = dict(client.camera.sent)
    return [m for m in client.messages(topic) if sent.get(stamp_ns(m), 0.0) > since_s]


def set_and_wait(client: RosClient, topic: str, values: dict[str, Any], frames: int = 3) -> list:
    """Set ``values``, then collect ``topic`` for ``frames`` frames sent after the answer."""
    for result in set_parameters(client, NODE, values):
        assert result.successful, result.reason
    answered = time.monotonic()
    assert wait_until(lambda: len(outputs_after(client, topic, answered)) >= frames, 10)
    return outputs_after(client, topic, answered)


def test_points_stride_color_and_range_change_the_next_cloud(client: RosClient) -> None:
    for cloud in set_and_wait(client, "points", {"points.stride": 2}):
        assert (cloud.width, cloud.height, cloud.point_step) == (WIDTH // 2, HEIGHT // 2, 32)
    for cloud in set_and_wait(client, "points", {"points.color": False}):
        assert cloud.point_step == 16 and [f.name for f in cloud.fields] == ["x", "y", "z"]
    middle_m = float(np.nanmedian(cloud_to_xyz(client.messages("points")[-1])[:, 2]))
    near = set_and_wait(client, "points", {"points.max_range": middle_m})
    z = np.concatenate([cloud_to_xyz(cloud)[:, 2] for cloud in near])
    assert np.nanmax(z) <= middle_m and np.isnan(z).any()
    set_and_wait(
        client, "points", {"points.stride": 1, "points.color": True, "points.max_range": 0.0}
    )


def test_points_enabled_false_stops_the_cloud_not_the_depth(client: RosClient) -> None:
    set_and_wait(client, "depth", {"points.enabled": False})
    answered = time.monotonic()
    assert wait_until(lambda: len(outputs_after(client, "depth", answered)) >= 3, 10)
    assert outputs_after(client, "points", answered + 1.5 / RATE_HZ) == []
    set_and_wait(client, "points", {"points.enabled": True})


def test_scan_range_max_changes_the_next_scan(client: RosClient) -> None:
    ranges = np.array(client.messages("scan")[-1].ranges)
    middle_m = float(np.median(ranges[np.isfinite(ranges)]))
    for scan in set_and_wait(client, "scan", {"scan.range_max": middle_m}):
        ranges = np.array(scan.ranges)
        assert scan.range_max == pytest.approx(middle_m)
        assert np.isfinite(ranges).any() and ranges[np.isfinite(ranges)].max() <= middle_m
        assert np.isfinite(ranges).sum() < len(ranges)
    set_and_wait(client, "scan", {"scan.range_max": 100.0})


def test_scale_a_changes_the_next_frames_metres(client: RosClient) -> None:
    for a in (1.0, SCALE_A):
        answered_depth = set_and_wait(client, "depth", {"scale.a": a})
        relative = {stamp_ns(m): m for m in client.messages("depth/relative")}
        for depth in answered_depth:
            disparity = np.frombuffer(bytes(relative[stamp_ns(depth)].data), np.float32)
            metres = np.frombuffer(bytes(depth.data), np.float32)
            np.testing.assert_allclose(metres, 1.0 / (a * disparity + SCALE_B), rtol=1e-5)


def test_temporal_mode_none_skips_the_stage_on_the_next_frame(client: RosClient) -> None:
    def last_stages() -> dict[str, float]:
        for status in client.messages("/diagnostics")[-1].status:
            if status.hardware_id == "dav2_depth":
                values = {kv.key: kv.value for kv in status.values}
                return json.loads(values["stages_ms_last"])
        return {}

    assert "temporal" in last_stages()
    set_and_wait(client, "depth", {"temporal.mode": "none"})
    time.sleep(1.1)  # the next /diagnostics
    assert "temporal" not in last_stages()
    set_and_wait(client, "depth", {"temporal.mode": "align"})


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"temporal.mode": "smooth"}, "expected one of none, align"),
        ({"points.stride": 0}, "points.stride"),
        ({"scan.range_min": 200.0}, "scan.*"),  # above scan.range_max: a rule across two
    ],
)
def test_a_bad_value_is_refused_with_its_reason(
    client: RosClient, values: dict[str, Any], reason: str
) -> None:
    (result,) = set_parameters(client, NODE, values)
    assert not result.successful and reason in result.reason, result.reason


def test_a_read_only_parameter_is_refused_with_what_to_do(client: RosClient) -> None:
    (result,) = set_parameters(client, NODE, {"engine.backend": "onnxruntime"})
    assert not result.successful
    assert "'engine.backend'" in result.reason and "restart the node" in result.reason


def test_no_frame_is_lost_or_half_changed_while_values_change(client: RosClient) -> None:
    """Strides flip while frames flow: every frame's depth has its cloud (none lost), and
    each cloud is whole at one stride and a scan for the same frame exists."""
    start = time.monotonic()
    changes: list[tuple[float, float, int]] = []  # (asked, answered, stride)
    for stride in (2, 1, 4, 1, 2, 1):
        asked = time.monotonic()
        (result,) = set_parameters(client, NODE, {"points.stride": stride})
        assert result.successful, result.reason
        changes.append((asked, time.monotonic(), stride))
        time.sleep(0.35)
    time.sleep(1.0)
    depth = {stamp_ns(m) for m in outputs_after(client, "depth", start)}
    clouds = {stamp_ns(m): m for m in outputs_after(client, "points", start)}
    scans = {stamp_ns(m) for m in outputs_after(client, "scan", start)}
    assert len(depth) >= 15
    assert set(clouds) == depth and scans == depth, "a frame lost an output"
    sent = client.camera.sent
    for stamp, cloud in clouds.items():
        stride = WIDTH // cloud.width
        assert (cloud.width * stride, cloud.height * stride) == (WIDTH, HEIGHT)
        assert cloud.row_step == cloud.width * cloud.point_step
        assert len(cloud.data) == cloud.row_step * cloud.height
        # Frames sent a frame after an answer have that value (the next frame applies it).
        settled = [s for _, answered, s in changes if answered + 1.0 / RATE_HZ < sent[stamp]]
        if settled and not any(a <= sent[stamp] <= b + 1.0 / RATE_HZ for a, b, _ in changes):
            assert stride == settled[-1], (stamp, stride, settled[-1])
