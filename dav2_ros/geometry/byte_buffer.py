"""One reusable byte buffer that numpy writes into and rclpy messages take as it is.

rclpy keeps a ``uint8[]`` message field as an ``array.array('B')``; a ``ByteBuffer`` owns
one and hands out numpy views of its memory, so a frame is computed straight into the
bytes that get published (``dav2_ros.ros.conversions`` puts them into messages). No ROS here.
"""

from __future__ import annotations

import array

import numpy as np


class ByteBuffer:
    """One reusable byte buffer for one kind of message (e.g. the ``points`` of a node).

    ``view()`` hands out numpy views of it; ``data`` is what the message gets. The memory
    is reused frame after frame: publish a message before filling the next one (rclpy's
    ``publish`` copies synchronously, so that is the natural order).
    """

    def __init__(self) -> None:
        self.data = array.array("B")
        self.allocations = 0  # grows only when the size changes

    def view(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A writable ndarray of ``shape`` over the buffer (reallocated, zeroed, on a new size).

        Bytes that the caller never writes (record padding) stay zero across frames.
        """
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if len(self.data) != nbytes:
            # A new array: the old one may still be viewed by numpy (it cannot be resized).
            self.data = array.array("B", bytes(nbytes))
            self.allocations += 1
        return np.frombuffer(self.data, dtype=dtype).reshape(shape)
