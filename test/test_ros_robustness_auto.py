"""``engine.backend: auto`` falls back with logged reasons; corrupt compressed payloads;
SIGINT stops the node within 2 s; a corrupt engine-cache entry is rebuilt (slow).

Default run (no GPU): precision bf16 makes tensorrt (no CUDA) unavailable; openvino
serves it on a CPU with BF16, and elsewhere it and onnxruntime (fp32 graphs) are skipped
too and torch serves: each skip is logged with its reason, and the choice line is on
/diagnostics. The slow variant lets openvino fp32 win
on CPU (an ONNX export, ~20 s of CPU) with a damaged cache entry to rebuild, and sends
SIGINT while a second export runs: no half-written file may stay in the cache.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CompressedImage, Image
from test_ros_robustness import (
    plugin_env,
    running_node,
    send_until_diagnosed,
    start_node,
    status_of,
    stop_with,
    values_of,
)
from test_ros_support import (
    TINY_INPUT_SIZE,
    NodeProcess,
    RosClient,
    save_tiny_checkpoint,
    scene_rgb,
    set_header,
    stamp_ns,
)

pytestmark = pytest.mark.ros

NS = "/cam_auto"
FRAME = "cam_auto_optical_frame"
HEIGHT, WIDTH = 120, 160


def jpeg(stamp: int, fmt: str = "jpg") -> CompressedImage:
    ok, data = cv2.imencode(f".{fmt}", scene_rgb(HEIGHT, WIDTH))
    assert ok
    msg = CompressedImage(format="jpeg" if fmt == "jpg" else fmt, data=data.tobytes())
    set_header(msg, stamp, FRAME)
    return msg


_stamp = [1_850_000_000_000_000_000]


def new_stamp() -> int:
    _stamp[0] += 33_000_000
    return _stamp[0]


def serve_compressed(client: RosClient, timeout_s: float = 60) -> Image:
    """Publish good frames until depth for any of them comes back (slow engines too)."""
    sent: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = jpeg(new_stamp())
        sent.add(stamp_ns(msg))
        client.image_pub.publish(msg)
        out = client.wait_for("depth", lambda m: stamp_ns(m) in sent, 1.0)
        if out is not None:
            return out
    raise AssertionError(f"no depth within {timeout_s} s")


def make_client() -> RosClient:
    ros = RosClient(namespace=NS)
    ros.subscribe("depth", Image)
    ros.subscribe("/diagnostics", DiagnosticArray)
    ros.image_pub = ros.node.create_publisher(CompressedImage, "image/compressed", 5)
    return ros


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("auto_node")
    params = {
        "model.checkpoint": str(save_tiny_checkpoint(work)),
        "engine.backend": "auto",
        "engine.precision": "bf16",
        "engine.threads": 1,
        "image_transport": "compressed",
        "output.resolution": "model",
        "engine.warmup_width": WIDTH,  # the engine is built at start, for the camera's size
        "engine.warmup_height": HEIGHT,
    }
    env = {**plugin_env(work), "DAV2_CACHE_DIR": str(work / "cache")}
    with running_node(work, params, env, NS) as process:
        yield process


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    rclpy.init()
    ros = make_client()
    try:
        yield ros
    finally:
        ros.close()
        rclpy.shutdown()


def test_auto_walks_its_order_and_logs_each_reason(client: RosClient, node: NodeProcess) -> None:
    serve_compressed(client)
    log = node.log()
    # Each skip names the backend, the exception and why (here: bf16 is not for them).
    assert "engine auto: skipped tensorrt (ValueError: tensorrt backend supports precisions" in log
    if cpu_has_bf16():  # openvino runs bf16 here: the order's next backend serves
        served = "openvino cpu bf16 126x168"
    else:
        assert "engine auto: skipped openvino (EngineUnavailable: openvino backend: precision " \
            "bf16 needs BF16 support" in log, log  # fmt: skip
        onnxruntime_reason = (
            "engine auto: skipped onnxruntime (EngineUnavailable: onnxruntime backend runs the "
            "fp32 graph (int8: its dynamic int8 encoder); precision 'bf16' needs the TensorRT"
        )
        assert onnxruntime_reason in log, log
        served = "torch cpu bf16 126x168"
    assert f"engine for 160x120 images: {served}" in log, log
    assert "engine auto: using " + served in log, log  # the choice line, with its reasons
    backend = served.split()[0] + " cpu bf16"
    diag = client.wait_for("/diagnostics", lambda m: backend in values_of(m)["engine"], 5)
    assert diag is not None, client.messages("/diagnostics")[-1:]
    assert values_of(diag)["engine_choice"].startswith("using " + served)


def cpu_has_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def corrupt_payloads() -> dict[str, bytes]:
    good_jpeg, good_png = bytes(jpeg(0).data), bytes(jpeg(0, "png").data)
    flipped = bytearray(good_png)
    flipped[40:60] = bytes(20)  # inside IHDR/IDAT: the PNG CRC check fails
    return {
        "truncated jpeg": good_jpeg[:200],
        "truncated png": good_png[: len(good_png) // 3],
        "damaged png": bytes(flipped),
        "not an image": b"GIF89a? no: just text" * 10,
    }


@pytest.mark.parametrize("case", list(corrupt_payloads()))
def test_corrupt_compressed_payload_is_reported_and_next_frame_served(
    client: RosClient, node: NodeProcess, case: str
) -> None:
    msg = jpeg(new_stamp())
    msg.data = corrupt_payloads()[case]
    text = "cannot decode compressed image"
    diag = send_until_diagnosed(client, msg, client.image_pub, text, DiagnosticStatus.ERROR)
    assert f"{len(msg.data)} bytes" in status_of(diag).message
    assert int(values_of(diag)["frames_rejected"]) > 0
    serve_compressed(client)
    assert node.wait_for_log(text, 2) and "Traceback" not in node.log()


def test_sigint_mid_stream_stops_the_node_within_2s_without_traceback(
    client: RosClient, node: NodeProcess
) -> None:
    """Last test of the module: Ctrl-C while frames keep arriving."""
    for _ in range(10):
        client.image_pub.publish(jpeg(new_stamp()))
        time.sleep(0.03)
    code, stopped_s = stop_with(node, signal.SIGINT)
    assert stopped_s < 2.0, f"stopped after {stopped_s:.2f} s"
    assert code == 0 and "Traceback" not in node.log(), node.log()[-3000:]


def _seed_corrupt_onnx_entry(cache_dir: Path, checkpoint: Path) -> Path:
    """Write garbage where the node's ONNX graph will be looked up, with a manifest whose
    checksum matches the garbage: only loading it can tell that it is broken."""
    from dav2_ros.engines.cache import ArtifactCache, cache_key, file_sha256
    from dav2_ros.engines.onnx_export import DEFAULT_OPSET
    from dav2_ros.engines.onnxruntime_engine import onnx_cache_fields
    from dav2_ros.model.checkpoints import load_model
    from dav2_ros.model.transforms import model_input_size

    model = load_model(checkpoint).model
    hw = model_input_size(HEIGHT, WIDTH, TINY_INPUT_SIZE)
    fields = onnx_cache_fields(model, hw, DEFAULT_OPSET, None)
    artifact, manifest = ArtifactCache(cache_dir).paths(cache_key(fields), ".onnx")
    cache_dir.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(b"\x08\x07garbage, not a protobuf" * 100)
    manifest.write_text(
        json.dumps({"version": 1, "fields": fields, "sha256": file_sha256(artifact)}, default=str)
    )
    return artifact


@pytest.mark.slow
def test_auto_picks_openvino_on_cpu_rebuilds_a_corrupt_cache_entry_and_sigint_mid_export_leaves_no_temp_files(  # noqa: E501
    tmp_path: Path,
) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path)
    cache_dir = tmp_path / "cache"
    seeded = _seed_corrupt_onnx_entry(cache_dir, checkpoint)
    params = {
        "model.checkpoint": str(checkpoint),
        "engine.backend": "auto",
        "engine.precision": "fp32",  # openvino compiles the shared (corrupt) ONNX entry
        "engine.threads": 1,
        "image_transport": "compressed",
        "output.resolution": "model",
        "engine.warmup_width": WIDTH,  # the engine is built at start, for the camera's size
        "engine.warmup_height": HEIGHT,
    }
    env = {**plugin_env(tmp_path), "DAV2_CACHE_DIR": str(cache_dir)}
    node = start_node(tmp_path, params, env, NS)
    rclpy.init()
    client = make_client()
    try:
        assert node.wait_for_log("ready:", timeout_s=90), node.log()
        serve_compressed(client, timeout_s=300)
        log = node.log()
        assert "engine auto: skipped tensorrt (EngineUnavailable:" in log, log
        assert "engine for 160x120 images: openvino cpu fp32" in log, log
        assert f"rebuilding {seeded}" in log and "failed to load" in log, log
        assert seeded.stat().st_size > 10_000, "the corrupt entry must have been replaced"
        # A new resolution starts a second export; Ctrl-C lands in the middle of it.
        other = jpeg(new_stamp())
        ok, data = cv2.imencode(".jpg", scene_rgb(2 * HEIGHT, 3 * WIDTH))
        other.data = data.tobytes()
        for _ in range(20):
            client.image_pub.publish(other)
            if "camera resolution changed" in node.log():
                break
            time.sleep(0.2)
        time.sleep(1.0)
        code, stopped_s = stop_with(node, signal.SIGINT)
    finally:
        client.close()
        rclpy.shutdown()
        node.stop()
    assert "camera resolution changed" in node.log(), node.log()[-3000:]
    assert stopped_s < 2.0 and code == 0, (stopped_s, code, node.log()[-3000:])
    leftovers = [p.name for p in cache_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"half-written cache files left behind: {leftovers}"
    entries = sorted(p.name for p in cache_dir.iterdir())
    assert all(p.endswith((".onnx", ".ovblob", ".json")) for p in entries), entries
