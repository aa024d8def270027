"""Every colour encoding a camera driver publishes, decoded by ``image_to_rgb`` (real
``sensor_msgs`` messages, real OpenCV, no DDS): equal to OpenCV's own conversion of the raw
buffer (cv_bridge's convention), close to the known image the buffer was encoded from
(``camera_encoders``, numpy only), with padded rows and big-endian 16-bit data; and bad
input of each layout refused with an ``ImageDecodeError`` that names the encoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from camera_encoders import (
    BAYER,
    OPENCV_CODES,
    YUV,
    YUV_ROUNDING,
    blocky,
    cv_bridge_8_bit,
    encode,
    frame_bytes,
    opencv_reference,
    rgb_to_yuv,
    shown_rgb,
    smooth_rgb,
    yuv_to_rgb,
)
from sensor_msgs.msg import Image
from test_ros_support import image_msg, scene_rgb

from dav2_ros.ros.conversions import ImageDecodeError, image_to_array, image_to_rgb
from dav2_ros.ros.encodings import COLOUR_ENCODINGS

HEIGHT, WIDTH = 12, 16


def known_image(encoding: str) -> np.ndarray:
    """A gentle gradient for Bayer (demosaicing interpolates it), 2x2 blocks for YUV (the
    chroma subsampling loses nothing), a busy pattern for the lossless encodings."""
    if encoding.startswith("bayer_"):
        return smooth_rgb(HEIGHT, WIDTH)
    if encoding in YUV:
        return blocky(scene_rgb(HEIGHT // 2, WIDTH // 2))
    return scene_rgb(HEIGHT, WIDTH)


def allowed_error(encoding: str) -> int:
    if encoding.startswith("bayer_"):
        return 1  # away from the borders
    return YUV_ROUNDING if encoding in YUV else 0


def test_every_encoding_the_drivers_publish_is_accepted() -> None:
    # usb_cam, v4l2_camera, RealSense, camera_ros, gscam2, Orbbec, ZED (docs/encodings.md),
    # with the names sensor_msgs/image_encodings.hpp gives them.
    assert set(COLOUR_ENCODINGS) == {*OPENCV_CODES, "nv24"}


@pytest.mark.parametrize(("padding", "big_endian"), [(0, False), (5, False), (3, True)])
@pytest.mark.parametrize("encoding", sorted(OPENCV_CODES))
def test_each_encoding_decodes_as_opencv_and_close_to_the_known_image(
    encoding: str, padding: int, big_endian: bool
) -> None:
    rgb = known_image(encoding)
    msg = image_msg(rgb, encoding, 1, "f", row_padding=padding, big_endian=big_endian)
    got = image_to_rgb(msg)
    assert got.dtype == np.uint8 and got.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(got, opencv_reference(encode(rgb, encoding), encoding))
    error = np.abs(got.astype(int) - shown_rgb(rgb, encoding))
    if encoding.startswith("bayer_"):
        error = error[2:-2, 2:-2]  # demosaicing extrapolates at the borders
    assert error.max() <= allowed_error(encoding), (encoding, error.max())


@pytest.mark.parametrize("phase", BAYER)
def test_bayer_phases_pair_with_their_opencv_code_and_another_swaps_red_and_blue(
    phase: str,
) -> None:
    rgb = smooth_rgb(HEIGHT, WIDTH)  # red rises and blue falls to the right
    msg = image_msg(rgb, f"bayer_{phase}8", 1, "f")
    interior = (slice(2, -2), slice(2, -2))
    assert np.abs(image_to_rgb(msg)[interior].astype(int) - rgb[interior]).max() <= 1
    mosaic = np.frombuffer(bytes(msg.data), np.uint8).reshape(HEIGHT, WIDTH)
    for other in set(BAYER) - {phase}:
        wrong = cv2.cvtColor(mosaic, OPENCV_CODES[f"bayer_{other}8"])
        assert np.abs(wrong[interior].astype(int) - rgb[interior]).max() > 40, other


@pytest.mark.parametrize("big_endian", [False, True])
def test_16_bit_values_become_8_bit_as_cv_bridge_scales_them(big_endian: bool) -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # every 16-bit value
    data, step = frame_bytes([values], big_endian=big_endian)
    msg = Image(height=256, width=256, encoding="mono16", step=step, is_bigendian=big_endian)
    msg.data = data
    grey = image_to_rgb(msg)[:, :, 0]
    np.testing.assert_array_equal(grey, cv_bridge_8_bit(values))
    # round(v / 257): 257 k → k, and the halfway points fall between 128 and 129 above it.
    assert (grey.flat[0], grey.flat[128], grey.flat[129], grey.flat[65535]) == (0, 0, 1, 255)
    assert grey.flat[257 * 100] == grey.flat[257 * 100 + 128] == 100


def test_nv24_decodes_by_the_bt601_limited_range_formula() -> None:
    # Every pixel its own chroma: random colours, nothing shared between neighbours.
    rgb = np.random.default_rng(7).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    msg = image_msg(rgb, "nv24", 1, "f", row_padding=3)
    yuv = np.rint(rgb_to_yuv(rgb))  # the stored samples
    expected = np.clip(yuv_to_rgb(yuv), 0, 255)
    got = image_to_rgb(msg)
    assert np.abs(got - expected).max() <= 1  # OpenCV's fixed-point arithmetic
    assert np.abs(got.astype(int) - rgb).max() <= YUV_ROUNDING
    # Where chroma is shared anyway (2x2 blocks), NV24 decodes exactly as NV21 does.
    blocks = blocky(scene_rgb(HEIGHT // 2, WIDTH // 2))
    np.testing.assert_array_equal(
        image_to_rgb(image_msg(blocks, "nv24", 1, "f")),
        image_to_rgb(image_msg(blocks, "nv21", 1, "f")),
    )


def test_semi_planar_step_applies_to_every_plane() -> None:
    rgb = blocky(scene_rgb(HEIGHT // 2, WIDTH // 2))
    for encoding, chroma_rows in [("nv21", HEIGHT // 2), ("nv24", 2 * HEIGHT)]:
        msg = image_msg(rgb, encoding, 1, "f", row_padding=10)
        assert msg.step == WIDTH + 10
        assert len(msg.data) == msg.step * (HEIGHT + chroma_rows)
        np.testing.assert_array_equal(
            image_to_rgb(msg), image_to_rgb(image_msg(rgb, encoding, 1, "f"))
        )
    nv24 = image_to_array(image_msg(rgb, "nv24", 1, "f", row_padding=10))
    assert nv24.shape == (HEIGHT, WIDTH, 3)  # Y, U, V per pixel
    np.testing.assert_array_equal(nv24, np.rint(rgb_to_yuv(rgb)))


def test_rgb8_is_decoded_without_a_copy() -> None:
    msg = image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", 1, "f", row_padding=4)
    assert np.shares_memory(image_to_rgb(msg), np.frombuffer(msg.data, np.uint8))


def bad(encoding: str, width: int = WIDTH, height: int = HEIGHT, **fields: object) -> Image:
    """A well-formed ``encoding`` message of ``width`` x ``height`` with ``fields`` changed."""
    msg = image_msg(blocky(scene_rgb(HEIGHT // 2, WIDTH // 2)), encoding, 1, "f")
    msg.width, msg.height = width, height
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize(
    ("msg", "kind", "text"),
    [
        (bad("yuv422_yuy2", width=15), "size",
         "yuv422_yuy2 image 15x12: yuv422_yuy2 needs an even width .2 pixels share one U"),
        (bad("yuv422", width=15), "size", "yuv422 needs an even width"),
        (bad("nv21", height=11), "size",
         "nv21 image 16x11: nv21 needs an even width and height .2x2 pixels share"),
        (bad("nv21", width=15), "size", "nv21 needs an even width and height"),
        (bad("yuyv", step=31), "step", "step 31 is smaller than width x channels = 32 for yuyv"),
        (bad("nv21", data=bytes(16 * 18 - 1)), "data",
         r"287 bytes, expected step x height = 16 x 18 = 288 \(nv21: 18 rows, all planes\)"),
        (bad("nv24", data=bytes(16 * 12 * 2)), "data",
         r"expected step x height = 16 x 36 = 576 \(nv24: 36 rows, all planes\)"),
        (bad("nv24", step=15), "step", "step 15 is smaller than width x channels = 16 for nv24"),
        (bad("mono16", step=31), "step", "step 31 is smaller than width x channels = 32"),
        (bad("bgra16", data=bytes(100)), "data", "100 bytes, expected step x height = 128 x 12"),
        (bad("bayer_grbg16", step=16), "step", "= 32 for bayer_grbg16"),
        (bad("bayer_rggb8", width=0), "size", "zero-sized image 0x12"),
    ],
)  # fmt: skip
def test_bad_images_of_each_layout_raise_errors_naming_the_encoding(
    msg: Image, kind: str, text: str
) -> None:
    with pytest.raises(ImageDecodeError, match=text) as error:
        image_to_rgb(msg)
    assert error.value.kind == kind
