"""Camera-driver encodings through the depth node over real Fast DDS: the colours of the
``points`` cloud (depth at the input resolution, every pixel) are the source image's within
each codec's own rounding, and malformed frames of the new layouts are reported while the
node keeps serving. One node process for the module."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from camera_encoders import YUV, YUV_ROUNDING, blocky, shown_rgb, smooth_rgb
from sensor_msgs.msg import PointCloud2
from test_ros_support import (
    NodeProcess,
    RosClient,
    camera_client,
    camera_info_msg,
    exchange,
    image_msg,
    running_node,
    save_tiny_checkpoint,
    set_header,
    wait_until,
)

from dav2_ros.ros.conversions import cloud_to_rgb

pytestmark = pytest.mark.ros

NS = "/enc_cam"
FRAME = "enc_cam_optical_frame"
HEIGHT, WIDTH = 48, 64
K = [60.0, 0.0, 32.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0]
# (encoding, row padding in bytes, big-endian 16-bit): the drivers' defaults and modes.
CASES = [
    ("yuv422_yuy2", 0, False),  # usb_cam's default
    ("yuv422", 6, False),  # UYVY: RealSense, v4l2_camera, camera_ros
    ("nv21", 4, False),  # camera_ros
    ("nv24", 2, False),
    ("bayer_rggb8", 0, False),  # camera_ros raw, gscam2
    ("bayer_gbrg16", 8, True),
    ("mono16", 0, True),  # Orbbec, RealSense infrared
    ("rgb16", 10, False),
    ("bgra16", 0, True),
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("encodings_node")
    values = {
        "model.checkpoint": str(save_tiny_checkpoint(work)),
        "engine.backend": "torch",
        "engine.threads": 1,
        "output.resolution": "input",  # the cloud has a point (and the colour) of every pixel
        "points.stride": 1,
        "temporal.mode": "none",
        "scan.enabled": False,
    }
    with running_node(work, values, namespace=NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with camera_client(NS, {"points": PointCloud2}) as ros:
        # Without camera_info there are no points: send it once the node listens.
        assert wait_until(lambda: ros.info_pub.get_subscription_count() > 0, timeout_s=20)
        ros.info_pub.publish(camera_info_msg(WIDTH, HEIGHT, K, FRAME))
        yield ros


_next_stamp = [1_800_000_000_000_000_000]


def new_stamp() -> int:
    _next_stamp[0] += 33_000_000
    return _next_stamp[0]


def source_image(encoding: str) -> np.ndarray:
    """Smooth for Bayer (demosaicing interpolates it), in 2x2 blocks for YUV (nothing lost
    to chroma sharing): what remains is the codec's rounding."""
    smooth = smooth_rgb(HEIGHT, WIDTH)
    return blocky(smooth[::2, ::2]) if encoding in YUV else smooth


def cloud_colours(client: RosClient, msg: object) -> np.ndarray:
    client.info_pub.publish(camera_info_msg(WIDTH, HEIGHT, K, FRAME))  # the latest is used
    cloud = exchange(client, msg, topic="points")
    assert (cloud.height, cloud.width) == (HEIGHT, WIDTH)
    return cloud_to_rgb(cloud).reshape(HEIGHT, WIDTH, 3)


def test_cloud_colours_are_the_source_image_for_every_driver_encoding(client: RosClient) -> None:
    errors = {}
    for encoding, padding, big_endian in CASES:
        rgb = source_image(encoding)
        msg = image_msg(rgb, encoding, new_stamp(), FRAME, padding, big_endian)
        error = np.abs(cloud_colours(client, msg).astype(int) - shown_rgb(rgb, encoding))
        if encoding.startswith("bayer_"):
            error = error[2:-2, 2:-2]  # demosaicing extrapolates at the borders
        errors[encoding] = int(error.max())
    allowed = {e: YUV_ROUNDING if e in YUV else 1 if e.startswith("bayer_") else 0
               for e, _, _ in CASES}  # fmt: skip
    assert errors == {e: min(errors[e], allowed[e]) for e in errors}, (errors, allowed)


@pytest.mark.parametrize(
    ("encoding", "width", "text"),
    [
        ("yuv422_yuy2", WIDTH - 1, f"yuv422_yuy2 image {WIDTH - 1}x{HEIGHT}: yuv422_yuy2 needs "
         "an even width"),
        ("nv21", WIDTH, f"image data has {WIDTH * HEIGHT} bytes, expected step x height = "
         f"{WIDTH} x {HEIGHT * 3 // 2}"),
    ],
)  # fmt: skip
def test_malformed_frames_are_reported_and_the_next_frame_is_served(
    client: RosClient, node: NodeProcess, encoding: str, width: int, text: str
) -> None:
    bad = image_msg(source_image(encoding), encoding, 0, FRAME)
    bad.width = width
    if encoding == "nv21":
        bad.data = bytes(bad.data)[: WIDTH * HEIGHT]  # the luma plane only
    set_header(bad, new_stamp(), FRAME)
    client.image_pub.publish(bad)
    assert node.wait_for_log(text, timeout_s=20), node.log()[-3000:]
    good = image_msg(source_image("yuv422_yuy2"), "yuv422_yuy2", new_stamp(), FRAME)
    cloud_colours(client, good)
    assert node.process.poll() is None
