"""Message conversions (``dav2_ros.ros.conversions``), camera_info scaling, the mailbox
and statistics, without DDS (real rclpy message classes, no node). Where ``cv_bridge`` is
importable (a ROS install) it is the reference the conversions are compared against."""

from __future__ import annotations

import importlib.util
import threading

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
from test_ros_support import camera_info_msg, image_msg, scene_rgb

from dav2_ros.colorize import colorize
from dav2_ros.geometry import CameraIntrinsics, CloudPacker, PinholeRays
from dav2_ros.ros.camera_info import scaled_camera_info
from dav2_ros.ros.conversions import (
    ImageDecodeError,
    array_to_image,
    cloud_to_msg,
    cloud_to_rgb,
    cloud_to_xyz,
    compressed_to_rgb,
    depth_to_metres,
    image_to_array,
    image_to_metres,
    image_to_rgb,
)
from dav2_ros.ros.mailbox import LatestMailbox
from dav2_ros.ros.stats import LatencyWindow, RateMeter

COLOUR_ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"]
HAS_CV_BRIDGE = importlib.util.find_spec("cv_bridge") is not None
NO_CV_BRIDGE = "cv_bridge is not importable (no ROS install): nothing to compare against"


def expected_rgb(rgb: np.ndarray, encoding: str) -> np.ndarray:
    if encoding == "mono8":
        return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    return rgb


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding", COLOUR_ENCODINGS)
def test_every_colour_encoding_decodes_to_rgb_with_row_padding(encoding: str, padding: int) -> None:
    rgb = scene_rgb(9, 13)
    msg = image_msg(rgb, encoding, 1, "f", row_padding=padding)
    got = image_to_rgb(msg)
    assert got.dtype == np.uint8 and got.shape == (9, 13, 3)
    np.testing.assert_array_equal(got, expected_rgb(rgb, encoding))


def depth_samples(encoding: str) -> np.ndarray:
    if encoding == "32FC1":
        return np.array([[1.5, np.nan, 0.0], [np.inf, 7.25, 0.5]], np.float32)
    return np.array([[0, 1500, 65535], [1, 2, 3]], np.uint16)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_depth_images_round_trip_through_the_table_with_padding_and_byte_order(
    encoding: str, big_endian: bool
) -> None:
    depth = depth_samples(encoding)
    msg = array_to_image(depth, encoding)
    assert (msg.encoding, msg.width, msg.height, msg.step) == (encoding, 3, 2, 3 * depth.itemsize)
    np.testing.assert_array_equal(image_to_array(msg), depth)
    # The same values as a big-endian publisher with 4 padding bytes per row sends them.
    stored = depth.astype(depth.dtype.newbyteorder(">" if big_endian else "<"))
    rows = np.concatenate([stored.view(np.uint8), np.full((2, 4), 9, np.uint8)], axis=1)
    msg = Image(height=2, width=3, encoding=encoding, is_bigendian=big_endian, step=rows.shape[1])
    msg.data = rows.tobytes()
    got = image_to_array(msg)
    assert got.dtype == depth.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, depth)


def test_depth_to_metres_follows_depth_image_proc_traits() -> None:
    metres = depth_to_metres(depth_samples("16UC1"), "16UC1")
    assert metres.dtype == np.float32 and np.isnan(metres[0, 0])  # 16UC1: 0 = no return
    np.testing.assert_allclose(metres[0, 1:], [1.5, 65.535], rtol=1e-6)
    np.testing.assert_allclose(metres[1], [0.001, 0.002, 0.003], rtol=1e-6)
    depth_m = depth_samples("32FC1")  # 32FC1 is metres already: values kept, 0.0 valid
    np.testing.assert_array_equal(depth_to_metres(depth_m, "32FC1"), depth_m)
    with pytest.raises(ImageDecodeError, match="publish 32FC1 .metres. or 16UC1"):
        depth_to_metres(np.zeros((2, 2), np.uint8), "mono8")


def test_image_to_metres_refuses_colour_and_short_images() -> None:
    with pytest.raises(ImageDecodeError, match="unsupported image encoding 'mono16'.*16UC1"):
        image_to_metres(Image(height=1, width=1, encoding="mono16", step=2, data=[0, 0]))
    msg = array_to_image(depth_samples("32FC1"), "32FC1")
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ImageDecodeError, match="message truncated") as error:
        image_to_metres(msg)
    assert error.value.kind == "data"


@pytest.mark.parametrize("encoding", COLOUR_ENCODINGS)
def test_array_to_image_writes_every_colour_encoding_back(encoding: str) -> None:
    msg = image_msg(scene_rgb(9, 13), encoding, 1, "f")
    again = array_to_image(image_to_array(msg), encoding, msg.header)
    assert (again.encoding, again.step, again.header.frame_id) == (encoding, msg.step, "f")
    assert bytes(again.data) == bytes(msg.data)
    with pytest.raises(ValueError, match=f"{encoding} needs an array of shape HxW"):
        array_to_image(np.zeros((2, 2, 2), np.uint8), encoding)


@pytest.mark.skipif(not HAS_CV_BRIDGE, reason=NO_CV_BRIDGE)
@pytest.mark.parametrize("encoding", [*COLOUR_ENCODINGS, "32FC1", "16UC1"])
def test_conversions_match_cv_bridge(encoding: str) -> None:
    from cv_bridge import CvBridge

    bridge = CvBridge()
    if encoding in COLOUR_ENCODINGS:
        msg = image_msg(scene_rgb(9, 13), encoding, 1, "f", row_padding=3)
        reference = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
        np.testing.assert_array_equal(image_to_rgb(msg), reference)
    else:
        msg = array_to_image(depth_samples(encoding), encoding)
    np.testing.assert_array_equal(
        image_to_array(msg), bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    )
    array = image_to_array(msg)
    ours, theirs = array_to_image(array, encoding), bridge.cv2_to_imgmsg(array, encoding)
    assert (ours.step, bytes(ours.data)) == (theirs.step, bytes(theirs.data))


def bad(**fields: object) -> Image:
    msg = image_msg(scene_rgb(4, 6), "rgb8", 1, "f")
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize(
    ("msg", "kind", "text"),
    [
        (bad(encoding="32FC1"), "encoding", "unsupported image encoding '32FC1'"),
        (bad(encoding="8UC3"), "encoding", "expected one of rgb8, bgr8"),
        (bad(width=0), "size", "zero-sized image 0x4"),
        (bad(height=0, data=b""), "size", "zero-sized image 6x0"),
        (bad(step=10), "step", "step 10 is smaller than width x channels = 18"),
        (bad(data=bytes(71)), "data", "71 bytes, expected step x height = 18 x 4 = 72"),
    ],
)
def test_bad_raw_images_raise_specific_errors(msg: Image, kind: str, text: str) -> None:
    with pytest.raises(ImageDecodeError, match=text) as error:
        image_to_rgb(msg)
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
    header = array_to_image(np.zeros((1, 1), np.float32), "32FC1", info.header).header
    header.frame_id = "depth_frame"
    scaled = scaled_camera_info(info, header, 320, 120)
    assert (scaled.width, scaled.height, scaled.header.frame_id) == (320, 120, "depth_frame")
    np.testing.assert_allclose(scaled.k, [250, 0, 160, 0, 127.5, 60, 0, 0, 1])
    np.testing.assert_allclose(scaled.p, [250, 0, 160, -25, 0, 127.5, 60, 0, 0, 0, 1, 0])
    roi = scaled.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (32, 12, 160, 60)
    assert list(scaled.d) == list(info.d) and scaled.distortion_model == "plumb_bob"


def test_32fc1_image_keeps_nan_and_the_header() -> None:
    depth_m = np.array([[1.5, np.nan, 3.0]], np.float32)
    msg = array_to_image(depth_m, "32FC1", camera_info_msg(1, 1, [0.0] * 9, "f").header)
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("32FC1", 3, 1, 12)
    assert msg.header.frame_id == "f"
    np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), np.float32), depth_m[0])


def _field(name: str, offset: int, datatype: int) -> PointField:
    return PointField(name=name, offset=offset, datatype=datatype, count=1)


def test_cloud_with_float64_fields_padding_and_organised_rows_decodes() -> None:
    # 2×2 organised cloud; fields in z, x, y order at odd offsets; 8 pad bytes per row.
    xyz = np.arange(12, dtype=np.float64).reshape(4, 3)
    point = np.zeros(4, dtype=[("pad", "u1", 4), ("z", ">f8"), ("x", ">f8"), ("y", ">f8")])
    point["x"], point["y"], point["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rows = point.view(np.uint8).reshape(2, -1)
    rows = np.concatenate([rows, np.zeros((2, 8), np.uint8)], axis=1)
    fields = [_field("z", 4, PointField.FLOAT64), _field("x", 12, PointField.FLOAT64),
              _field("y", 20, PointField.FLOAT64)]  # fmt: skip
    msg = PointCloud2(height=2, width=2, fields=fields, point_step=28, row_step=64)
    msg.is_bigendian = True
    msg.data = rows.tobytes()
    np.testing.assert_array_equal(cloud_to_xyz(msg), xyz)
    assert cloud_to_rgb(msg) is None


def test_cloud_without_xyz_or_with_short_data_is_refused() -> None:
    msg = PointCloud2(height=1, width=1, fields=[_field("x", 0, PointField.FLOAT32)])
    with pytest.raises(ValueError, match="needs FLOAT32/FLOAT64 fields x, y, z"):
        cloud_to_xyz(msg)
    fields = [_field(n, 4 * i, PointField.FLOAT32) for i, n in enumerate("xyz")]
    msg = PointCloud2(height=1, width=2, fields=fields, point_step=12, row_step=24)
    msg.data = bytes(20)
    with pytest.raises(ValueError, match="too small for point_step 12"):
        cloud_to_xyz(msg)


def test_organised_cloud_round_trips_through_a_pointcloud2() -> None:
    depth_m = np.random.default_rng(1).uniform(0.5, 4.0, size=(3, 4)).astype(np.float32)
    depth_m[1, 2] = np.nan
    rgb = np.random.default_rng(2).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    rays = PinholeRays(CameraIntrinsics(3.0, 3.0, 1.5, 1.0, 4, 3)).rays()
    cloud = CloudPacker().pack(depth_m, rays, rgb=rgb)
    msg = cloud_to_msg(cloud, camera_info_msg(1, 1, [0.0] * 9, "f").header)
    assert isinstance(msg, PointCloud2) and msg.header.frame_id == "f" and not msg.is_dense
    xyz = np.stack([rays.x_over_z * depth_m, rays.y_over_z * depth_m, depth_m], -1)
    np.testing.assert_array_equal(cloud_to_xyz(msg, np.float32), xyz.reshape(-1, 3))
    np.testing.assert_array_equal(cloud_to_rgb(msg), rgb.reshape(-1, 3))


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
    rgb = colorize(depth_m, high_is_warm=False)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert (rgb[0, 2] == 0).all()
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, 1, 2] > rgb[0, 1, 0]  # near red, far blue
