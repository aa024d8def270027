"""Large outputs reach best-effort readers: the node's shared-memory Fast DDS profile.

The node runs as a user starts it (own process); the readers in this process keep Fast
DDS's default configuration, as Nav2 or RViz on the same machine would. Without the
profile, a 640x480 colour cloud (9.8 MB) reached such a reader 0-1 times in 50
(``bench/transport.py``); with it, every one must arrive. That the profile is what the
node's DDS participant really uses is read from the node's memory map: its 128 MB
shared-memory segment exists only with the profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from test_ros_support import (
    NodeProcess,
    RosClient,
    camera_info_msg,
    image_msg,
    ros_client,
    running_node,
    save_tiny_checkpoint,
    scene_rgb,
    set_header,
    stamp_ns,
    wait_until,
    write_params,
)

from dav2_ros.ros import transport

pytestmark = pytest.mark.ros

WIDTH, HEIGHT = 640, 480
K = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
ENOUGH_CLOUDS, MAX_FRAMES, RATE_HZ = 6, 120, 3.0
PROFILE = Path(__file__).resolve().parents[1] / "config" / transport.PROFILE_FILE
SEGMENT_BYTES = 128 * 1024 * 1024  # config/fastdds_large_data.xml
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def shm_segment_sizes(pid: int) -> list[int]:
    """Sizes of the Fast DDS shared-memory segments mapped by process ``pid``."""
    sizes = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if "/dev/shm/fastrtps_" in line and "fastrtps_port" not in line:
            start, end = (int(value, 16) for value in line.split()[0].split("-"))
            sizes.append(end - start)
    return sizes


def node_values(work: Path) -> dict[str, object]:
    return {
        "model.checkpoint": str(save_tiny_checkpoint(work)),
        "engine.backend": "torch",
        "engine.threads": 1,
        "points.color": True,  # the 9.8 MB cloud
    }


def clean_transport_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell says, the node decides from a clean slate."""
    for variable in (*transport.PROFILE_VARIABLES, transport.SWITCH_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)


def stream_frames(camera: RosClient, enough: Callable[[], bool]) -> None:
    """Camera frames at RATE_HZ until ``enough()`` (the input side is not under test: on a
    loaded machine the first frames may take a while to reach the node)."""
    image_pub = camera.node.create_publisher(Image, "image", RELIABLE)
    info_pub = camera.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    assert wait_until(lambda: image_pub.get_subscription_count() > 0, 20), "node not matched"
    rgb = scene_rgb(HEIGHT, WIDTH)
    info = camera_info_msg(WIDTH, HEIGHT, K, "cam")
    for index in range(MAX_FRAMES):
        if enough():
            return
        stamp = 1_700_000_000_000_000_000 + index * 10_000_000
        set_header(info, stamp, "cam")
        info_pub.publish(info)
        image_pub.publish(image_msg(rgb, "rgb8", stamp, "cam"))
        time.sleep(1.0 / RATE_HZ)


def stamps(reader: RosClient, topic: str) -> set[int]:
    return {stamp_ns(msg) for msg in reader.messages(topic)}


def test_best_effort_reader_gets_every_full_size_depth_and_cloud_under_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_transport_env(monkeypatch)
    with running_node(tmp_path, node_values(tmp_path)) as node, ros_client() as best_effort:
        assert f"Fast DDS profile: {PROFILE} (shared memory" in node.log()
        assert max(shm_segment_sizes(node.process.pid)) >= SEGMENT_BYTES, node.log()
        reliable = RosClient(name="reliable_reader")  # counts what the node published
        try:
            for topic, msg_type in (("depth", Image), ("points", PointCloud2)):
                best_effort.subscribe(topic, msg_type, qos_profile_sensor_data)
                reliable.subscribe(topic, msg_type, RELIABLE)
            stream_frames(best_effort, lambda: len(reliable.messages("points")) >= ENOUGH_CLOUDS)
            # Until the reliable reader has seen the node go quiet.
            last = -1
            while last != len(reliable.messages("points")):
                last = len(reliable.messages("points"))
                time.sleep(1.0)
            published = {topic: stamps(reliable, topic) for topic in ("depth", "points")}
        finally:
            reliable.close()
        assert len(published["points"]) >= ENOUGH_CLOUDS, node.log()
        for topic in ("depth", "points"):
            got = stamps(best_effort, topic)
            assert got == published[topic], f"{topic}: best effort missed {published[topic] - got}"
        for depth in best_effort.messages("depth"):
            assert (depth.width, depth.height, len(depth.data)) == (
                WIDTH,
                HEIGHT,
                WIDTH * HEIGHT * 4,
            )
        for cloud in best_effort.messages("points"):
            assert (cloud.width, cloud.height, cloud.point_step) == (WIDTH, HEIGHT, 32)
            assert len(cloud.data) == WIDTH * HEIGHT * 32  # 9.8 MB


def test_switch_starts_the_node_with_fast_dds_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_transport_env(monkeypatch)
    monkeypatch.setenv(transport.SWITCH_VARIABLE, "off")
    params = write_params(tmp_path / "params.yaml", {"engine.backend": "torch"})
    node = NodeProcess(params, tmp_path / "node.log")
    try:  # the participant exists from the node's first moment: no need to wait for "ready:"
        assert node.wait_for_log("Fast DDS profile:", timeout_s=60), node.log()
        assert "Fast DDS profile: not used (DAV2_FASTDDS_PROFILE=off)" in node.log()
        assert wait_until(lambda: shm_segment_sizes(node.process.pid), 30), node.log()
        sizes = shm_segment_sizes(node.process.pid)
        assert max(sizes) < SEGMENT_BYTES, f"a profile-sized segment is mapped: {sizes}"
    finally:
        node.stop()
