"""Message conversions, camera_info scaling, the mailbox and statistics, without DDS
(real rclpy message classes, no node)."""

from __future__ import annotations

import importlib.util
import threading

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from test_ros_support import camera_info_msg, image_msg, scene_rgb

from dav2_ros.ros.colorize import colorize
from dav2_ros.ros.image_decode import ImageDecodeError, compressed_to_rgb, image_to_rgb
from dav2_ros.ros.mailbox import LatestMailbox
from dav2_ros.ros.messages import float_image_msg, scaled_camera_info
from dav2_ros.ros.stats import LatencyWindow, RateMeter

ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"]
HAS_CV_BRIDGE = importlib.util.find_spec("cv_bridge") is not None


def expected_rgb(rgb: np.ndarray, encoding: str) -> np.ndarray:
    if encoding == "mono8":
        return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    return rgb


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_numpy_path_decodes_every_encoding_with_row_padding(encoding: str, padding: int) -> None:
    rgb = scene_rgb(9, 13)
    msg = image_msg(rgb, encoding, 1, "f", row_padding=padding)
    got = image_to_rgb(msg, use_cv_bridge=False)
    assert got.dtype == np.uint8 and got.shape == (9, 13, 3)
    np.testing.assert_array_equal(got, expected_rgb(rgb, encoding))


@pytest.mark.skipif(not HAS_CV_BRIDGE, reason="cv_bridge is not importable (no ROS install)")
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_cv_bridge_path_matches_numpy_path(encoding: str) -> None:
    msg = image_msg(scene_rgb(9, 13), encoding, 1, "f", row_padding=3)
    np.testing.assert_array_equal(
        image_to_rgb(msg, use_cv_bridge=True), image_to_rgb(msg, use_cv_bridge=False)
    )


def bad(**fields: object) -> Image:
    msg = image_msg(scene_rgb(4, 6), "rgb8", 1, "f")
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize(
    ("msg", "kind", "text"),
    [
        (bad(encoding="32FC1"), "encoding", "unsupported image encoding '32FC1'"),
        (bad(encoding="yuv422"), "encoding", "expected one of rgb8, bgr8"),
        (bad(width=0), "size", "zero-sized image 0x4"),
        (bad(height=0, data=b""), "size", "zero-sized image 6x0"),
        (bad(step=10), "step", "step 10 is smaller than width x channels = 18"),
        (bad(data=bytes(71)), "data", "71 bytes, expected step x height = 18 x 4 = 72"),
    ],
)
def test_bad_raw_images_raise_specific_errors(msg: Image, kind: str, text: str) -> None:
    with pytest.raises(ImageDecodeError, match=text) as error:
        image_to_rgb(msg, use_cv_bridge=False)
    assert error.value.kind == kind


@pytest.mark.parametrize("grey", [False, True])
def test_png_decodes_exactly_to_rgb(grey: bool) -> None:
    rgb = scene_rgb(10, 12)
    if grey:
        rgb = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        ok, data = cv2.imencode(".png", rgb[:, :, 0])  # a 1-channel PNG
    else:
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(
        compressed_to_rgb(CompressedImage(format="png", data=data.tobytes())), rgb
    )


def test_jpeg_decodes_close_to_rgb() -> None:
    rgb = scene_rgb(32, 48)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98]
    )
    decoded = compressed_to_rgb(CompressedImage(format="jpeg", data=data.tobytes()))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < 4


@pytest.mark.parametrize(("data", "kind"), [(b"", "size"), (b"not an image", "decode")])
def test_bad_compressed_images_raise_specific_errors(data: bytes, kind: str) -> None:
    with pytest.raises(ImageDecodeError, match="compressed image") as error:
        compressed_to_rgb(CompressedImage(format="jpeg", data=data))
    assert error.value.kind == kind


def test_scaled_camera_info_scales_k_p_size_and_roi_and_takes_the_header() -> None:
    info = camera_info_msg(640, 480, [500.0, 0, 320.0, 0, 510.0, 240.0, 0, 0, 1], "cam")
    info.p[3] = -50.0  # Tx = -fx * baseline of a right stereo camera
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 64, 48, 320, 240
    header = float_image_msg(info.header, np.zeros((1, 1), np.float32)).header
    header.frame_id = "depth_frame"
    scaled = scaled_camera_info(info, header, 320, 120)
    assert (scaled.width, scaled.height, scaled.header.frame_id) == (320, 120, "depth_frame")
    np.testing.assert_allclose(scaled.k, [250, 0, 160, 0, 127.5, 60, 0, 0, 1])
    np.testing.assert_allclose(scaled.p, [250, 0, 160, -25, 0, 127.5, 60, 0, 0, 0, 1, 0])
    roi = scaled.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (32, 12, 160, 60)
    assert list(scaled.d) == list(info.d) and scaled.distortion_model == "plumb_bob"


def test_float_image_msg_is_32fc1_with_nan_preserved() -> None:
    depth_m = np.array([[1.5, np.nan, 3.0]], np.float32)
    msg = float_image_msg(camera_info_msg(1, 1, [0.0] * 9, "f").header, depth_m)
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("32FC1", 3, 1, 12)
    np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), np.float32), depth_m[0])


def test_mailbox_keeps_only_the_newest_and_counts_drops() -> None:
    box: LatestMailbox[int] = LatestMailbox()
    for i in range(5):
        box.put(i)
    assert box.get(timeout_s=0) == 4
    assert (box.received, box.dropped) == (5, 4)
    assert box.get(timeout_s=0.01) is None


def test_mailbox_wakes_a_waiting_consumer_and_close_releases_it() -> None:
    box: LatestMailbox[str] = LatestMailbox()
    got: list[str | None] = []
    consumer = threading.Thread(target=lambda: got.append(box.get(timeout_s=10)))
    consumer.start()
    box.put("frame")
    consumer.join(timeout=5)
    assert got == ["frame"]
    waiting = threading.Thread(target=lambda: got.append(box.get(timeout_s=10)))
    waiting.start()
    box.close()
    waiting.join(timeout=5)
    assert not waiting.is_alive() and got[-1] is None


def test_rate_meter_and_latency_window() -> None:
    meter = RateMeter(window_s=2.0)
    for t in np.arange(0.0, 4.0, 0.1):
        meter.tick(now_s=float(t))
    assert meter.rate_hz(now_s=4.0) == pytest.approx(10.0, abs=0.6)
    window = LatencyWindow(size=100)
    assert np.isnan(window.percentile_ms(50))
    for value in range(1, 101):
        window.add(float(value))
    assert window.percentile_ms(50) == pytest.approx(50.5)
    assert window.percentile_ms(95) == pytest.approx(95.05)


def test_colorize_paints_invalid_black_and_near_warm() -> None:
    depth_m = np.array([[1.0, 5.0, np.nan]], np.float32)
    rgb = colorize(depth_m, near_is_large=False)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert (rgb[0, 2] == 0).all()
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, 1, 2] > rgb[0, 1, 0]  # near red, far blue
