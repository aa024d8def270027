"""The depth node over real Fast DDS: started as a user would (``depth_node --ros-args
--params-file``, own process), fed and read by a test node in this process.

One node for the module: metric tiny model, raw input, depth at the network resolution
(so camera_info scaling is non-trivial), points with stride 2 and max_range 2 m.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from test_ros_support import (
    TINY_INPUT_SIZE,
    TINY_MAX_DEPTH_M,
    NodeProcess,
    RosClient,
    camera_client,
    camera_info_msg,
    diagnostics_publishers,
    exchange,
    image_msg,
    running_node,
    save_tiny_checkpoint,
    scene_rgb,
    set_header,
    stamp_ns,
    wait_until,
)

from dav2_ros.model.transforms import model_input_size

pytestmark = pytest.mark.ros

NS = "/cam_a"
FRAME = "cam_a_optical_frame"
HEIGHT, WIDTH = 120, 160
NET_H, NET_W = model_input_size(HEIGHT, WIDTH, TINY_INPUT_SIZE)  # 126 x 168
K = [150.0, 0.0, 80.0, 0.0, 140.0, 60.0, 0.0, 0.0, 1.0]
STRIDE = 2
MAX_RANGE_M = 2.0
OUTPUTS = {
    "depth": Image,
    "depth/camera_info": CameraInfo,
    "depth/colored": Image,
    "points": PointCloud2,
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("depth_node")
    values = {
        "model.checkpoint": str(save_tiny_checkpoint(work)),
        "engine.backend": "torch",
        "engine.threads": 1,  # 2 shared cores: oversubscribed OpenMP threads stall
        "output.resolution": "model",
        "points.stride": STRIDE,
        "points.max_range": MAX_RANGE_M,
        "temporal.mode": "none",  # each frame as predicted: outputs compared frame by frame
    }
    with running_node(work, values, namespace=NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with camera_client(NS, OUTPUTS) as ros:
        yield ros


_next_stamp = [1_700_000_000_000_000_000]


def new_stamp() -> int:
    _next_stamp[0] += 33_000_000
    return _next_stamp[0]


def send_info(client: RosClient, info: CameraInfo) -> None:
    client.info_pub.publish(info)
    time.sleep(0.1)  # the node keeps the latest; give DDS a moment before the image


def depth_array(msg: Image) -> np.ndarray:
    assert msg.encoding == "32FC1" and msg.step == msg.width * 4 and not msg.is_bigendian
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def good_info() -> CameraInfo:
    return camera_info_msg(WIDTH, HEIGHT, K, FRAME)


def test_depth_is_32fc1_metres_with_image_stamp_and_frame_id(client: RosClient) -> None:
    send_info(client, good_info())
    stamp = new_stamp()
    depth = exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
    assert stamp_ns(depth) == stamp and depth.header.frame_id == FRAME
    assert (depth.height, depth.width) == (NET_H, NET_W)
    values = depth_array(depth)
    assert np.isfinite(values).all()
    assert (values > 0).all() and (values < TINY_MAX_DEPTH_M).all()


def test_every_colour_encoding_and_row_padding_give_the_same_depth(client: RosClient) -> None:
    send_info(client, good_info())
    rgb = scene_rgb(HEIGHT, WIDTH)
    depths = {}
    for encoding, padding in [("rgb8", 0), ("rgb8", 12), ("bgr8", 0), ("rgba8", 0), ("bgra8", 4)]:
        msg = image_msg(rgb, encoding, new_stamp(), FRAME, row_padding=padding)
        depths[(encoding, padding)] = depth_array(exchange(client, msg))
    reference = depths[("rgb8", 0)]
    for key, values in depths.items():
        np.testing.assert_allclose(values, reference, rtol=1e-5, err_msg=str(key))


def test_mono8_is_accepted_as_grey_rgb(client: RosClient) -> None:
    send_info(client, good_info())
    rgb = scene_rgb(HEIGHT, WIDTH)
    grey = image_msg(rgb, "mono8", new_stamp(), FRAME)
    grey_rgb = np.repeat(np.frombuffer(bytes(grey.data), np.uint8).reshape(HEIGHT, WIDTH, 1), 3, 2)
    from_mono = depth_array(exchange(client, grey))
    from_rgb = depth_array(exchange(client, image_msg(grey_rgb, "rgb8", new_stamp(), FRAME)))
    np.testing.assert_allclose(from_mono, from_rgb, rtol=1e-5)


def test_depth_camera_info_has_same_header_and_scaled_intrinsics(client: RosClient) -> None:
    send_info(client, good_info())
    stamp = new_stamp()
    depth = exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "bgr8", stamp, FRAME))
    info = client.wait_for("depth/camera_info", lambda m: stamp_ns(m) == stamp, timeout_s=5)
    assert info is not None, "no depth/camera_info with the depth image's stamp"
    assert info.header.frame_id == depth.header.frame_id == FRAME
    assert (info.width, info.height) == (depth.width, depth.height) == (NET_W, NET_H)
    sx, sy = NET_W / WIDTH, NET_H / HEIGHT
    expected_k = [K[0] * sx, 0, K[2] * sx, 0, K[4] * sy, K[5] * sy, 0, 0, 1]
    np.testing.assert_allclose(info.k, expected_k, rtol=1e-12)
    np.testing.assert_allclose(
        info.p, [K[0] * sx, 0, K[2] * sx, 0, 0, K[4] * sy, K[5] * sy, 0, 0, 0, 1, 0], rtol=1e-12
    )


def points_array(cloud: PointCloud2) -> np.ndarray:
    """x, y, z, rgb-as-uint32 read with a structured dtype built from the message's fields."""
    names = [f.name for f in cloud.fields]
    dtype = np.dtype(
        {
            "names": names,
            "formats": ["<f4" if n != "rgb" else "<u4" for n in names],
            "offsets": [f.offset for f in cloud.fields],
            "itemsize": cloud.point_step,
        }
    )
    return np.frombuffer(bytes(cloud.data), dtype).reshape(cloud.height, cloud.width)


def test_points_equal_independent_backprojection_with_nan_beyond_max_range(
    client: RosClient,
) -> None:
    send_info(client, good_info())
    stamp = new_stamp()
    depth = exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
    cloud = client.wait_for("points", lambda m: stamp_ns(m) == stamp, timeout_s=5)
    info = client.wait_for("depth/camera_info", lambda m: stamp_ns(m) == stamp, timeout_s=5)
    assert cloud is not None and info is not None
    # depth_image_proc layout, organised on the stride grid.
    assert cloud.header.frame_id == FRAME and not cloud.is_dense
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
        ("rgb", 16, 7, 1),
    ]
    assert cloud.point_step == 32 and cloud.row_step == 32 * cloud.width
    assert (cloud.height, cloud.width) == (-(-NET_H // STRIDE), -(-NET_W // STRIDE))
    # The textbook formula on the depth image and its camera_info, full-resolution pixels.
    z = depth_array(depth).astype(np.float64)[::STRIDE, ::STRIDE]
    v, u = np.mgrid[0:NET_H:STRIDE, 0:NET_W:STRIDE].astype(np.float64)
    fx, cx, fy, cy = info.k[0], info.k[2], info.k[4], info.k[5]
    far = z > MAX_RANGE_M
    assert far.any() and (~far).any(), "test model should put pixels on both sides of max_range"
    points = points_array(cloud)
    got = np.stack([points["x"], points["y"], points["z"]], -1)
    assert np.isnan(got[far]).all()
    expected = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], -1)
    np.testing.assert_allclose(got[~far], expected[~far], rtol=1e-5, atol=1e-6)


def test_points_carry_the_image_colour(client: RosClient) -> None:
    send_info(client, good_info())
    stamp = new_stamp()
    solid = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    solid[:] = (200, 120, 30)
    exchange(client, image_msg(solid, "bgra8", stamp, FRAME), topic="points")
    cloud = client.wait_for("points", lambda m: stamp_ns(m) == stamp, timeout_s=1)
    assert (points_array(cloud)["rgb"] == (200 << 16 | 120 << 8 | 30)).all()


def test_colored_view_is_rgb8_with_image_header(client: RosClient) -> None:
    stamp = new_stamp()
    colored = exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME),
                       topic="depth/colored")  # fmt: skip
    assert colored.encoding == "rgb8" and colored.header.frame_id == FRAME
    assert (colored.width, colored.height) == (NET_W, NET_H)


def test_uncalibrated_camera_info_gives_depth_but_no_points(
    client: RosClient, node: NodeProcess
) -> None:
    uncalibrated = camera_info_msg(WIDTH, HEIGHT, [0.0] * 9, FRAME)
    send_info(client, uncalibrated)
    stamp = new_stamp()
    exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
    assert client.wait_for("points", lambda m: stamp_ns(m) == stamp, timeout_s=1.5) is None
    assert node.wait_for_log("uncalibrated", timeout_s=5), node.log()[-2000:]
    send_info(client, good_info())


def bad_images() -> dict[str, tuple[Image, str]]:
    """name → (message, text the node's error must contain)."""
    good = image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", 0, FRAME)
    unknown = image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", 0, FRAME)
    unknown.encoding = "8UC3"
    empty = Image(height=0, width=0, encoding="rgb8", step=0)
    truncated = image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", 0, FRAME)
    truncated.data = bytes(good.data)[: len(good.data) // 2]
    return {
        "unknown encoding": (unknown, "unsupported image encoding '8UC3'"),
        "zero size": (empty, "zero-sized image 0x0"),
        "short data": (truncated, "expected step x height"),
    }


@pytest.mark.parametrize("case", ["unknown encoding", "zero size", "short data"])
def test_bad_image_is_reported_and_next_good_frame_served(
    client: RosClient, node: NodeProcess, case: str
) -> None:
    send_info(client, good_info())
    bad, error_text = bad_images()[case]
    set_header(bad, new_stamp(), FRAME)
    for _ in range(3):  # more than once: the error is throttled, not repeated
        client.image_pub.publish(bad)
        time.sleep(0.2)
    assert node.wait_for_log(error_text, timeout_s=20), node.log()[-3000:]
    assert node.log().count(error_text) == 1, "bad-input errors must be throttled"
    stamp = new_stamp()
    exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
    assert node.process.poll() is None


def test_camera_info_of_another_size_is_reported_and_depth_still_served(
    client: RosClient, node: NodeProcess
) -> None:
    send_info(client, camera_info_msg(2 * WIDTH, 2 * HEIGHT, K, FRAME))
    stamp = new_stamp()
    exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
    assert client.wait_for("points", lambda m: stamp_ns(m) == stamp, timeout_s=1.5) is None
    assert node.wait_for_log("camera_info is for 320x240 but the image is 160x120", 5)
    send_info(client, good_info())
    stamp = new_stamp()
    exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME), topic="points")


def test_diagnostics_report_rates_latency_drops_engine_and_model(client: RosClient) -> None:
    exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", new_stamp(), FRAME))

    def has_output(msg: DiagnosticArray) -> bool:
        values = {kv.key: kv.value for s in msg.status for kv in s.values}
        return "torch" in values.get("engine", "") and float(values.get("output_fps", 0)) > 0

    diag = client.wait_for("/diagnostics", has_output, timeout_s=5)
    assert diag is not None, client.messages("/diagnostics")[-1:]
    values = {kv.key: kv.value for kv in diag.status[0].values}
    for key in ("input_fps", "latency_p50_ms", "latency_p95_ms", "frames_dropped"):
        assert key in values
    assert float(values["latency_p95_ms"]) >= float(values["latency_p50_ms"]) > 0
    assert "vitt metric" in values["model"]
    assert diag.status[0].hardware_id == "dav2_depth"
    # The engine field by field (what the demo rebuilds it from), not only as a string.
    assert (values["engine_backend"], values["engine_device"]) == ("torch", "cpu")
    assert (values["engine_input_height"], values["engine_input_width"]) == (str(NET_H), str(NET_W))
    assert values["engine_precision"] == "fp32" and '"threads": 1' in values["engine_options"]
    # One /diagnostics stream per node; without a metric scale it holds the node's status only.
    assert wait_until(lambda: len(diagnostics_publishers(client, NS)) > 0, 10)
    assert len(diagnostics_publishers(client, NS)) == 1
    assert {len(m.status) for m in client.messages("/diagnostics")} == {1}


def test_only_outputs_with_subscribers_are_built_and_every_stage_is_timed(
    client: RosClient,
) -> None:
    send_info(client, good_info())
    for topic in ("points", "depth/colored"):
        client.unsubscribe(topic)
    try:
        assert wait_until(lambda: client.node.count_subscribers(f"{NS}/points") == 0, 10)
        time.sleep(0.5)  # the node's publishers hear of it through discovery
        exchange(client, image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", new_stamp(), FRAME))

        def latest_frame_has_depth(msg: DiagnosticArray) -> bool:
            values = {kv.key: kv.value for kv in msg.status[0].values}
            return "depth publish" in json.loads(values.get("stages_ms_last", "{}"))

        client.clear()
        diag = client.wait_for("/diagnostics", latest_frame_has_depth, timeout_s=5)
        assert diag is not None
    finally:
        for topic in ("points", "depth/colored"):
            client.subscribe(topic, OUTPUTS[topic])
    values = {kv.key: kv.value for kv in diag.status[0].values}
    last = json.loads(values["stages_ms_last"])
    built = {stage.rsplit(" ", 1)[0] for stage in last if stage.endswith(" build")}
    assert built == {"depth", "depth/camera_info"}, last  # nothing for points and colored
    timed = {"decode", "preprocess", "infer", "postprocess", "metric"}
    assert timed <= set(last) and all(ms >= 0 for ms in last.values())
    # The node's own work: every stage but the network's preprocess and inference.
    own_ms = sum(ms for stage, ms in last.items() if stage not in ("preprocess", "infer"))
    assert float(values["work_ms_p50"]) > 0 and own_ms > 0
    # A frame's whole time (engine + own work) bounds the rate the node can serve.
    assert float(values["frame_ms_p50"]) > float(values["work_ms_p50"])
    assert "points publish" in json.loads(values["stages_ms_p50"])  # earlier frames had points


def test_node_declares_exactly_the_parameter_table(client: RosClient) -> None:
    from rcl_interfaces.srv import ListParameters

    from dav2_ros.ros.parameters import parameter_names

    service = client.node.create_client(ListParameters, f"{NS}/dav2_depth/list_parameters")
    assert service.wait_for_service(timeout_sec=20)
    future = service.call_async(ListParameters.Request())
    deadline = time.monotonic() + 20
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    declared = set(future.result().result.names)
    built_in = {"use_sim_time", "start_type_description_service"}
    assert declared - built_in == set(parameter_names())
