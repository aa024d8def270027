"""Message data handed to rclpy without copies (``ros.conversions``), and the node's reused
output messages (``ros.outputs``): checked on real sensor_msgs messages through rclpy's own
serialisation, and across processes through real Fast DDS with the buffers overwritten
right after each ``publish()``."""

from __future__ import annotations

import array
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from test_ros_support import ros_client, stamp_ns, wait_until

from dav2_ros.geometry import ByteBuffer, CameraIntrinsics, CloudPacker, PinholeRays
from dav2_ros.ros.conversions import (
    array_to_image,
    cloud_to_msg,
    cloud_to_rgb,
    cloud_to_xyz,
    fill_cloud,
    fill_image,
    image_to_array,
    set_byte_data,
)

HEADER = Header(frame_id="camera_optical_frame")
HEADER.stamp.sec, HEADER.stamp.nanosec = 12, 345


def wire_form(msg: Image | PointCloud2) -> Image | PointCloud2:
    """What a subscriber gets: the message through rclpy's CDR serialisation and back
    (compared as messages: CDR alignment padding bytes are not defined)."""
    return deserialize_message(serialize_message(msg), type(msg))


def test_byte_buffer_views_share_memory_with_the_message_data() -> None:
    buffer = ByteBuffer()
    view = buffer.view((4, 5), np.float32)
    view[:] = 2.5
    assert len(buffer.data) == 80
    assert np.frombuffer(buffer.data, np.float32).tolist() == [2.5] * 20
    data_before = buffer.data
    buffer.view((4, 5), np.float32)
    assert buffer.data is data_before and buffer.allocations == 1
    buffer.view((2, 5), np.float32)  # another size: a new buffer, the old views stay valid
    assert buffer.data is not data_before and buffer.allocations == 2
    assert view[0, 0] == 2.5


def test_set_byte_data_stores_the_array_itself() -> None:
    msg = PointCloud2()
    data = array.array("B", bytes(64))
    set_byte_data(msg, data)
    assert msg.data is data  # rclpy's setter would have copied it (field checks off)
    with pytest.raises(TypeError, match="array.array\\('B'\\)"):
        set_byte_data(msg, array.array("f", [1.0]))


def test_an_image_filled_into_a_reused_buffer_is_the_new_image_on_the_wire() -> None:
    rng = np.random.default_rng(0)
    buffer, msg = ByteBuffer(), Image()
    for _frame in range(2):  # the second fill overwrites the first in the same memory
        depth_m = rng.uniform(0.5, 9.0, (48, 64)).astype(np.float32)
        depth_m[3, 4] = np.nan
        filled = fill_image(msg, depth_m, "32FC1", HEADER, buffer)
        assert filled is msg and msg.data is buffer.data and buffer.allocations == 1
        back = wire_form(msg)
        assert back == wire_form(array_to_image(depth_m, "32FC1", HEADER))
        np.testing.assert_array_equal(image_to_array(back), depth_m)
        assert (back.encoding, back.step, back.header.stamp.nanosec) == ("32FC1", 256, 345)


def test_array_to_image_copies_once_and_casts_like_astype() -> None:
    pixels = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::-1]  # float64, not contiguous
    msg = array_to_image(pixels, "32FC1", HEADER)
    assert isinstance(msg.data, array.array) and msg.step == 16
    np.testing.assert_array_equal(image_to_array(wire_form(msg)), pixels.astype(np.float32))
    with pytest.raises(ValueError, match="rgb8 needs an array of shape HxWx3"):
        array_to_image(np.zeros((2, 2), np.uint8), "rgb8")


def test_a_packed_cloud_goes_into_the_message_without_a_copy() -> None:
    depth_m = np.random.default_rng(1).uniform(0.5, 9.0, (24, 32)).astype(np.float32)
    rgb = np.random.default_rng(2).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    k = CameraIntrinsics(30.0, 30.0, 16.0, 12.0, 32, 24)
    cloud = CloudPacker().pack(depth_m, PinholeRays(k).rays(), rgb=rgb)
    msg = fill_cloud(PointCloud2(), cloud, HEADER)
    assert msg.data is cloud.data  # no copy
    setter = cloud_to_msg(cloud, HEADER)
    setter.data = bytes(cloud.data)  # the same message through rclpy's own setter
    back = wire_form(msg)
    assert back == wire_form(setter)
    assert bytes(back.data) == bytes(cloud.data)
    np.testing.assert_array_equal(cloud_to_xyz(back, np.float32)[:, 2], depth_m.reshape(-1))
    np.testing.assert_array_equal(cloud_to_rgb(back), rgb.reshape(-1, 3))


# A publisher process with the node's reused outputs: frame k is depth k+1 m everywhere
# and colour (k, 2k, 3k); the next frame overwrites the buffers right after publish().
PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import numpy as np, rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Header
    from dav2_ros.ros.transport import use_large_data_profile
    use_large_data_profile()
    from dav2_ros.ros.camera_info import lens_of
    from dav2_ros.ros.outputs import CloudOutput, ImageOutput
    frames, width, height = int(sys.argv[1]), 320, 240
    rclpy.init()
    node = rclpy.create_node("reuse_publisher")
    qos = QoSProfile(depth=frames, reliability=ReliabilityPolicy.RELIABLE)
    depth_pub = node.create_publisher(Image, "depth", qos)
    points_pub = node.create_publisher(PointCloud2, "points", qos)
    while depth_pub.get_subscription_count() == 0 or points_pub.get_subscription_count() == 0:
        time.sleep(0.05)
    time.sleep(0.5)
    info = CameraInfo(width=width, height=height)
    info.k = [300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0]
    depth, cloud = ImageOutput(), CloudOutput(stride=1, max_range_m=0.0)
    depth_m = np.empty((height, width), np.float32)
    rgb = np.empty((height, width, 3), np.uint8)
    for k in range(frames):
        header = Header(frame_id="cam")
        header.stamp.sec = k
        depth_m[:] = k + 1
        rgb[:] = (k, 2 * k, 3 * k)
        depth_pub.publish(depth.fill(depth_m, "32FC1", header))
        points_pub.publish(cloud.fill(depth_m, lens_of(info).lens, rgb, header))
    print("buffers", depth.buffer.allocations, cloud.packer.buffer.allocations, flush=True)
    sys.stdin.read()  # reliable: the writer stays until the reader has every frame
    node.destroy_node()
    rclpy.shutdown()
    """
)


def test_reused_output_buffers_overwritten_after_publish_reach_a_reader_intact() -> None:
    frames = 12
    reliable = QoSProfile(depth=frames, reliability=ReliabilityPolicy.RELIABLE)
    with ros_client() as reader:
        reader.subscribe("depth", Image, reliable)
        reader.subscribe("points", PointCloud2, reliable)
        publisher = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(frames)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until(
                lambda: min(len(reader.messages(t)) for t in ("depth", "points")) >= frames, 60
            ), {t: len(reader.messages(t)) for t in ("depth", "points")}
            out, _ = publisher.communicate(timeout=30)
        finally:
            if publisher.poll() is None:
                publisher.kill()
        assert out.split() == ["buffers", "1", "1"], "the outputs reallocated their buffers"
        for msg in reader.messages("depth"):
            k = msg.header.stamp.sec
            assert (image_to_array(msg) == k + 1).all(), f"depth of frame {k} was overwritten"
        for msg in reader.messages("points"):
            k = msg.header.stamp.sec
            assert (cloud_to_xyz(msg)[:, 2] == k + 1).all(), f"points of frame {k} overwritten"
            assert (cloud_to_rgb(msg) == (k, 2 * k, 3 * k)).all(), f"colour of frame {k}"
        assert sorted(stamp_ns(m) // 10**9 for m in reader.messages("points")) == list(
            range(frames)
        )
