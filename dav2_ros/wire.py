"""Message ``data`` without extra copies: numpy writes into the very buffer rclpy publishes.

rclpy keeps a ``uint8[]`` field (``Image.data``, ``PointCloud2.data``) as an
``array.array('B')``, and its C conversion at publish copies that with one ``memcpy``.
Its setter, though, copies whatever it is given (an ``array.array`` too, unless
``ROS_PYTHON_CHECK_FIELDS=1``), and walks ``memoryview``/numpy element by element
(``bench/message_data.py`` has the numbers). So a ``geometry.ByteBuffer`` owns one
``array.array('B')``, numpy views it, and ``set_byte_data`` stores it in the message as
the setter itself does for an ``array.array`` when checks are on: no copy at all.

Nothing here imports rclpy: messages are filled by duck typing (callers pass them in).
"""

from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np

from dav2_ros.geometry import ByteBuffer, PackedCloud


def set_byte_data(msg: Any, data: array.array) -> None:
    """``msg.data = data`` without the setter's copy (``data`` must be ``array.array('B')``).

    rosidl's generated setter stores an ``array.array('B')`` as is when field checks are on
    and copies it otherwise; the stored value is the same either way (slot ``_data``).
    """
    if data.typecode != "B":
        raise TypeError(f"message data must be array.array('B'), got typecode {data.typecode!r}")
    if hasattr(msg, "_data"):
        msg._data = data
    else:  # not a rosidl-generated message: use its own setter
        msg.data = data


def fill_float_image(msg: Any, header: Any, buffer: ByteBuffer, values: np.ndarray) -> Any:
    """A ``32FC1`` ``sensor_msgs/Image`` of HxW ``values`` (one copy, into ``buffer``)."""
    if values.ndim != 2:
        raise ValueError(f"expected an HxW image, got shape {values.shape}")
    height, width = values.shape
    np.copyto(buffer.view((height, width), np.float32), values, casting="same_kind")
    msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = "32FC1"
    msg.is_bigendian = sys.byteorder == "big"
    msg.step = width * 4
    set_byte_data(msg, buffer.data)
    return msg


def fill_pointcloud2(msg: Any, header: Any, cloud: PackedCloud, point_field: type) -> Any:
    """A ``sensor_msgs/PointCloud2`` of ``cloud`` (no copy when ``cloud.data`` is an array).

    ``point_field`` is ``sensor_msgs.msg.PointField`` (passed in: no rclpy import here).
    """
    msg.header = header
    msg.height, msg.width = cloud.height, cloud.width
    msg.fields = [
        point_field(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
        for f in cloud.fields
    ]
    msg.is_bigendian = cloud.is_bigendian
    msg.point_step, msg.row_step = cloud.point_step, cloud.row_step
    msg.is_dense = cloud.is_dense
    if isinstance(cloud.data, array.array):
        set_byte_data(msg, cloud.data)
    else:
        msg.data = cloud.data
    return msg
