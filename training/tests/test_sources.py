"""Image sources: folders and rosbag2 recordings written with rosbags, read without ROS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_tools import (
    compressed_msg,
    depth_msg,
    frames,
    image_msg,
    info_msg,
    raw_msg,
    write_bag,
)
from dav2_train.sources import (
    SourceError,
    iter_rgbd_records,
    open_image_source,
    pair_by_stamp,
)

S = 1_000_000_000
FRAMES = frames(4, 42, 56, seed=1)


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bags")
    encodings = ["rgb8", "bgr8", "rgba8", "mono8"]
    write_bag(root / "raw.db3", {
        "/cam/image_raw": [image_msg(f, e, S + i * S // 10, row_padding=4 * (i % 2))
                           for i, (f, e) in enumerate(zip(FRAMES, encodings, strict=True))],
        "/cam/camera_info": [info_msg(S)],
    })  # fmt: skip
    write_bag(root / "compressed.mcap", {
        "/cam/image/compressed": [compressed_msg(f, S + i * S // 10, "png" if i % 2 else "jpeg")
                                  for i, f in enumerate(FRAMES)],
    })  # fmt: skip
    write_bag(root / "bag_dir", {"/front/image": [image_msg(FRAMES[0], "bgra8", 5 * S)]})
    write_bag(root / "two_cameras.db3", {
        "/left/image": [image_msg(FRAMES[0], "rgb8", S)],
        "/right/image": [image_msg(FRAMES[1], "rgb8", S)],
    })  # fmt: skip
    depth16 = np.full((42, 56, 1), 0, np.uint8)
    write_bag(root / "depth_on_image_topic.db3", {"/cam/image_raw": [
        image_msg(np.repeat(depth16, 2, axis=2), "16UC1", S)]})  # fmt: skip
    (root / "broken.db3").write_bytes(b"this is not an sqlite database" * 10)
    return root


def test_raw_images_of_every_encoding_the_node_accepts(bags: Path) -> None:
    images = list(open_image_source(bags / "raw.db3", "/cam/image_raw"))
    assert [i.stamp_ns for i in images] == [S, S + S // 10, S + 2 * S // 10, S + 3 * S // 10]
    for image, frame in zip(images[:3], FRAMES[:3], strict=True):  # rgb8, bgr8 (padded), rgba8
        np.testing.assert_array_equal(image.rgb, frame)
    grey = cv2.cvtColor(FRAMES[3], cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(images[3].rgb, np.repeat(grey[..., None], 3, axis=2))
    assert images[0].key == "raw.db3/cam/image_raw@1000000000"


def test_camera_driver_encodings_in_a_bag_decode_to_the_frames(tmp_path: Path) -> None:
    # What usb_cam (YUYV), Orbbec / RealSense infrared (big-endian mono16 here) and a
    # raw camera_ros stream (Bayer) record; decoded by the node's own conversions.
    frame = np.repeat(np.repeat(FRAMES[0][::2, ::2], 2, 0), 2, 1)  # 2x2 blocks: shared chroma
    height, width = frame.shape[:2]
    yuyv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_YUY2).reshape(height, -1)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    mono16 = (grey.astype(">u2") * 257).view(np.uint8).reshape(height, -1)
    v, u = np.mgrid[0:height, 0:width]
    smooth = np.stack([40 + 3 * u, 60 + 2 * v, 220 - 3 * u], -1).astype(np.uint8)
    mosaic = smooth[:, :, 1].copy()  # rggb: R at even row and column, B at odd ones
    mosaic[0::2, 0::2], mosaic[1::2, 1::2] = smooth[0::2, 0::2, 0], smooth[1::2, 1::2, 2]
    write_bag(tmp_path / "drivers.mcap", {"/cam/image_raw": [
        raw_msg(yuyv, width, "yuv422_yuy2", S),
        raw_msg(mono16, width, "mono16", 2 * S, big_endian=True),
        raw_msg(mosaic, width, "bayer_rggb8", 3 * S),
    ]})  # fmt: skip
    yuv, mono, bayer = (i.rgb for i in open_image_source(tmp_path / "drivers.mcap"))
    assert np.abs(yuv.astype(int) - frame).max() <= 2  # BT.601 limited range rounding
    np.testing.assert_array_equal(mono, np.repeat(grey[..., None], 3, axis=2))
    assert np.abs(bayer[2:-2, 2:-2].astype(int) - smooth[2:-2, 2:-2]).max() <= 1


def test_compressed_jpeg_and_png_from_an_mcap_file(bags: Path) -> None:
    images = list(open_image_source(bags / "compressed.mcap"))  # the only image topic
    assert len(images) == 4 and all(i.rgb.shape == (42, 56, 3) for i in images)
    np.testing.assert_array_equal(images[1].rgb, FRAMES[1])  # PNG: lossless
    assert np.abs(images[0].rgb.astype(int) - FRAMES[0]).mean() < 4  # JPEG


def test_bag_directory_and_every_nth_frame(bags: Path) -> None:
    (image,) = open_image_source(bags / "bag_dir")
    np.testing.assert_array_equal(image.rgb, FRAMES[0])
    kept = [i.stamp_ns for i in open_image_source(bags / "raw.db3", "/cam/image_raw", every=2)]
    assert kept == [S, S + 2 * S // 10]


def test_image_folder_in_sorted_order(tmp_path: Path) -> None:
    for name, frame in zip(("b.png", "a/c.jpg", "a/b.png"), FRAMES, strict=False):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    images = list(open_image_source(tmp_path))
    assert [i.key for i in images] == ["a/b.png", "a/c.jpg", "b.png"]
    assert images[0].stamp_ns is None
    np.testing.assert_array_equal(images[2].rgb, FRAMES[0])


@pytest.mark.parametrize(
    ("bag", "topic", "message"),
    [
        ("raw.db3", "/cam/missing", r"raw.db3: topic '/cam/missing' is not in the bag\. Found: "
         r"/cam/camera_info \(sensor_msgs/msg/CameraInfo\), /cam/image_raw"),
        ("raw.db3", "/cam/camera_info", r"raw.db3: topic '/cam/camera_info' carries "
         r"sensor_msgs/msg/CameraInfo, not a camera image"),
        ("two_cameras.db3", None, r"two_cameras.db3: 2 camera image topics .* name one with "
         r"`topic:`\. Found: /left/image"),
        ("depth_on_image_topic.db3", None, r"depth_on_image_topic.db3: topic '/cam/image_raw' "
         r"message 0 \(sensor_msgs/msg/Image\): unsupported image encoding '16UC1'"),
        ("broken.db3", None, r"broken.db3: cannot be read as a rosbag2"),
        ("nowhere.mcap", None, r"nowhere.mcap: no such image folder or rosbag2"),
    ],
)  # fmt: skip
def test_errors_name_the_file_the_topic_and_what_was_found(
    bags: Path, bag: str, topic: str | None, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        list(open_image_source(bags / bag, topic))


def test_rgbd_pairs_by_stamp_and_converts_depth_to_metres(tmp_path: Path) -> None:
    depth_m = np.linspace(0.5, 4.0, 21 * 28, dtype=np.float32).reshape(21, 28)
    depth_m[0, :5] = np.nan  # no return: 0 in 16UC1
    offsets_ms = [3, -5, 40, 1]  # the third depth frame is too far from its image
    write_bag(tmp_path / "rgbd.mcap", {
        "/cam/image/compressed": [compressed_msg(f, S + i * S // 10, "png")
                                  for i, f in enumerate(FRAMES)],
        "/cam/depth": [depth_msg(depth_m * (i + 1), S + i * S // 10 + o * 1_000_000,
                                 "16UC1" if i % 2 else "32FC1")
                       for i, o in enumerate(offsets_ms)],
    })  # fmt: skip
    records = iter_rgbd_records(tmp_path / "rgbd.mcap", None, "/cam/depth", 20_000_000)
    indices, pairs = zip(*((r.index, r.decode()) for r in records), strict=True)
    assert indices == (0, 1, 2)
    assert [p.stamp_ns for p in pairs] == [S, S + S // 10, S + 3 * S // 10]
    np.testing.assert_array_equal(pairs[2].rgb, FRAMES[3])
    # depth registered to the 42x56 image (nearest neighbour from 21x28), in metres, NaN kept
    assert pairs[0].depth_m.shape == (42, 56) and np.isnan(pairs[0].depth_m[0, 0])
    np.testing.assert_allclose(pairs[0].depth_m[41, 55], depth_m[20, 27], rtol=1e-6)
    np.testing.assert_allclose(pairs[1].depth_m[41, 55], 2 * depth_m[20, 27], atol=1e-3)  # mm
    every = iter_rgbd_records(tmp_path / "rgbd.mcap", None, "/cam/depth", 20_000_000, 2)
    assert [r.decode().stamp_ns for r in every] == [S, S + 3 * S // 10]


def test_pair_by_stamp_takes_the_nearest_within_the_offset() -> None:
    assert pair_by_stamp([100, 200, 300], [195, 104, 290, 500], 10) == [(0, 1), (1, 0), (2, 2)]
    assert pair_by_stamp([100], [150], 10) == []


def test_training_sources_and_cli_import_no_rclpy(bags: Path) -> None:
    code = (
        "import sys; import dav2_train.sources as s, dav2_train.cli; "
        f"list(s.open_image_source({str(bags / 'raw.db3')!r}, '/cam/image_raw')); "
        "print('rclpy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
