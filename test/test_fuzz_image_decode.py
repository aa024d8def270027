"""Fuzzing the message conversion layer with hypothesis: whatever a publisher sends,
``image_to_rgb`` / ``compressed_to_rgb`` return an HxWx3 uint8 image of the declared
size or raise ``ImageDecodeError`` (with a problem ``kind`` the node throttles by) and
nothing else; camera_info helpers fail only with ``IntrinsicsError``.

Real ``sensor_msgs`` messages are built, as the subscription would hand them over.
"""

from __future__ import annotations

import math
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from camera_encoders import OPENCV_CODES, frame_bytes, opencv_reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from dav2_ros.geometry import IntrinsicsError
from dav2_ros.ros.camera_info import intrinsics_of, scaled_camera_info
from dav2_ros.ros.compressed_header import PNG_SIGNATURE, declared_size
from dav2_ros.ros.conversions import (
    MAX_ASPECT_RATIO,
    MAX_COMPRESSED_PIXELS,
    ImageDecodeError,
    compressed_to_rgb,
    image_to_rgb,
)
from dav2_ros.ros.encodings import COLOUR_ENCODINGS, ENCODINGS

# Bytes of one pixel in a row (semi-planar YUV: in the luma plane).
PIXEL_BYTES = {n: ENCODINGS[n].channels * ENCODINGS[n].dtype.itemsize for n in COLOUR_ENCODINGS}

KINDS = {"encoding", "size", "step", "data", "decode"}
# Every encoding of sensor_msgs/image_encodings.hpp plus a few a driver could invent.
ROS_ENCODINGS = [
    *COLOUR_ENCODINGS,
    "16UC1", "16SC1", "32FC1", "64FC1", "8UC1", "8UC3", "8UC4", "32SC2", "16UC3",
    "UYVY", "YUYV", "NV21", "nv12", "", "RGB8", "rgb8 ", "jpeg", "\u00e9t\u00e9",
]  # fmt: skip
FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def raw_image(width: int, height: int, encoding: str, step: int, data: bytes, big: bool) -> Image:
    return Image(
        header=Header(frame_id="cam"),
        width=width,
        height=height,
        encoding=encoding,
        step=step,
        is_bigendian=big,
        data=data,
    )


def assert_decodes_or_says_why(decode, msg) -> np.ndarray | None:
    """The conversion contract: an RGB image or a specific ImageDecodeError, never a crash."""
    try:
        rgb = decode(msg)
    except ImageDecodeError as exc:
        assert exc.kind in KINDS, exc.kind
        assert len(str(exc)) > 20, "the error must say what was expected"
        return None
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    return rgb


@st.composite
def hostile_images(draw) -> Image:
    """Small declared sizes with any step and any data length, or huge declared sizes."""
    encoding = draw(st.one_of(st.sampled_from(ROS_ENCODINGS), st.text(max_size=12)))
    if draw(st.booleans()):
        width, height = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    else:  # huge declared dimensions (uint32 range), little data
        width = draw(st.sampled_from([0, 1, 2**16, 2**31, 2**32 - 1]))
        height = draw(st.sampled_from([0, 1, 3, 2**20, 2**32 - 1]))
    pixel_bytes = PIXEL_BYTES.get(encoding, 3)
    step = draw(
        st.one_of(
            st.just(width * pixel_bytes),
            st.integers(0, 200),
            st.just(max(width * pixel_bytes - 1, 0)),
            st.sampled_from([2**32 - 1, width * pixel_bytes + 13]),
        )
    )
    step = min(step, 2**32 - 1)
    rows = ENCODINGS[encoding].frame_rows(height) if encoding in PIXEL_BYTES else height
    declared = min(step * rows, 200_000)
    length = draw(
        st.one_of(
            st.just(declared),
            st.integers(0, 600),
            st.just(max(declared - 1, 0)),
            st.just(declared + 77),
        )
    )
    data = draw(st.binary(min_size=min(length, 64), max_size=min(length, 64))) * (length // 64 + 1)
    return raw_image(width, height, encoding, step, data[:length], draw(st.booleans()))


@FUZZ
@given(hostile_images())
def test_any_raw_image_decodes_to_its_size_or_raises_image_decode_error(msg: Image) -> None:
    rgb = assert_decodes_or_says_why(image_to_rgb, msg)
    if rgb is not None:
        encoding = ENCODINGS[msg.encoding]
        assert msg.encoding in COLOUR_ENCODINGS
        assert rgb.shape[:2] == (msg.height, msg.width)
        assert msg.step >= msg.width * PIXEL_BYTES[msg.encoding]
        assert len(msg.data) >= msg.step * encoding.frame_rows(msg.height)
        assert msg.width % encoding.pixel_block[0] == msg.height % encoding.pixel_block[1] == 0


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "8UC3", "UYVY", "NV21", "nv12", "Y16"])
def test_unsupported_encodings_name_themselves_and_the_supported_ones(encoding: str) -> None:
    msg = raw_image(4, 4, encoding, 64, bytes(256), False)
    with pytest.raises(ImageDecodeError, match=f"unsupported image encoding '{encoding}'") as err:
        image_to_rgb(msg)
    assert err.value.kind == "encoding" and "rgb8, bgr8" in str(err.value)


def test_step_smaller_than_a_row_and_short_data_are_specific_errors() -> None:
    with pytest.raises(ImageDecodeError, match="step 11 is smaller than width x channels = 12"):
        image_to_rgb(raw_image(4, 2, "rgb8", 11, bytes(24), False))
    with pytest.raises(ImageDecodeError, match="image data has 23 bytes, expected") as err:
        image_to_rgb(raw_image(4, 2, "rgb8", 12, bytes(23), False))
    assert err.value.kind == "data"


def test_elongated_image_is_refused_before_it_reaches_the_network() -> None:
    # 1x4000 would be a 126x504000 network input at input_size 126.
    width = 4000
    with pytest.raises(ImageDecodeError, match="more elongated than") as err:
        image_to_rgb(raw_image(width, 1, "mono8", width, bytes(width), False))
    assert err.value.kind == "size"
    ok = MAX_ASPECT_RATIO * 10
    assert image_to_rgb(raw_image(ok, 10, "mono8", ok, bytes(ok * 10), False)).shape == (10, ok, 3)


def random_planes(
    rng: np.random.Generator, encoding: str, height: int, width: int
) -> list[np.ndarray]:
    """Random values in the planes of ``encoding`` (as ``camera_encoders.encode`` lays
    them out): any bytes a camera could send."""
    traits = ENCODINGS[encoding]
    high = np.iinfo(traits.dtype).max + 1
    if encoding == "nv21":
        shapes = [(height, width), (height // 2, width // 2, 2)]
    else:
        shapes = [(height, width) + ((traits.channels,) if traits.channels > 1 else ())]
    return [rng.integers(0, high, shape, dtype=traits.dtype) for shape in shapes]


@FUZZ
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from(sorted(OPENCV_CODES)),
    st.integers(0, 9),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_valid_images_decode_to_the_same_rgb_as_opencv(
    half_width: int, half_height: int, encoding: str, padding: int, big: bool, seed: int
) -> None:
    width, height = 2 * half_width, 2 * half_height  # even: every layout takes it
    assume(max(width, height) <= MAX_ASPECT_RATIO * min(width, height))
    planes = random_planes(np.random.default_rng(seed), encoding, height, width)
    # is_bigendian only matters for 16-bit values: 8-bit data must decode the same.
    data, step = frame_bytes(planes, padding, big)
    msg = raw_image(width, height, encoding, step, data, big)
    np.testing.assert_array_equal(image_to_rgb(msg), opencv_reference(planes, encoding))


def _encoded(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (24, 32, 3), np.uint8)
    ok, buffer = cv2.imencode(f".{fmt}", image)
    assert ok
    return buffer.tobytes()


@st.composite
def corrupt_payloads(draw) -> tuple[str, str, bytes]:
    fmt = draw(st.sampled_from(["jpeg", "png"]))
    data = bytearray(_encoded("jpg" if fmt == "jpeg" else "png", draw(st.integers(0, 5))))
    how = draw(st.sampled_from(["truncate", "flip", "garbage", "header_only", "empty"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 20))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= draw(st.integers(1, 255))
    elif how == "garbage":
        data = bytearray(draw(st.binary(max_size=2000)))
    elif how == "header_only":
        data = data[:32]
    else:
        data = bytearray()
    return fmt, how, bytes(data)


@FUZZ
@given(corrupt_payloads(), st.text(max_size=20))
def test_corrupt_jpeg_png_payloads_decode_or_raise_image_decode_error(
    payload: tuple[str, str, bytes], fmt_field: str
) -> None:
    fmt, how, data = payload
    msg = CompressedImage(header=Header(frame_id="cam"), format=fmt_field or fmt, data=data)
    rgb = assert_decodes_or_says_why(compressed_to_rgb, msg)
    if rgb is not None:
        # A flipped bit may still decode, and one in the frame header (SOF/IHDR) legitimately
        # changes the size the file declares: what must hold is a usable RGB image.
        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
        assert rgb.shape[0] > 0 and rgb.shape[1] > 0
        if how == "truncate":  # the header is intact: the real size
            assert rgb.shape == (24, 32, 3)


def test_undecodable_payload_error_names_format_and_size() -> None:
    msg = CompressedImage(format="jpeg", data=b"\xff\xd8\xff" + bytes(100))
    with pytest.raises(ImageDecodeError, match=r"cannot decode compressed image \(format 'jpeg', "):
        compressed_to_rgb(msg)
    with pytest.raises(ImageDecodeError, match="has no data"):
        compressed_to_rgb(CompressedImage(format="png", data=b""))


special_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e-300, 1e300]),
)


@FUZZ
@given(
    st.lists(special_floats, min_size=9, max_size=9),
    st.integers(0, 5000),
    st.integers(0, 5000),
    st.integers(1, 2000),
    st.integers(1, 2000),
)
def test_any_camera_info_is_usable_or_rejected_with_intrinsics_error(
    k: list[float], width: int, height: int, depth_w: int, depth_h: int
) -> None:
    info = CameraInfo(width=width, height=height, k=k, p=[*k[:3], 0.0, *k[3:6], 0.0, *k[6:], 0.0])
    try:
        intrinsics = intrinsics_of(info)
    except IntrinsicsError as exc:
        assert "image size must be positive" in str(exc)
        assert width == 0 or height == 0
        return
    if not intrinsics.is_calibrated:  # zero, negative, NaN or Inf focal/centre: no points
        assert not (math.isfinite(k[0]) and k[0] > 0 and math.isfinite(k[4]) and k[4] > 0) or (
            not (math.isfinite(k[2]) and math.isfinite(k[5]))
        )
        return
    scaled = scaled_camera_info(info, Header(frame_id="cam"), depth_w, depth_h)
    assert (scaled.width, scaled.height) == (depth_w, depth_h)
    assert scaled.k[0] == pytest.approx(k[0] * (depth_w / width))


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from(["png", "jpg", "progressive jpg", "grey png", "grey jpg"]),
)
def test_declared_size_reads_the_real_size_from_jpeg_and_png_headers(
    width: int, height: int, kind: str
) -> None:
    image = np.zeros((height, width) if "grey" in kind else (height, width, 3), np.uint8)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if "progressive" in kind else []
    ok, data = cv2.imencode("." + kind.split()[-1], image, params)
    assert ok
    assert declared_size(data.tobytes()) == (width, height)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([b"", b"\xff\xd8", PNG_SIGNATURE]))
def test_declared_size_of_any_bytes_is_a_size_or_none(data: bytes, prefix: bytes) -> None:
    size = declared_size(prefix + data)
    assert size is None or (isinstance(size[0], int) and isinstance(size[1], int))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and carries one empty-ish IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (3 * width + 1))
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_its_header_before_decoding() -> None:
    # 20000x20000 RGB would decode to 1.2 GB from a payload of a few KB.
    msg = CompressedImage(format="png", data=_png_header_only(20000, 20000))
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="declares 20000x20000 pixels, more than") as err:
        compressed_to_rgb(msg)
    assert err.value.kind == "size" and time.perf_counter() - start < 0.5
    # Below the limit the same kind of truncated payload is a plain decode error.
    small = CompressedImage(format="png", data=_png_header_only(64, 48))
    with pytest.raises(ImageDecodeError, match="cannot decode compressed image"):
        compressed_to_rgb(small)
    assert 20000 * 20000 > MAX_COMPRESSED_PIXELS > 7680 * 4320
