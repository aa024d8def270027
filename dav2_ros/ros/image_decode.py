"""Incoming ``sensor_msgs/Image`` and ``CompressedImage`` → HxWx3 uint8 RGB.

``cv_bridge`` is used when importable (a ROS install); otherwise a numpy path that
honours ``step`` (row padding) and converts colours with rosbags-image, which reads
rclpy messages by duck typing. Both paths share the validation below, so a bad
message gets the same specific ``ImageDecodeError`` either way.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from rosbags.image.image import convert_color

from dav2_ros.ros.compressed_header import declared_size

try:  # a ROS install has cv_bridge; the pip environment does not
    from cv_bridge import CvBridge, CvBridgeError

    _BRIDGE: Any = CvBridge()
except ImportError:
    _BRIDGE = None
    CvBridgeError = Exception  # noqa: N816 - placeholder for the except clause

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
# The network scales the shorter side to input_size: a 1x4000 image would become a
# 126x504000 input and exhaust memory. Real cameras stay far below this (panoramas 2:1).
MAX_ASPECT_RATIO = 8
# Compressed frames declaring more pixels are refused before decoding (8K UHD is 33 MP).
MAX_COMPRESSED_PIXELS = 50_000_000


class ImageDecodeError(ValueError):
    """A message that cannot be turned into an RGB image; the text says why and what to do.

    ``kind`` names the problem (encoding, size, step, data, decode) so callers can
    throttle each kind of problem separately.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def validate_image(msg: Any) -> int:
    """Raise ``ImageDecodeError`` unless ``msg`` is a usable raw image; returns channels."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        raise ImageDecodeError(
            f"unsupported image encoding {msg.encoding!r}; expected one of "
            f"{', '.join(CHANNELS)} (convert with image_proc or set the camera's format)",
            "encoding",
        )
    if msg.width == 0 or msg.height == 0:
        raise ImageDecodeError(
            f"zero-sized image {msg.width}x{msg.height}: nothing to estimate", "size"
        )
    check_proportions(msg.width, msg.height)
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageDecodeError(
            f"step {msg.step} is smaller than width x channels = {row_bytes} for "
            f"{msg.encoding} {msg.width}x{msg.height}; the publisher's header is wrong",
            "step",
        )
    if len(msg.data) < msg.step * msg.height:
        raise ImageDecodeError(
            f"image data has {len(msg.data)} bytes, expected step x height = "
            f"{msg.step} x {msg.height} = {msg.step * msg.height}; message truncated",
            "data",
        )
    return channels


def image_to_rgb(msg: Any, use_cv_bridge: bool | None = None) -> np.ndarray:
    """Raw ``Image`` (rgb8, bgr8, rgba8, bgra8, mono8) → HxWx3 uint8 RGB."""
    channels = validate_image(msg)
    if use_cv_bridge is None:
        use_cv_bridge = _BRIDGE is not None
    if use_cv_bridge:
        try:
            return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
        except CvBridgeError as exc:
            raise ImageDecodeError(
                f"cv_bridge could not convert the image: {exc}", "decode"
            ) from exc
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    pixels = rows.reshape(msg.height, msg.step)[:, : msg.width * channels]
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    image = pixels.reshape(shape)
    if msg.encoding == "rgb8":
        return image  # a read-only view of the message buffer: no copy
    return np.ascontiguousarray(convert_color(image, msg.encoding, "rgb8"))


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """``CompressedImage`` (JPEG or PNG, colour or grey) → HxWx3 uint8 RGB."""
    if len(msg.data) == 0:
        raise ImageDecodeError(f"compressed image (format {msg.format!r}) has no data", "size")
    size = declared_size(bytes(msg.data[:65536]))
    if size is not None and size[0] * size[1] > MAX_COMPRESSED_PIXELS:
        raise ImageDecodeError(
            f"compressed image (format {msg.format!r}, {len(msg.data)} bytes) declares "
            f"{size[0]}x{size[1]} pixels, more than {MAX_COMPRESSED_PIXELS:,}; refused before "
            "decoding. Send a smaller image",
            "size",
        )
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    try:
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own size limit, or a codec assertion
        bgr = None
    if bgr is None or bgr.size == 0:
        raise ImageDecodeError(
            f"cannot decode compressed image (format {msg.format!r}, {len(msg.data)} bytes); "
            "expected JPEG or PNG as image_transport's compressed plugin sends",
            "decode",
        )
    check_proportions(bgr.shape[1], bgr.shape[0])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_proportions(width: int, height: int) -> None:
    """Raise ``ImageDecodeError`` for images too elongated to resize for the network."""
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageDecodeError(
            f"image {width}x{height} is more elongated than {MAX_ASPECT_RATIO}:1; the network "
            "input (shorter side = input_size) would be too large. Crop or resize it first",
            "size",
        )
