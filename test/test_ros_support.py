"""Helpers for the depth-node tests (no tests here): a tiny checkpoint, a params file,
the node as a user starts it (its own process), a test client over real Fast DDS, and a
deliberately slow engine plugin (loaded by the node through ``engine.backend``).

Other features' node tests can reuse these: ``from test_ros_support import ...``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

TEST_DIR = Path(__file__).resolve().parent
DEPTH_NODE = Path(sys.executable).parent / "depth_node"
TINY_INPUT_SIZE = 126
TINY_MAX_DEPTH_M = 10.0
SLOW_ENGINE_PLUGIN = "test_ros_support:slow_torch_engine"
SLOW_ENGINE_DELAY_S = 0.12  # well above a 30 Hz frame period (33 ms)


def save_tiny_checkpoint(
    directory: Path,
    depth_type: str = "metric",
    seed: int = 0,
    output_bias: float | None = None,
    confidence_head: bool = False,
    canonical_focal_px: float | None = None,
) -> Path:
    """A random ``vitt`` model saved with ``save_model``; its output spans ~0.7-3.7 m.

    The last 1x1 conv is scaled up so depth varies across the image (a plain random
    init gives an almost constant output, useless for range and NaN tests).
    ``output_bias``: that conv's bias; a relative model's output is 0 (its final ReLU)
    almost everywhere without one, and spans ~0.8-2.4 with 3.0. ``confidence_head``:
    with a random confidence head whose confidence varies over the image.
    ``canonical_focal_px``: recorded as a canonical-camera model's (the node corrects its
    metres).
    """
    import torch

    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.checkpoints import ModelMeta, save_model

    torch.manual_seed(seed)
    model = DepthAnythingV2("vitt", depth_type, TINY_MAX_DEPTH_M, confidence_head)
    with torch.no_grad():
        model.depth_head.scratch.output_conv2[2].weight *= 40.0
        if output_bias is not None:
            model.depth_head.scratch.output_conv2[2].bias.fill_(output_bias)
        if confidence_head:  # confidence ~0.2-0.4 over the test scene, not one value
            model.depth_head.uncertainty.conv1.weight *= 20.0
    meta = ModelMeta(
        encoder="vitt",
        depth_type=depth_type,
        max_depth=TINY_MAX_DEPTH_M,
        input_size=TINY_INPUT_SIZE,
        provenance={"note": "random weights for tests"},
        canonical_focal_px=canonical_focal_px,
    )
    name = f"tiny_{depth_type}" + ("_confident" if confidence_head else "")
    name += "" if canonical_focal_px is None else "_canonical"
    return save_model(model, meta, directory / name)


# A small camera the streaming node tests share: its image size and intrinsics.
SMALL_HEIGHT, SMALL_WIDTH = 96, 128
SMALL_K = [110.0, 0, 64, 0, 110.0, 48, 0, 0, 1]


def tiny_node_values(
    checkpoint: Path, height: int = SMALL_HEIGHT, width: int = SMALL_WIDTH, **extra: Any
) -> dict[str, Any]:
    """Parameters of a node on a tiny checkpoint: torch on one thread (two shared cores),
    its warm-up frame at the camera's size, then ``extra`` (dotted names)."""
    return {
        "model.checkpoint": str(checkpoint),
        "engine.backend": "torch",
        "engine.threads": 1,
        "engine.warmup_width": width,
        "engine.warmup_height": height,
        **extra,
    }


def write_params(path: Path, values: dict[str, Any]) -> Path:
    """A ``--params-file`` for every node (``/**``) with dotted names nested as in depth.yaml."""
    from dav2_ros.paramspec import params_file_yaml

    path.write_text(params_file_yaml(values))
    return path


class NodeProcess:
    """``depth_node --ros-args --params-file …`` (or another of the package's executables)
    in its own process; logs to a file."""

    def __init__(
        self,
        params_file: Path,
        log_path: Path,
        namespace: str = "",
        executable: str = "depth_node",
        env_overrides: dict[str, str] | None = None,
    ) -> None:
        program = DEPTH_NODE.with_name(executable)
        args = [str(program), "--ros-args", "--params-file", str(params_file)]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        env = dict(os.environ)  # ROS_DOMAIN_ID and discovery range come from conftest
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TEST_DIR), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
        env.update(env_overrides or {})
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                return text in self.log()
            time.sleep(0.1)
        return False

    def stop(self) -> int | None:
        """SIGINT, then SIGKILL after 10 s; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


@contextmanager
def running_node(
    work_dir: Path, values: dict[str, Any], namespace: str = "", ready_timeout_s: float = 90
) -> Iterator[NodeProcess]:
    """The node with these parameters, ready (its "ready:" log line), stopped afterwards."""
    params = write_params(work_dir / "params.yaml", values)
    process = NodeProcess(params, work_dir / "node.log", namespace=namespace)
    try:
        assert process.wait_for_log("ready:", timeout_s=ready_timeout_s), process.log()
        yield process
    finally:
        process.stop()


@contextmanager
def ros_client(namespace: str = "") -> Iterator[RosClient]:
    """rclpy initialised for this process plus a spinning ``RosClient``; both torn down."""
    import rclpy

    rclpy.init()
    client = RosClient(namespace=namespace)
    try:
        yield client
    finally:
        client.close()
        rclpy.shutdown()


@contextmanager
def camera_client(namespace: str, topics: dict[str, type]) -> Iterator[RosClient]:
    """``ros_client`` subscribed to ``topics`` and /diagnostics, publishing as a camera:
    ``image_pub`` (Image on ``image``) and ``info_pub`` (CameraInfo on ``camera_info``)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image

    with ros_client(namespace=namespace) as ros:
        for topic, msg_type in topics.items():
            ros.subscribe(topic, msg_type)
        ros.subscribe("/diagnostics", DiagnosticArray)
        ros.image_pub = ros.node.create_publisher(Image, "image", 5)
        ros.info_pub = ros.node.create_publisher(CameraInfo, "camera_info", 5)
        yield ros


@contextmanager
def streaming_client(
    namespace: str,
    topics: dict[str, type],
    frame_id: str,
    rate_hz: float,
    shape: tuple[int, int] = (SMALL_HEIGHT, SMALL_WIDTH),
    k: list[float] | None = None,
) -> Iterator[RosClient]:
    """``camera_client`` with a ``StreamingCamera`` of ``scene_rgb(*shape)`` (intrinsics
    ``k``, default ``SMALL_K``) running as ``ros.camera`` until the block ends."""
    with camera_client(namespace, topics) as ros:
        rgb = scene_rgb(*shape)
        ros.camera = StreamingCamera(ros, rgb, SMALL_K if k is None else k, frame_id, rate_hz)
        try:
            yield ros
        finally:
            ros.camera.close()


class RosClient:
    """A test node in this process: publishes camera topics, collects outputs.

    Spins in a background thread; ``wait_for`` polls collected messages with a deadline.
    """

    def __init__(self, name: str = "dav2_test_client", namespace: str = "") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node(name, namespace=namespace)
        self.received: dict[str, list[tuple[float, Any]]] = {}
        self._subscriptions: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def subscribe(self, topic: str, msg_type: type, qos: Any = 10) -> None:
        self.received.setdefault(topic, [])

        def keep(msg: Any, topic: str = topic) -> None:
            with self._lock:
                self.received[topic].append((time.monotonic(), msg))

        self._subscriptions[topic] = self.node.create_subscription(msg_type, topic, keep, qos)

    def unsubscribe(self, topic: str) -> None:
        self.node.destroy_subscription(self._subscriptions.pop(topic))

    def messages(self, topic: str) -> list[Any]:
        with self._lock:
            return [msg for _, msg in self.received.get(topic, [])]

    def clear(self) -> None:
        with self._lock:
            for values in self.received.values():
                values.clear()

    def wait_for(
        self, topic: str, predicate: Callable[[Any], bool] = lambda _: True, timeout_s: float = 20
    ) -> Any | None:
        """First collected message on ``topic`` that satisfies ``predicate``, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in self.messages(topic):
                if predicate(msg):
                    return msg
            time.sleep(0.02)
        return None

    def close(self) -> None:
        # The spin thread must be gone before the node is destroyed: otherwise rclpy defers
        # the destruction to that thread, which may run it later while another test's node
        # leaves the graph, and Fast DDS 2.14's destroy_participant can then deadlock with
        # its discovery listener while holding the GIL (seen as a hung suite).
        self._executor.shutdown(timeout_sec=10)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the client's executor thread did not stop"
        self.node.destroy_node()


def exchange(client: RosClient, msg: Any, topic: str = "depth", timeout_s: float = 40) -> Any:
    """Publish ``msg`` (repeatedly, until discovery settles) and return the output on
    ``topic`` that carries its stamp."""
    wanted = stamp_ns(msg)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client.image_pub.publish(msg)
        out = client.wait_for(topic, lambda m: stamp_ns(m) == wanted, timeout_s=1.5)
        if out is not None:
            return out
    raise AssertionError(f"no {topic} for stamp {wanted} within {timeout_s} s")


class StreamingCamera:
    """Publishes ``image`` (rgb8) + ``camera_info`` through ``client.image_pub`` and
    ``client.info_pub`` at ``rate_hz`` from a thread, stamps counting up by the period;
    ``sent`` maps each stamp to its time.monotonic() of publication. ``lose_every``: every
    n-th frame is stamped but never sent (a frame lost in transport)."""

    def __init__(
        self,
        client: RosClient,
        rgb: np.ndarray,
        k: list[float],
        frame_id: str,
        rate_hz: float,
        lose_every: int = 0,
    ) -> None:
        height, width = rgb.shape[:2]
        self.client, self.rate_hz, self.frame_id = client, rate_hz, frame_id
        self.lose_every = lose_every
        self.image = image_msg(rgb, "rgb8", 0, frame_id)
        self.info = camera_info_msg(width, height, k, frame_id)
        self.sent: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stamp, count = 1_000_000_000, 0
        while not self._stop.wait(1.0 / self.rate_hz):
            stamp, count = stamp + int(1e9 / self.rate_hz), count + 1
            if self.lose_every and count % self.lose_every == 0:
                continue
            set_header(self.image, stamp, self.frame_id)
            self.info.header = self.image.header
            self.client.info_pub.publish(self.info)
            self.sent[stamp] = time.monotonic()
            self.client.image_pub.publish(self.image)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def call_service(client: RosClient, srv_type: type, name: str, request: Any, timeout_s=30) -> Any:
    """Call a service of another process through ``client`` (spinning in its thread)."""
    service = client.node.create_client(srv_type, name)
    try:
        assert service.wait_for_service(timeout_sec=timeout_s), f"no service {name}"
        future = service.call_async(request)
        assert wait_until(future.done, timeout_s), f"{name}: no answer in {timeout_s} s"
        return future.result()
    finally:
        client.node.destroy_client(service)


def set_parameters(client: RosClient, node_name: str, values: dict[str, Any]) -> list[Any]:
    """``ros2 param set`` over DDS: the ``SetParametersResult`` of each value, in order."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    request = SetParameters.Request(
        parameters=[
            Parameter(name, value=value).to_parameter_msg() for name, value in values.items()
        ]
    )
    return list(call_service(client, SetParameters, f"{node_name}/set_parameters", request).results)


def diagnostics_publishers(client: RosClient, namespace: str = "/") -> list[Any]:
    """The depth node's publishers on /diagnostics, as the ROS graph reports them."""
    infos = client.node.get_publishers_info_by_topic("/diagnostics")
    return [i for i in infos if (i.node_name, i.node_namespace) == ("dav2_depth", namespace)]


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def image_msg(
    rgb: np.ndarray,
    encoding: str,
    stamp_ns: int,
    frame_id: str,
    row_padding: int = 0,
    big_endian: bool = False,
) -> Any:
    """An ``Image`` holding ``rgb`` (HxWx3 uint8) encoded as ``encoding`` (any colour
    encoding the node reads: ``camera_encoders.encode``), rows padded by ``row_padding``
    bytes, 16-bit values stored big-endian if ``big_endian``."""
    from camera_encoders import encode, frame_bytes
    from sensor_msgs.msg import Image

    height, width = rgb.shape[:2]
    data, step = frame_bytes(encode(rgb, encoding), row_padding, big_endian)
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.is_bigendian = big_endian
    msg.data = data
    set_header(msg, stamp_ns, frame_id)
    return msg


def set_header(msg: Any, stamp_ns: int, frame_id: str) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id


def stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def camera_info_msg(width: int, height: int, k: list[float], frame_id: str) -> Any:
    from sensor_msgs.msg import CameraInfo

    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.k = [float(v) for v in k]
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = frame_id
    return info


def scene_rgb(height: int, width: int) -> np.ndarray:
    """A structured RGB test image (gradients), deterministic, HxWx3 uint8."""
    v, u = np.mgrid[0:height, 0:width]
    channels = [u * 255 // max(width - 1, 1), v * 255 // max(height - 1, 1), (3 * u + v) % 256]
    return np.stack(channels, -1).astype(np.uint8)


def slow_torch_engine(model: Any, config: Any) -> Any:
    """Engine plugin (``engine.backend: test_ros_support:slow_torch_engine``): the torch
    engine plus a fixed delay, so inference takes longer than a 30 Hz frame period."""
    from dav2_ros.engines.torch_engine import TorchEngine

    class SlowTorchEngine(TorchEngine):
        backend = "slow-torch"

        def infer(self, batch: np.ndarray) -> np.ndarray:
            time.sleep(SLOW_ENGINE_DELAY_S)
            return super().infer(batch)

    return SlowTorchEngine(model, config)
