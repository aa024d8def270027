"""Message data handed to rclpy without copies (``dav2_ros.wire``), checked on real
sensor_msgs messages through rclpy's own serialisation (what ``publish`` sends)."""

from __future__ import annotations

import array

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from dav2_ros.geometry import (
    ByteBuffer,
    CameraIntrinsics,
    CloudPacker,
    PinholeRays,
    pack_organised_cloud,
)
from dav2_ros.ros.messages import float_image_msg, pointcloud_msg
from dav2_ros.wire import fill_float_image, fill_pointcloud2, set_byte_data

HEADER = Header(frame_id="camera_optical_frame")
HEADER.stamp.sec, HEADER.stamp.nanosec = 12, 345


def wire_form(msg: Image | PointCloud2) -> Image | PointCloud2:
    """What a subscriber gets: the message through rclpy's CDR serialisation and back
    (compared as messages: CDR alignment padding bytes are not defined)."""
    return deserialize_message(serialize_message(msg), type(msg))


def test_wire_buffer_views_share_memory_with_the_message_data() -> None:
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


def test_fill_float_image_serialises_like_the_previous_builder() -> None:
    depth_m = np.random.default_rng(0).uniform(0.5, 9.0, (48, 64)).astype(np.float32)
    depth_m[3, 4] = np.nan
    buffer = ByteBuffer()
    fast = fill_float_image(Image(), HEADER, buffer, depth_m)
    assert fast.data is buffer.data
    back = wire_form(fast)
    assert back == wire_form(float_image_msg(HEADER, depth_m))
    values = np.frombuffer(back.data, np.float32).reshape(48, 64)
    np.testing.assert_array_equal(values, depth_m)
    assert (back.encoding, back.step, back.header.stamp.nanosec) == ("32FC1", 256, 345)


def test_fill_pointcloud2_serialises_like_the_previous_builder() -> None:
    depth_m = np.random.default_rng(1).uniform(0.5, 9.0, (24, 32)).astype(np.float32)
    rgb = np.random.default_rng(2).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    k = CameraIntrinsics(30.0, 30.0, 16.0, 12.0, 32, 24)
    cloud = CloudPacker().pack(depth_m, PinholeRays(k).rays(), rgb=rgb)
    fast = fill_pointcloud2(PointCloud2(), HEADER, cloud, PointField)
    assert fast.data is cloud.data  # no copy
    xyz = np.frombuffer(cloud.data, np.float32).reshape(24, 32, 8)[:, :, :3].copy()
    old = pointcloud_msg(HEADER, pack_organised_cloud(xyz, rgb))
    assert wire_form(fast) == wire_form(old)
    assert bytes(wire_form(fast).data) == bytes(cloud.data)
