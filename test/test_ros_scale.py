"""Metric scale in the running node over real Fast DDS: relative model + sparse depth → metres.

The node runs as a user starts it (``depth_node --ros-args --params-file``) with a tiny
random *relative* checkpoint. The test reads the node's own ``depth/relative`` output D,
builds sparse metric depth consistent with 1/depth = A·D + B (plus outliers), feeds it on
``sparse_depth`` and checks ``depth``, ``points``, ``depth/scale`` and ``/diagnostics``;
then stops the sparse stream and checks the documented fallback (depth stops, stale).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_ros_support import (
    NodeProcess,
    RosClient,
    camera_info_msg,
    diagnostics_publishers,
    image_msg,
    set_header,
    stamp_ns,
    wait_until,
    write_params,
)

pytestmark = pytest.mark.ros

A_TRUE, B_TRUE = 0.2, 0.05  # the metric inverse depth the sparse source implies
WIDTH, HEIGHT = 80, 60
K = [60.0, 0.0, 40.0, 0.0, 60.0, 30.0, 0.0, 0.0, 1.0]
FRAME = "camera_optical"
STATUS_NAME = "dav2_depth: metric scale"  # as documented in dav2_ros/ros/diagnostics.py
NODE_STATUS_NAME = "dav2_depth: depth estimation"
PERIOD_S = 0.25  # 4 Hz: the node keeps up even on a loaded 2-core machine


@pytest.fixture(scope="module")
def ros():
    import rclpy

    owned = not rclpy.ok()
    if owned:
        rclpy.init()
    yield
    if owned:
        rclpy.shutdown()


@pytest.fixture(scope="module")
def relative_checkpoint(tmp_path_factory) -> Path:
    """A random vitt relative model whose disparity varies (~0.9-2.5) across the test image."""
    import torch

    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.checkpoints import ModelMeta, save_model

    torch.manual_seed(0)
    model = DepthAnythingV2("vitt", "relative", 10.0)
    with torch.no_grad():  # default init leaves the final ReLU dead: lift it into range
        model.depth_head.scratch.output_conv2[2].weight *= 40.0
        model.depth_head.scratch.output_conv2[2].bias.fill_(3.0)
    meta = ModelMeta(encoder="vitt", depth_type="relative", max_depth=10.0, input_size=126)
    return save_model(model, meta, tmp_path_factory.mktemp("ckpt") / "tiny_relative")


def _rgb() -> np.ndarray:
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([u * 3, v * 4, (u * v) % 256], -1).astype(np.uint8)


def _params(tmp_path: Path, checkpoint: Path, **scale) -> Path:
    values = {
        "model.checkpoint": str(checkpoint),
        "engine.backend": "torch",
        "engine.input_size": 126,
        "points.color": False,
        **{f"scale.{k}": v for k, v in scale.items()},
    }
    return write_params(tmp_path / "params.yaml", values)


class Camera:
    """Publishes image + camera_info (and, when given, a sparse message per frame) at 4 Hz."""

    def __init__(self, client: RosClient, sparse_type: type | None) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        node = client.node
        self.pub_image = node.create_publisher(Image, "image", 10)
        self.pub_info = node.create_publisher(CameraInfo, "camera_info", 10)
        self.pub_sparse = (
            node.create_publisher(sparse_type, "sparse_depth", 10) if sparse_type else None
        )
        self.make_sparse = None  # callable(stamp_ns) -> message, or None: no sparse data
        self.stamps: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rgb = _rgb()
        while not self._stop.is_set():
            now_ns = time.time_ns()
            make_sparse = self.make_sparse
            if make_sparse is not None:
                self.pub_sparse.publish(make_sparse(now_ns))
            info = camera_info_msg(WIDTH, HEIGHT, K, FRAME)
            set_header(info, now_ns, FRAME)
            self.pub_info.publish(info)
            self.pub_image.publish(image_msg(rgb, "rgb8", now_ns, FRAME))
            self.stamps.append(now_ns)
            self._stop.wait(PERIOD_S)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def harness(ros, tmp_path, request):
    """Yields a factory: (params_file, sparse msg type) → (node process, client, camera)."""
    started: list = []

    def start(params_file: Path, sparse_type: type | None):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import Float64MultiArray

        node = NodeProcess(params_file, tmp_path / "node.log")
        started.append(node.stop)
        client = RosClient(f"scale_test_{request.node.name[:20]}")
        started.append(client.close)
        for topic, msg_type in (
            ("depth", Image),
            ("depth/relative", Image),
            ("points", PointCloud2),
            ("depth/scale", Float64MultiArray),
            ("/diagnostics", DiagnosticArray),
        ):
            client.subscribe(topic, msg_type)
        camera = Camera(client, sparse_type)
        started.append(camera.close)
        assert node.wait_for_log("ready", 60), node.log()
        return node, client, camera

    yield start
    for stop in reversed(started):
        stop()


def _image_array(msg) -> np.ndarray:
    dtype = {"32FC1": np.float32}[msg.encoding]
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def _disparity(client: RosClient) -> np.ndarray:
    msg = client.wait_for("depth/relative", timeout_s=60)
    assert msg is not None, "the node never published depth/relative"
    return _image_array(msg).astype(np.float64)


def _expected_depth_m(disparity: np.ndarray) -> np.ndarray:
    return 1.0 / (A_TRUE * disparity + B_TRUE)


def _scale_status(client: RosClient, predicate) -> object | None:
    def matching(msg) -> bool:
        return any(s.name == STATUS_NAME and predicate(s) for s in msg.status)

    msg = client.wait_for("/diagnostics", matching, timeout_s=30)
    return None if msg is None else next(s for s in msg.status if s.name == STATUS_NAME)


def _sparse_image_factory(disparity: np.ndarray, inverted: bool = False):
    """16UC1 millimetres at half resolution: 30 % of pixels, 5 % of those gross outliers.

    ``inverted``: near where the model says far, as from a sensor registered to the
    wrong camera; such data contradicts the prediction.
    """
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    if inverted:
        disparity = disparity.max() + disparity.min() - disparity
    # Source pixel (r, c) at half resolution maps onto target pixel (2r, 2c).
    depth_m = _expected_depth_m(disparity[::2, ::2])
    depth_mm = np.round(depth_m * 1000).astype(np.uint16)
    depth_mm[rng.random(depth_mm.shape) > 0.3] = 0
    outliers = (rng.random(depth_mm.shape) < 0.05) & (depth_mm > 0)
    depth_mm[outliers] = rng.integers(300, 20000, outliers.sum())

    def make(now_ns: int) -> Image:
        msg = Image(height=HEIGHT // 2, width=WIDTH // 2, encoding="16UC1", step=WIDTH)
        msg.data = depth_mm.tobytes()
        set_header(msg, now_ns, FRAME)
        return msg

    return make


def test_sparse_depth_image_gives_metres_and_points_withholds_on_contradiction_then_stale(
    harness, tmp_path, relative_checkpoint
):
    from sensor_msgs.msg import Image

    params = _params(
        tmp_path, relative_checkpoint, mode="sparse", sparse_type="image", timeout_s=1.0
    )
    node, client, camera = harness(params, Image)
    disparity = _disparity(client)
    # Relative only until sparse depth arrives: no `depth` claims metres.
    assert client.messages("depth") == []
    waiting = _scale_status(client, lambda s: s.message.startswith("waiting"))
    assert waiting is not None and waiting.level == b"\x01"  # WARN

    camera.make_sparse = _sparse_image_factory(disparity)
    depth_msg = client.wait_for("depth", timeout_s=60)
    assert depth_msg is not None, node.log()
    assert depth_msg.encoding == "32FC1" and depth_msg.header.frame_id == FRAME
    assert stamp_ns(depth_msg) in camera.stamps
    np.testing.assert_allclose(_image_array(depth_msg), _expected_depth_m(disparity), rtol=3e-3)

    # Points: organised, z equals the metric depth (depth_image_proc layout, xyz only).
    cloud = client.wait_for("points", lambda m: m.header.stamp == depth_msg.header.stamp, 10)
    assert cloud is not None and (cloud.height, cloud.width) == (HEIGHT, WIDTH)
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(HEIGHT, WIDTH, -1)[..., :3]
    np.testing.assert_allclose(xyz[..., 2], _image_array(depth_msg), rtol=1e-6)

    scale = client.wait_for("depth/scale", lambda m: m.data[2] == 1.0, 10)  # tracking
    assert scale is not None
    assert scale.layout.dim[0].label == "a,b,state,num_inliers,num_samples,residual,age_s"
    a, b, _, inliers, samples, residual, _ = scale.data
    assert a == pytest.approx(A_TRUE, rel=3e-3) and b == pytest.approx(B_TRUE, abs=1e-3)
    assert 0.85 * samples < inliers < samples  # the 5 % outliers are not inliers
    status = _scale_status(client, lambda s: s.message == "tracking")
    assert status is not None and status.level == b"\x00"  # OK

    # Sparse depth that contradicts the model: metric output stops at once (no holding
    # of the old fit on a view the sensor says is wrong), and resumes when data agrees.
    camera.make_sparse = _sparse_image_factory(disparity, inverted=True)
    rejected = client.wait_for("depth/scale", lambda m: m.data[2] == 5.0, 30)
    assert rejected is not None, node.log()
    rejected_ns = time.time_ns()
    status = _scale_status(client, lambda s: s.message.startswith("rejected"))
    # WARN, ERROR once contradicted for longer than scale.timeout_s (1 s here)
    assert status is not None and status.level in (b"\x01", b"\x02"), node.log()
    assert "not positive" in status.message and "depth not published" in status.message
    later = client.wait_for("depth/relative", lambda m: stamp_ns(m) > rejected_ns, timeout_s=30)
    assert later is not None, node.log()
    time.sleep(0.5)
    assert [stamp_ns(m) for m in client.messages("depth") if stamp_ns(m) > rejected_ns] == []
    camera.make_sparse = _sparse_image_factory(disparity)
    assert client.wait_for("depth", lambda m: stamp_ns(m) > rejected_ns, 30) is not None

    # The sparse stream stops: the last fit is held for timeout_s (1 s), then `depth` stops.
    camera.make_sparse = None
    stopped_s = time.monotonic()
    stale = _scale_status(client, lambda s: s.message.startswith("stale"))
    assert stale is not None and stale.level == b"\x02", node.log()  # ERROR
    # Stale means the last accepted fit is older than timeout_s, and no sooner.
    assert float({kv.key: kv.value for kv in stale.values}["age_s"]) > 1.0
    assert time.monotonic() - stopped_s < 30.0  # bounded, even with a lagging node
    assert "depth not published" in stale.message
    stale_ns = time.time_ns()
    # The node keeps serving relative output for frames captured after the stale report...
    later = client.wait_for("depth/relative", lambda m: stamp_ns(m) > stale_ns, timeout_s=30)
    assert later is not None, node.log()
    time.sleep(0.5)  # depth would follow its depth/relative within milliseconds
    # ...but no metres: a frame already past its scale check may still come out, no later one.
    assert [stamp_ns(m) for m in client.messages("depth") if stamp_ns(m) > stale_ns] == []
    assert [stamp_ns(m) for m in client.messages("points") if stamp_ns(m) > stale_ns] == []
    # (past messages count too: skip the contradiction phase's state 5)
    late = client.wait_for("depth/scale", lambda m: m.data[6] > 1.0 and m.data[2] not in (0, 5), 10)
    assert late is not None and late.data[2] == 3.0  # age > timeout means stale

    # Sparse depth returns: metric depth resumes without a restart.
    camera.make_sparse = _sparse_image_factory(disparity)
    assert client.wait_for("depth", timeout_s=30) is not None
    assert_one_diagnostics_stream_with_the_scale_inside(client)


def _cloud_factory(disparity: np.ndarray, T_camera_from_lidar: np.ndarray):
    """Points in a 'lidar' frame that land on every 3rd pixel at 1/(A·D + B) metres."""
    from sensor_msgs.msg import PointCloud2, PointField

    rows, cols = np.mgrid[0:HEIGHT:3, 0:WIDTH:3]
    rows, cols = rows.ravel(), cols.ravel()
    z = _expected_depth_m(disparity[rows, cols])
    fx, cx, fy, cy = K[0], K[2], K[4], K[5]
    camera = np.stack([(cols - cx) * z / fx, (rows - cy) * z / fy, z, np.ones_like(z)], axis=1)
    lidar = camera @ np.linalg.inv(T_camera_from_lidar).T
    # x, y, z float32 plus an intensity field, point_step 16: offsets must be honoured.
    points = np.zeros((len(z), 4), np.float32)
    points[:, :3] = lidar[:, :3]
    points[:, 3] = 42.0
    fields = [
        PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate(("x", "y", "z", "intensity"))
    ]

    def make(now_ns: int) -> PointCloud2:
        msg = PointCloud2(height=1, width=len(z), fields=fields, point_step=16)
        msg.row_step = 16 * len(z)
        msg.is_dense = True
        msg.data = points.tobytes()
        set_header(msg, now_ns, "lidar")
        return msg

    return make


def test_point_cloud_in_another_frame_uses_the_static_extrinsic(
    harness, tmp_path, relative_checkpoint
):
    from sensor_msgs.msg import PointCloud2

    from dav2_ros.scale import transform_from_xyz_rpy

    # A LiDAR (x forward, y left, z up) 0.1 m above the camera, slightly offset.
    xyz, rpy = [0.05, -0.1, 0.02], [np.pi / 2, -np.pi / 2, 0.0]
    extrinsic = dict(zip(("x", "y", "z", "roll", "pitch", "yaw"), xyz + rpy, strict=True))
    params = _params(
        tmp_path,
        relative_checkpoint,
        mode="sparse",
        sparse_type="points",
        **{f"extrinsic.{k}": float(v) for k, v in extrinsic.items()},
    )
    node, client, camera = harness(params, PointCloud2)
    disparity = _disparity(client)
    camera.make_sparse = _cloud_factory(disparity, transform_from_xyz_rpy(xyz, rpy))
    depth_msg = client.wait_for("depth", timeout_s=60)
    assert depth_msg is not None, node.log()
    assert "scale.extrinsic" in node.log()  # no tf2_ros here: the parameter is used
    np.testing.assert_allclose(_image_array(depth_msg), _expected_depth_m(disparity), rtol=1e-3)
    scale = client.wait_for("depth/scale", lambda m: m.data[2] == 1.0, 10)
    assert scale.data[0] == pytest.approx(A_TRUE, rel=1e-3)
    assert scale.data[4] == len(range(0, HEIGHT, 3)) * len(range(0, WIDTH, 3))


def test_fixed_mode_publishes_metres_from_calibrated_a_b(harness, tmp_path, relative_checkpoint):
    params = _params(tmp_path, relative_checkpoint, mode="fixed", a=A_TRUE, b=B_TRUE)
    node, client, _ = harness(params, None)
    depth_msg = client.wait_for("depth", timeout_s=60)
    assert depth_msg is not None, node.log()
    relative = client.wait_for("depth/relative", lambda m: m.header == depth_msg.header, 10)
    expected = _expected_depth_m(_image_array(relative).astype(np.float64))
    np.testing.assert_allclose(_image_array(depth_msg), expected, rtol=1e-5)
    scale = client.wait_for("depth/scale", timeout_s=10)
    assert list(scale.data[:3]) == [A_TRUE, B_TRUE, 4.0]  # 4 = fixed
    assert_one_diagnostics_stream_with_the_scale_inside(client)


def assert_one_diagnostics_stream_with_the_scale_inside(client: RosClient) -> None:
    """Exactly one /diagnostics publisher for the node (the ROS graph's count), and each of
    its arrays carries the node's status and the metric scale's, in that order."""
    assert client.wait_for("/diagnostics", timeout_s=10) is not None
    assert wait_until(lambda: len(diagnostics_publishers(client)) > 0, 10)
    publishers = diagnostics_publishers(client)
    assert len(publishers) == 1, publishers
    names = {tuple(s.name for s in m.status) for m in client.messages("/diagnostics")}
    assert names == {(NODE_STATUS_NAME, STATUS_NAME)}


def test_fixed_mode_without_a_refuses_to_start(tmp_path, relative_checkpoint):
    params = _params(tmp_path, relative_checkpoint, mode="fixed")
    node = NodeProcess(params, tmp_path / "node.log")
    try:
        assert wait_until(lambda: node.process.poll() is not None, 60), "node kept running"
        assert node.process.returncode == 1
        assert "parameter 'scale.a'" in node.log() and "dav2 calibrate" in node.log()
    finally:
        node.stop()
