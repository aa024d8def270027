"""The node's inputs take the QoS the camera offers (``qos.input_reliability: auto``) and
follow it as cameras come, go and restart; an incompatible pairing and frames lost before
the node are shown on /diagnostics with the fix. Real Fast DDS, the node in its own
process, cameras as publishers of this process created and destroyed by the tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from test_ros_support import (
    SMALL_HEIGHT,
    SMALL_K,
    SMALL_WIDTH,
    NodeProcess,
    RosClient,
    StreamingCamera,
    ros_client,
    running_node,
    save_tiny_checkpoint,
    scene_rgb,
    stamp_ns,
    tiny_node_values,
    wait_until,
)

pytestmark = pytest.mark.ros

NS = "/cam_qos"
HEIGHT, WIDTH, K = SMALL_HEIGHT, SMALL_WIDTH, SMALL_K
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("qos_ckpt"))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Iterator[NodeProcess]:
    """Started before any camera exists (config/depth.yaml's default: auto)."""
    with running_node(tmp_path_factory.mktemp("qos"), tiny_node_values(checkpoint), NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with ros_client(namespace=NS) as ros:
        ros.subscribe("depth", Image)
        ros.subscribe("/diagnostics", DiagnosticArray)
        yield ros


def start_camera(client: RosClient, qos: QoSProfile, lose_every: int = 0) -> StreamingCamera:
    client.image_pub = client.node.create_publisher(Image, "image", qos)
    client.info_pub = client.node.create_publisher(CameraInfo, "camera_info", qos)
    rgb = scene_rgb(HEIGHT, WIDTH)
    return StreamingCamera(client, rgb, K, "qos_optical", 15.0, lose_every=lose_every)


def stop_camera(client: RosClient, camera: StreamingCamera) -> None:
    camera.close()
    client.node.destroy_publisher(client.image_pub)
    client.node.destroy_publisher(client.info_pub)


def node_values_now(client: RosClient, since_s: float = 0.0) -> dict[str, str]:
    with client._lock:
        latest = [m for t, m in client.received["/diagnostics"] if t > since_s]
    for msg in reversed(latest):
        for status in msg.status:
            if status.hardware_id == "dav2_depth" and status.values:
                return {"message": status.message, **{kv.key: kv.value for kv in status.values}}
    return {}


def node_subscription_reliability(client: RosClient, topic: str) -> list[ReliabilityPolicy]:
    """What the node's subscription on ``topic`` asks for, as the ROS graph reports it."""
    infos = client.node.get_subscriptions_info_by_topic(f"{NS}/{topic}")
    return [i.qos_profile.reliability for i in infos if i.node_name == "dav2_depth"]


def served(client: RosClient, camera: StreamingCamera, timeout_s: float = 15) -> bool:
    start = time.monotonic()

    def new_depth() -> bool:
        return any(camera.sent.get(stamp_ns(m), 0) > start for m in client.messages("depth"))

    return wait_until(new_depth, timeout_s)


def test_a_reliable_camera_gets_a_reliable_subscription(client: RosClient) -> None:
    camera = start_camera(client, RELIABLE)
    try:
        reliable = [ReliabilityPolicy.RELIABLE]
        assert wait_until(lambda: node_subscription_reliability(client, "image") == reliable, 10)
        assert node_subscription_reliability(client, "camera_info") == reliable
        assert served(client, camera)
        text = "image: reliable (auto; 1 publisher: reliable)"
        assert wait_until(lambda: text in node_values_now(client).get("input_reliability", ""), 5)
    finally:
        stop_camera(client, camera)


def test_a_best_effort_camera_restarted_after_the_node_is_followed(client: RosClient) -> None:
    """The same camera comes back best effort (e.g. use_sensor_data_qos), then reliable."""
    camera = start_camera(client, BEST_EFFORT)
    try:
        best_effort = [ReliabilityPolicy.BEST_EFFORT]
        assert wait_until(lambda: node_subscription_reliability(client, "image") == best_effort, 10)
        assert served(client, camera)
    finally:
        stop_camera(client, camera)
    camera = start_camera(client, RELIABLE)
    try:
        reliable = [ReliabilityPolicy.RELIABLE]
        assert wait_until(lambda: node_subscription_reliability(client, "image") == reliable, 10)
        assert served(client, camera)
    finally:
        stop_camera(client, camera)


def test_two_cameras_one_best_effort_mean_best_effort(client: RosClient) -> None:
    first = start_camera(client, RELIABLE)
    second_pub = client.node.create_publisher(Image, "image", BEST_EFFORT)
    try:
        best_effort = [ReliabilityPolicy.BEST_EFFORT]
        assert wait_until(lambda: node_subscription_reliability(client, "image") == best_effort, 10)
    finally:
        client.node.destroy_publisher(second_pub)
        stop_camera(client, first)


def test_frames_lost_before_the_node_are_shown_with_the_fix(client: RosClient) -> None:
    camera = start_camera(client, BEST_EFFORT, lose_every=3)
    try:
        assert served(client, camera)
        since = time.monotonic()

        def loss_reported() -> bool:
            values = node_values_now(client, since)
            return int(values.get("input_frames_lost", 0)) > 5 and "never reached" in values.get(
                "message", ""
            )

        assert wait_until(loss_reported, 20), node_values_now(client)
        values = node_values_now(client)
        assert float(values["camera_rate_hz"]) == pytest.approx(15.0, rel=0.1)
        # a third lost; the 10 s window still holds loss-free frames of the cameras before
        assert 10 < float(values["input_loss_percent"]) < 40
        assert "FASTRTPS_DEFAULT_PROFILES_FILE=" in values["message"]
    finally:
        stop_camera(client, camera)


def test_an_explicit_reliable_input_reports_a_best_effort_camera(
    tmp_path: Path, checkpoint: Path, client: RosClient
) -> None:
    values = tiny_node_values(checkpoint, **{"qos.input_reliability": "reliable"})
    namespace = "/cam_qos_strict"
    with running_node(tmp_path, values, namespace) as strict:
        camera_pub = client.node.create_publisher(Image, f"{namespace}/image", BEST_EFFORT)
        try:
            assert strict.wait_for_log("incompatible with this reliable subscription", 15), (
                strict.log()[-3000:]
            )
            assert "qos.input_reliability auto or best_effort" in strict.log()
        finally:
            client.node.destroy_publisher(camera_pub)
