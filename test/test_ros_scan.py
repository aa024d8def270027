"""``scan`` and distortion-aware ``points`` of the real node, read over real Fast DDS.

The node runs in its own process with an engine plugin of known geometry
(``test/plugins/known_depth_engine.py``: a wall at 2 m, a box at 1.25 m, columns of NaN,
+Inf, too far and too near). The scan is checked against an independent, literal port
of depthimage_to_laserscan's ``convert`` (ROS 2 branch, float32 where it uses float) run
on the ``depth`` and ``depth/camera_info`` the node published for the same frame, and
against the known geometry. Points of plumb_bob and equidistant camera_infos must
project back onto their own pixels through OpenCV within 0.05 px. An unknown distortion
model is said once (log) and shown on /diagnostics, and the points fall back to a pinhole.
A ``scan.height`` that does not fit the camera is said once and shown as an error, while
depth and points keep coming; a camera it fits brings the scan back.
The temporal stabiliser (on by default) halves a jump of the depth's scale and restarts
after a gap in the stamps.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from test_ros_robustness import PLUGINS_DIR, plugin_env, running_node
from test_ros_support import (
    NodeProcess,
    RosClient,
    camera_client,
    camera_info_msg,
    image_msg,
    save_tiny_checkpoint,
    scene_rgb,
    stamp_ns,
    wait_until,
)

sys.path.insert(0, str(PLUGINS_DIR))
from known_depth_engine import BANDS, WALL_M, known_depth_m  # noqa: E402

pytestmark = pytest.mark.ros

NS = "/cam_scan"
FRAME = "cam_scan_optical_frame"
HEIGHT, WIDTH = 120, 160  # network 126 x 168 at the tiny model's input size
K = [150.0, 0.0, 80.0, 0.0, 140.0, 60.0, 0.0, 0.0, 1.0]
SCAN_HEIGHT = 3
RANGE_MIN_M, RANGE_MAX_M = 0.45, 10.0
PLUMB_BOB_D = [-0.29, 0.085, 0.0012, -0.0007, -0.011]
EQUIDISTANT_D = [0.021, -0.007, 0.0012, -0.0003]
TOPICS = {"depth": Image, "depth/camera_info": CameraInfo, "points": PointCloud2, "scan": LaserScan}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("scan_node")
    values = {
        "model.checkpoint": str(save_tiny_checkpoint(work)),
        "engine.backend": "known_depth_engine:factory",
        "engine.self_check": False,  # wrong depth on purpose: known geometry instead
        "engine.threads": 1,
        "output.resolution": "model",
        "points.color": False,
        "scan.height": SCAN_HEIGHT,
        "scan.range_min": RANGE_MIN_M,
        "scan.range_max": RANGE_MAX_M,
        # temporal.mode align (the default): the known depth never changes, so it passes
        # exactly; test_temporal_* makes its scale jump.
    }
    with running_node(work, values, plugin_env(work), NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with camera_client(NS, TOPICS) as ros:
        yield ros


_stamp = [1_710_000_000_000_000_000]


def frame_with(client: RosClient, info: CameraInfo, topics: tuple[str, ...]) -> dict:
    """Publish ``info`` then images until every topic of ``topics`` has that stamp."""
    for _ in range(40):
        _stamp[0] += 50_000_000
        stamp = _stamp[0]
        info.header.stamp.sec, info.header.stamp.nanosec = divmod(stamp, 10**9)
        client.info_pub.publish(info)
        wait_until(lambda: False, 0.05)  # camera_info first (separate topics, no ordering)
        client.image_pub.publish(image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
        found = {t: client.wait_for(t, lambda m, s=stamp: stamp_ns(m) == s, 3.0) for t in topics}
        if all(found.values()):
            return found
    raise AssertionError(f"no {topics} for one frame")


def depth_array(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def reference_scan(depth: Image, info: CameraInfo) -> tuple[dict, np.ndarray]:
    """depthimage_to_laserscan's ``convert_msg`` + ``convert<float>``, literally, for a
    camera without distortion (rectifyPoint is the identity): the fields and the bin of
    each column. image_geometry reads fx, cx, cy from P."""
    f32 = np.float32
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    width = depth.width

    def ray(u: float, v: float) -> np.ndarray:
        return np.array([(u - cx) / fx, (v - cy) / fy, 1.0])

    def angle_between(a: np.ndarray, b: np.ndarray) -> float:
        return math.acos(float(a @ b) / (math.sqrt(a @ a) * math.sqrt(b @ b)))

    left, centre, right = ray(0, cy), ray(cx, cy), ray(width - 1, cy)
    angle_max = f32(angle_between(left, centre))
    angle_min = f32(-angle_between(centre, right))
    increment = f32((angle_max - angle_min) / f32(width - 1))
    ranges = [f32("nan")] * width
    center_x, constant_x = f32(cx), f32(1.0 / f32(fx))  # unit_scaling 1 for float depth
    offset = int(cy - SCAN_HEIGHT / 2.0)
    image = depth_array(depth)
    bins = np.empty(width, dtype=np.int64)
    for v in range(offset, offset + SCAN_HEIGHT):
        for u in range(width):
            z = image[v, u]
            r = float(z)
            du = f32(f32(u) - center_x)
            th = -math.atan2(float(du) * float(constant_x), 1.0)
            index = int((th - float(angle_min)) / float(increment))
            bins[u] = index
            if math.isfinite(z):
                x = float(du * z * constant_x)
                r = math.sqrt(x**2 + float(z) ** 2)
            if 0 <= index < width and _use_point(f32(r), ranges[index]):
                ranges[index] = f32(r)
    fields = {"angle_min": angle_min, "angle_max": angle_max, "angle_increment": increment}
    return {**fields, "ranges": np.array(ranges, dtype=np.float32)}, bins


def _use_point(new: np.float32, old: np.float32) -> bool:
    new_finite, old_finite = math.isfinite(new), math.isfinite(old)
    if not new_finite and not old_finite:
        return not math.isnan(new)  # +-Inf is more than NaN
    if not np.float32(RANGE_MIN_M) <= new <= np.float32(RANGE_MAX_M):
        return False
    return not old_finite or new < old


def test_scan_equals_depthimage_to_laserscan_on_known_geometry(client: RosClient) -> None:
    info = camera_info_msg(WIDTH, HEIGHT, K, FRAME)
    got = frame_with(client, info, ("scan", "depth", "depth/camera_info"))
    scan, depth, depth_info = got["scan"], got["depth"], got["depth/camera_info"]
    # Header: the depth's stamp, the body frame of the optical frame (REP 103, x forward).
    assert stamp_ns(scan) == stamp_ns(depth)
    assert scan.header.frame_id == "cam_scan_frame"
    assert (scan.range_min, scan.range_max) == pytest.approx((RANGE_MIN_M, RANGE_MAX_M))
    assert scan.scan_time == pytest.approx(0.033) and scan.time_increment == 0.0
    # The depth is the plugin's known depth, invalid (NaN, +Inf) as NaN.
    known = known_depth_m(depth.height, depth.width)
    expected_depth = np.where(np.isfinite(known), known, np.nan)
    np.testing.assert_array_equal(depth_array(depth), expected_depth)
    # Angles and ranges: the independent implementation on the same depth + camera_info.
    reference, bins = reference_scan(depth, depth_info)
    for name in ("angle_min", "angle_max", "angle_increment"):
        assert np.float32(getattr(scan, name)) == reference[name], name
    assert reference["angle_min"] < 0 < reference["angle_max"]
    ranges = np.array(scan.ranges, dtype=np.float32)
    assert ranges.shape == (depth.width,)
    np.testing.assert_array_equal(np.isnan(ranges), np.isnan(reference["ranges"]))
    np.testing.assert_allclose(ranges, reference["ranges"], rtol=1e-6, equal_nan=True)
    # Known geometry: a column's range is Z * hypot((u - cx) / fx, 1) (Z / cos of its
    # angle), and each bin holds the shortest usable range of the columns that land in it.
    fx, cx = depth_info.p[0], depth_info.p[2]
    column_m = known[0] * np.hypot((np.arange(depth.width) - cx) / fx, 1.0)
    usable = np.isfinite(column_m) & (column_m >= RANGE_MIN_M) & (column_m <= RANGE_MAX_M)
    for index in range(depth.width):
        in_bin = (bins == index) & usable
        if in_bin.any():
            assert ranges[index] == pytest.approx(column_m[in_bin].min(), rel=1e-5), index
        else:
            assert np.isnan(ranges[index]), (index, ranges[index])  # NaN, +Inf, far, near
    # Wall and box are seen; every band of NaN, +Inf, far and near depth reads NaN.
    finite = ranges[np.isfinite(ranges)]
    for (start, stop), _ in BANDS[:4]:
        columns = range(round(start * depth.width) + 1, round(stop * depth.width) - 1)
        assert np.isnan(ranges[bins[list(columns)]]).all()
    assert np.isclose(finite, WALL_M, rtol=0.15).any() and np.isclose(finite, 1.25, rtol=0.1).any()
    assert not np.isinf(ranges).any()  # the node's depth has no Inf: out of range is NaN


def project(points_xyz: np.ndarray, info: CameraInfo) -> np.ndarray:
    k = np.array(info.k, dtype=np.float64).reshape(3, 3)
    d = np.array(info.d, dtype=np.float64)
    zero = np.zeros(3)
    if info.distortion_model == "equidistant":
        pixels, _ = cv2.fisheye.projectPoints(points_xyz.reshape(-1, 1, 3), zero, zero, k, d)
    else:
        pixels, _ = cv2.projectPoints(points_xyz, zero, zero, k, d)
    return pixels.reshape(-1, 2)


@pytest.mark.parametrize(
    ("model", "d"), [("plumb_bob", PLUMB_BOB_D), ("equidistant", EQUIDISTANT_D)]
)
def test_points_of_a_distorted_camera_reproject_onto_their_pixels(
    client: RosClient, model: str, d: list[float]
) -> None:
    info = camera_info_msg(WIDTH, HEIGHT, K, FRAME)
    info.distortion_model, info.d = model, d
    got = frame_with(client, info, ("points", "depth/camera_info"))
    cloud, depth_info = got["points"], got["depth/camera_info"]
    assert depth_info.distortion_model == model and list(depth_info.d) == pytest.approx(d)
    records = np.frombuffer(bytes(cloud.data), np.float32).reshape(
        cloud.height, cloud.width, cloud.point_step // 4
    )
    xyz = records[:, :, :3].reshape(-1, 3).astype(np.float64)
    v, u = np.mgrid[0 : cloud.height, 0 : cloud.width]
    pixels = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64)
    valid = np.isfinite(xyz).all(axis=1)
    assert valid.mean() > 0.7  # the known depth's NaN and Inf bands only
    error_px = np.linalg.norm(project(xyz[valid], depth_info) - pixels[valid], axis=1)
    assert error_px.max() < 0.05, error_px.max()
    # The pinhole formula would be wrong by pixels near the border: distortion mattered.
    k = np.array(depth_info.k).reshape(3, 3)
    pinhole = xyz[valid, :2] / xyz[valid, 2:] * (k[0, 0], k[1, 1]) + (k[0, 2], k[1, 2])
    assert np.linalg.norm(pinhole - pixels[valid], axis=1).max() > 1.0


def test_an_unknown_distortion_model_is_said_once_and_points_use_a_pinhole(
    client: RosClient, node: NodeProcess
) -> None:
    info = camera_info_msg(WIDTH, HEIGHT, K, FRAME)
    info.distortion_model, info.d = "kannala_brandt_wide", [0.1, 0.01, 0.0, 0.0]
    for _ in range(3):
        got = frame_with(client, info, ("points", "depth"))
    cloud, depth = got["points"], got["depth"]
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(cloud.height, cloud.width, -1)
    z = depth_array(depth)
    sx = depth.width / WIDTH
    u = np.arange(depth.width)
    expected_x = (u - K[2] * sx) / (K[0] * sx) * z
    np.testing.assert_allclose(xyz[:, :, 0], expected_x, rtol=1e-5, atol=1e-6)
    text = "camera_info distortion ignored, using a pinhole"
    assert node.log().count(text) == 1, node.log()
    assert "kannala_brandt_wide" in node.log()

    def warned() -> bool:
        for msg in client.messages("/diagnostics"):
            status = msg.status[0]
            if status.level == DiagnosticStatus.WARN and text in status.message:
                return True
        return False

    assert wait_until(warned, 5.0)


def test_a_scan_height_that_does_not_fit_the_camera_is_reported_and_depth_keeps_coming(
    client: RosClient, node: NodeProcess
) -> None:
    text = f"scan not published: scan height {SCAN_HEIGHT} rows does not fit"
    edge = camera_info_msg(WIDTH, HEIGHT, [*K[:5], 0.5, *K[6:]], FRAME)  # centre row on the edge
    for _ in range(3):
        stamp = stamp_ns(frame_with(client, edge, ("points", "depth"))["depth"])
        assert client.wait_for("scan", lambda m, s=stamp: stamp_ns(m) == s, 0.5) is None
    assert node.wait_for_log(text, 5.0), node.log()
    assert node.log().count(text) == 1, node.log()

    def status_says(level: bytes) -> Callable[[], bool]:
        def check() -> bool:
            statuses = [m.status[0] for m in client.messages("/diagnostics")[-2:]]
            return any(s.level == level and text in s.message for s in statuses)

        return check

    assert wait_until(status_says(DiagnosticStatus.ERROR), 5.0)
    frame_with(client, camera_info_msg(WIDTH, HEIGHT, K, FRAME), ("scan", "depth"))
    client.clear()
    assert wait_until(lambda: len(client.messages("/diagnostics")) >= 2, 5.0)
    assert not status_says(DiagnosticStatus.ERROR)()


def test_temporal_stabiliser_damps_a_scale_jump_and_restarts_after_a_gap(
    client: RosClient, node: NodeProcess
) -> None:
    info = camera_info_msg(WIDTH, HEIGHT, K, FRAME)
    before = depth_array(frame_with(client, info, ("depth",))["depth"])
    finite = np.isfinite(before)
    scale_file = node_fault_dir(node) / "scale"
    scale_file.write_text("1.44")
    try:
        # The next frame (same image, 50 ms later): strength 0.5 applies half of the
        # alignment in log scale, sqrt(1.44) = 1.2 instead of 1.44.
        jumped = depth_array(one_frame(client, info, 50_000_000))
        np.testing.assert_allclose(jumped[finite], 1.2 * before[finite], rtol=1e-4)
        # A gap longer than temporal.max_gap_s (0.5 s): the filter restarts, no damping.
        restarted = depth_array(one_frame(client, info, 1_000_000_000))
        np.testing.assert_allclose(restarted[finite], 1.44 * before[finite], rtol=1e-5)
    finally:
        scale_file.unlink()


def node_fault_dir(node: NodeProcess) -> Path:
    return node.log_path.parent  # plugin_env(work): the node's work directory


def one_frame(client: RosClient, info: CameraInfo, after_ns: int) -> Image:
    """Exactly one image, ``after_ns`` after the previous stamp, and its depth."""
    _stamp[0] += after_ns
    stamp = _stamp[0]
    info.header.stamp.sec, info.header.stamp.nanosec = divmod(stamp, 10**9)
    client.info_pub.publish(info)
    client.image_pub.publish(image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
    depth = client.wait_for("depth", lambda m: stamp_ns(m) == stamp, 10.0)
    assert depth is not None, "the node lost a single frame"
    return depth
