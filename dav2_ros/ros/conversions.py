"""``sensor_msgs`` images and point clouds ↔ numpy arrays, in one place.

In the style of depth_image_proc's ``DepthTraits``: one table (``encodings.ENCODINGS``)
says, per encoding, the element type, the channels, the planes and how it becomes RGB or
metres; every reader and writer goes through it. Messages are read by duck typing
(``height``, ``width``, ``step``, ``data``, ``fields``…), so rclpy messages, rosbags
dataclasses (the training package reads bags with these) and plain namespaces all work, and
this module imports neither rclpy nor the message packages (builders import their message
class when called).
Bad input raises ``ImageDecodeError`` saying what was expected and what arrived.

Outgoing ``data`` is written once: rclpy keeps a ``uint8[]`` field as an
``array.array('B')`` and its publish copies that with one ``memcpy``, but its setter copies
whatever it is given (and walks numpy arrays and memoryviews element by element: seconds
for a 9.8 MB cloud, ``bench/message_data.py``). So the builders hand the message an
``array.array`` of their own, either new or the reused buffer of a ``geometry.ByteBuffer``
(one per output: the values are computed or copied straight into the bytes that get
published), through ``set_byte_data``, which skips the setter's copy.
"""

from __future__ import annotations

import array as pyarray
import sys
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from dav2_ros.ros.compressed_header import declared_size
from dav2_ros.ros.encodings import COLOUR_ENCODINGS, DEPTH_ENCODINGS, ENCODINGS

if TYPE_CHECKING:  # geometry pulls in Open3D; the training package reads bags without it
    from dav2_ros.geometry import ByteBuffer, PackedCloud


# The network scales the shorter side to input_size: a 1x4000 image would become a
# 126x504000 input and exhaust memory. Real cameras stay far below this (panoramas 2:1).
MAX_ASPECT_RATIO = 8
# Compressed frames declaring more pixels are refused before decoding (8K UHD is 33 MP).
MAX_COMPRESSED_PIXELS = 50_000_000
# sensor_msgs/PointField datatypes (INT8 … FLOAT64) → numpy element types.
POINT_FIELD_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
_COLOUR_HINT = "convert with image_proc or set the camera's format"
_DEPTH_HINT = "publish 32FC1 (metres) or 16UC1 (millimetres)"


class ImageDecodeError(ValueError):
    """A message that cannot be turned into an array; the text says why and what to do.

    ``kind`` names the problem (encoding, size, step, data, decode) so callers can
    throttle each kind of problem separately.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---- Image → array ----------------------------------------------------------------------
def image_to_array(
    msg: Any, accepted: tuple[str, ...] = tuple(ENCODINGS), hint: str = ""
) -> np.ndarray:
    """An ``Image`` in one of ``accepted`` → its pixels (``Encoding.pixels``): HxW (one
    channel) or HxWxC values of its own element type in native byte order, ``step`` padding
    skipped; a read-only view of the message's buffer where no byte swap is needed (no
    copy). Semi-planar YUV: NV21 in OpenCV's (3H/2)xW layout, NV24 as HxWx3 Y, U, V."""
    encoding = ENCODINGS.get(msg.encoding) if msg.encoding in accepted else None
    if encoding is None:
        raise ImageDecodeError(
            f"unsupported image encoding {msg.encoding!r}; expected one of "
            f"{', '.join(accepted)}" + (f" ({hint})" if hint else ""),
            "encoding",
        )
    if msg.width == 0 or msg.height == 0:
        raise ImageDecodeError(
            f"zero-sized image {msg.width}x{msg.height}: nothing to estimate", "size"
        )
    block_w, block_h = encoding.pixel_block
    if msg.width % block_w or msg.height % block_h:
        sides, shared = ("width", "2") if block_h == 1 else ("width and height", "2x2")
        raise ImageDecodeError(
            f"{msg.encoding} image {msg.width}x{msg.height}: {msg.encoding} needs an even "
            f"{sides} ({shared} pixels share one U and one V sample); the publisher's header "
            "is wrong",
            "size",
        )
    row_bytes = msg.width * encoding.channels * encoding.dtype.itemsize
    if msg.step < row_bytes:
        raise ImageDecodeError(
            f"step {msg.step} is smaller than width x channels = {row_bytes} for "
            f"{msg.encoding} {msg.width}x{msg.height}; the publisher's header is wrong",
            "step",
        )
    rows = encoding.frame_rows(msg.height)
    if len(msg.data) < msg.step * rows:
        planes = "" if rows == msg.height else f" ({msg.encoding}: {rows} rows, all planes)"
        raise ImageDecodeError(
            f"image data has {len(msg.data)} bytes, expected step x height = "
            f"{msg.step} x {rows} = {msg.step * rows}{planes}; message truncated",
            "data",
        )
    frame = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * rows)
    return encoding.pixels(frame.reshape(rows, msg.step), msg.width, msg.height, msg.is_bigendian)


def image_to_rgb(msg: Any) -> np.ndarray:
    """Raw colour ``Image`` (any of ``COLOUR_ENCODINGS``: RGB/BGR/mono 8 and 16 bit, YUV
    4:2:2, NV21, NV24, Bayer) → HxWx3 uint8 RGB as cv_bridge converts it (rgb8: a view)."""
    pixels = image_to_array(msg, COLOUR_ENCODINGS, _COLOUR_HINT)
    check_proportions(msg.width, msg.height)
    return ENCODINGS[msg.encoding].rgb_of(pixels)


def depth_to_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """A depth array in ``encoding`` (32FC1 m, 16UC1 mm) → float32 metres, NaN invalid.

    As depth_image_proc's ``DepthTraits::toMeters``: 32FC1 values are kept (NaN/Inf stay),
    16UC1 millimetres are scaled and their 0 ("no return") becomes NaN.
    """
    traits = ENCODINGS.get(encoding)
    if traits is None or traits.metres_per_unit is None:
        raise ImageDecodeError(
            f"depth encoding {encoding!r} is not supported; {_DEPTH_HINT}", "encoding"
        )
    depth_m = depth.astype(np.float32) * np.float32(traits.metres_per_unit)
    if traits.zero_is_invalid:
        depth_m[depth == 0] = np.nan
    return depth_m


def image_to_metres(msg: Any) -> np.ndarray:
    """A 32FC1 / 16UC1 depth ``Image`` → HxW float32 metres, NaN invalid."""
    return depth_to_metres(image_to_array(msg, DEPTH_ENCODINGS, _DEPTH_HINT), msg.encoding)


def check_proportions(width: int, height: int) -> None:
    """Raise ``ImageDecodeError`` for images too elongated to resize for the network."""
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageDecodeError(
            f"image {width}x{height} is more elongated than {MAX_ASPECT_RATIO}:1; the network "
            "input (shorter side = input_size) would be too large. Crop or resize it first",
            "size",
        )


# ---- CompressedImage → array --------------------------------------------------------------
def compressed_to_rgb(msg: Any) -> np.ndarray:
    """``CompressedImage`` (JPEG or PNG, colour or grey) → HxWx3 uint8 RGB.

    The size the header declares is checked before decoding: a few hundred bytes can
    declare a decompression bomb (a 410 KB PNG decodes to 826 MB).
    """
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


# ---- array → Image ------------------------------------------------------------------------
def set_byte_data(msg: Any, data: pyarray.array) -> None:
    """``msg.data = data`` without the setter's copy (``data`` must be ``array.array('B')``).

    rosidl's generated setter stores an ``array.array('B')`` as is when field checks are on
    (``ROS_PYTHON_CHECK_FIELDS=1``) and copies it otherwise; the stored value is the same
    either way (slot ``_data``). Other message classes (rosbags, namespaces) use their setter.
    """
    if data.typecode != "B":
        raise TypeError(f"message data must be array.array('B'), got typecode {data.typecode!r}")
    if hasattr(msg, "_data"):
        msg._data = data
    else:
        msg.data = data


def fill_image(
    msg: Any, array: np.ndarray, encoding: str, header: Any = None, buffer: ByteBuffer | None = None
) -> Any:
    """``msg`` (a ``sensor_msgs/Image``) set to HxW / HxWxC ``array`` in ``encoding``
    (native byte order); returns ``msg``.

    The pixels are copied once: into ``buffer`` (a ``geometry.ByteBuffer`` reused frame
    after frame: publish the message before the next fill) or into a new array.
    """
    traits = ENCODINGS.get(encoding)
    if traits is None or traits.planes != "interleaved":
        writable = (n for n, e in ENCODINGS.items() if e.planes == "interleaved")
        raise ValueError(
            f"cannot write encoding {encoding!r}; expected one of {', '.join(writable)}"
        )
    expected_ndim = 2 if traits.channels == 1 else 3
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != traits.channels):
        raise ValueError(
            f"{encoding} needs an array of shape HxW"
            + (f"x{traits.channels}" if traits.channels > 1 else "")
            + f", got {array.shape}"
        )
    if buffer is None:
        pixels = np.ascontiguousarray(array, dtype=traits.dtype)
        data = pyarray.array("B")
        data.frombytes(memoryview(pixels).cast("B"))
    else:
        np.copyto(buffer.view(array.shape, traits.dtype), array, casting="unsafe")  # as astype
        data = buffer.data
    if header is not None:
        msg.header = header
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = traits.dtype.itemsize > 1 and sys.byteorder == "big"
    msg.step = array.shape[1] * traits.channels * traits.dtype.itemsize
    set_byte_data(msg, data)
    return msg


def array_to_image(
    array: np.ndarray, encoding: str, header: Any = None, image_type: type | None = None
) -> Any:
    """HxW / HxWxC array → a new ``sensor_msgs/Image`` in ``encoding`` (native byte order).

    ``image_type``: the message class to build (default ``sensor_msgs.msg.Image``).
    """
    if image_type is None:
        from sensor_msgs.msg import Image

        image_type = Image
    return fill_image(image_type(), array, encoding, header)


# ---- PointCloud2 ↔ arrays -----------------------------------------------------------------
def cloud_fields(msg: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named fields of a ``PointCloud2`` → flat arrays (width × height values each) of
    the fields' own types in native byte order; any layout: offsets, padding in a point,
    ``row_step`` padding, byte order."""
    fields = {f.name: f for f in msg.fields}
    has = [(f.name, f.datatype, f.offset) for f in msg.fields]
    for name in names:
        kind = POINT_FIELD_TYPES.get(fields[name].datatype) if name in fields else None
        if kind is None or fields[name].offset + np.dtype(kind).itemsize > msg.point_step:
            raise ValueError(
                f"PointCloud2 needs field(s) {', '.join(names)} of a known datatype inside "
                f"point_step {msg.point_step}; it has (name, datatype, offset) {has}"
            )
    point_bytes = msg.width * msg.point_step
    if msg.row_step < point_bytes or len(msg.data) < msg.row_step * msg.height:
        raise ValueError(
            f"PointCloud2 {msg.width}x{msg.height}: row_step {msg.row_step} and "
            f"{len(msg.data)} data bytes are too small for point_step {msg.point_step}"
        )
    order = ">" if msg.is_bigendian else "<"
    record = np.dtype(
        {
            "names": list(names),
            "formats": [order + POINT_FIELD_TYPES[fields[n].datatype] for n in names],
            "offsets": [fields[n].offset for n in names],
            "itemsize": msg.point_step,
        }
    )
    rows = np.frombuffer(msg.data, np.uint8, msg.row_step * msg.height)
    rows = rows.reshape(msg.height, msg.row_step)[:, :point_bytes]
    points = np.ascontiguousarray(rows).view(record).reshape(msg.width * msg.height)
    return {n: points[n].astype(points[n].dtype.newbyteorder("="), copy=True) for n in names}


def cloud_to_xyz(msg: Any, dtype: type = np.float64) -> np.ndarray:
    """x, y, z of a ``PointCloud2`` (FLOAT32 or FLOAT64 fields) → N×3, NaN points kept."""
    datatypes = {f.name: f.datatype for f in msg.fields}
    if any(datatypes.get(axis) not in (7, 8) for axis in "xyz"):
        raise ValueError(
            f"PointCloud2 needs FLOAT32/FLOAT64 fields x, y, z; got "
            f"{[(f.name, f.datatype) for f in msg.fields]}"
        )
    columns = cloud_fields(msg, ("x", "y", "z"))
    return np.stack([columns[axis].astype(dtype) for axis in "xyz"], axis=1)


def cloud_to_rgb(msg: Any) -> np.ndarray | None:
    """The packed ``rgb`` field (0x00RRGGBB in a FLOAT32's bits) → N×3 uint8; None if absent."""
    if not any(f.name == "rgb" for f in msg.fields):
        return None
    packed = cloud_fields(msg, ("rgb",))["rgb"]
    if packed.dtype.itemsize != 4:
        raise ValueError(f"PointCloud2 field rgb must be 4 bytes, got {packed.dtype}")
    bits = packed.view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1).astype(np.uint8)


def fill_cloud(msg: Any, cloud: PackedCloud, header: Any = None) -> Any:
    """``msg`` (a ``sensor_msgs/PointCloud2``) set to a packed cloud; returns ``msg``.

    The message takes ``cloud.data`` (the packer's ``array.array``) as it is: no copy.
    """
    from sensor_msgs.msg import PointField

    if header is not None:
        msg.header = header
    msg.height, msg.width = cloud.height, cloud.width
    msg.fields = [
        PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
        for f in cloud.fields
    ]
    msg.is_bigendian = cloud.is_bigendian
    msg.point_step, msg.row_step = cloud.point_step, cloud.row_step
    set_byte_data(msg, cloud.data)
    msg.is_dense = cloud.is_dense
    return msg


def cloud_to_msg(cloud: PackedCloud, header: Any = None, cloud_type: type | None = None) -> Any:
    """A packed cloud (``dav2_ros.geometry.PackedCloud``) → a new ``sensor_msgs/PointCloud2``."""
    if cloud_type is None:
        from sensor_msgs.msg import PointCloud2

        cloud_type = PointCloud2
    return fill_cloud(cloud_type(), cloud, header)
