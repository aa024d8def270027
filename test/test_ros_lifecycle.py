"""``depth_lifecycle_node`` brought up as a lifecycle manager does it: every transition
over DDS through the ``lifecycle_msgs`` services of a node in its own process, with a
camera streaming all along.

The tests run in order on one node: it starts with a checkpoint that does not exist, so
the first configure fails; the corrected parameter is set and configure succeeds; then
activate, deactivate, activate, cleanup, configure/activate again and shutdown.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
from sensor_msgs.msg import Image
from test_ros_support import (
    NodeProcess,
    RosClient,
    call_service,
    save_tiny_checkpoint,
    set_parameters,
    stamp_ns,
    streaming_client,
    wait_until,
    write_params,
)

pytestmark = pytest.mark.ros

NS = "/cam_lc"
NODE = f"{NS}/dav2_depth"
FRAME = "cam_lc_optical_frame"
HEIGHT, WIDTH = 96, 128
RATE_HZ = 10.0
K = [120, 0, 64, 0, 120, 48, 0, 0, 1]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    work = tmp_path_factory.mktemp("lifecycle")
    params = {
        "model.checkpoint": str(work / "not-there.safetensors"),
        "engine.backend": "torch",
        "engine.threads": 1,
        "output.resolution": "model",
        "points.stride": 4,
        "engine.warmup_width": WIDTH,
        "engine.warmup_height": HEIGHT,
    }
    process = NodeProcess(
        write_params(work / "params.yaml", params),
        work / "node.log",
        NS,
        executable="depth_lifecycle_node",
    )
    process.checkpoint = save_tiny_checkpoint(work)  # what the corrected parameter names
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[RosClient]:
    with streaming_client(NS, {"depth": Image}, FRAME, RATE_HZ, (HEIGHT, WIDTH), K) as ros:
        yield ros


def state(client: RosClient) -> str:
    return call_service(
        client, GetState, f"{NODE}/get_state", GetState.Request()
    ).current_state.label


def change(client: RosClient, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return call_service(client, ChangeState, f"{NODE}/change_state", request, timeout_s=90).success


def depth_after(client: RosClient, since_s: float) -> list[Image]:
    """Depth images of frames published after ``since_s`` (time.monotonic())."""
    sent = dict(client.camera.sent)
    return [m for m in client.messages("depth") if sent.get(stamp_ns(m), 0.0) > since_s]


def node_status(client: RosClient, since_s: float) -> dict[str, str] | None:
    """The node's latest /diagnostics values received after ``since_s``, with its message."""
    with client._lock:
        latest = [m for t, m in client.received["/diagnostics"] if t > since_s]
    for msg in reversed(latest):
        for status in msg.status:
            if status.hardware_id == "dav2_depth":
                return {"message": status.message, **{kv.key: kv.value for kv in status.values}}
    return None


def quiet_for(client: RosClient, seconds: float) -> list[Image]:
    start = time.monotonic()
    time.sleep(seconds)
    return depth_after(client, start)


def test_starts_unconfigured_and_publishes_nothing(node: NodeProcess, client: RosClient) -> None:
    assert state(client) == "unconfigured", node.log()
    assert quiet_for(client, 1.5) == []
    assert wait_until(lambda: node_status(client, 0.0) is not None, 5)
    assert node_status(client, 0.0)["lifecycle_state"] == "unconfigured"


def test_failed_configure_leaves_it_unconfigured_alive_and_says_why(
    node: NodeProcess, client: RosClient
) -> None:
    asked = time.monotonic()
    assert change(client, Transition.TRANSITION_CONFIGURE) is False
    assert state(client) == "unconfigured"
    assert node.process.poll() is None
    assert node.wait_for_log("configure failed", 5) and "model.checkpoint" in node.log()
    assert wait_until(
        lambda: "configure failed" in (node_status(client, asked) or {}).get("message", ""), 5
    )
    assert "not-there.safetensors" in node_status(client, asked)["message"]
    assert quiet_for(client, 1.0) == []


def test_corrected_parameter_then_configure_is_inactive_and_silent(
    node: NodeProcess, client: RosClient
) -> None:
    (result,) = set_parameters(client, NODE, {"model.checkpoint": str(node.checkpoint)})
    assert result.successful, result.reason
    assert change(client, Transition.TRANSITION_CONFIGURE) is True, node.log()[-3000:]
    assert state(client) == "inactive"
    assert node.wait_for_log("configured: model vitt metric", 5)
    assert quiet_for(client, 1.5) == [], "an inactive node must not publish"


def test_read_only_parameter_is_refused_while_configured_with_what_to_do(
    client: RosClient,
) -> None:
    (result,) = set_parameters(client, NODE, {"engine.backend": "onnxruntime"})
    assert not result.successful
    assert (
        "'engine.backend'" in result.reason and "cleanup, set it, then configure" in result.reason
    )


def test_activate_publishes(node: NodeProcess, client: RosClient) -> None:
    asked = time.monotonic()
    assert change(client, Transition.TRANSITION_ACTIVATE) is True
    assert state(client) == "active"
    assert wait_until(lambda: depth_after(client, asked), 10), node.log()[-3000:]


def test_deactivate_silences_and_activate_resumes_within_one_frame(
    node: NodeProcess, client: RosClient
) -> None:
    assert change(client, Transition.TRANSITION_DEACTIVATE) is True
    assert state(client) == "inactive"
    assert quiet_for(client, 1.5) == [], "a deactivated node must stay silent"
    asked = time.monotonic()
    assert change(client, Transition.TRANSITION_ACTIVATE) is True
    assert wait_until(lambda: depth_after(client, asked), 5)
    sent = client.camera.sent
    first_frame = min(t for t in sent.values() if t > asked)
    first_out = min(sent[stamp_ns(m)] for m in depth_after(client, asked))
    # The engine was kept: the first frame after activation is served (10 Hz camera).
    assert first_out - first_frame < 1.5 / RATE_HZ, (first_frame, first_out)


def test_cleanup_releases_the_model_and_configure_activate_work_again(
    node: NodeProcess, client: RosClient
) -> None:
    process = psutil.Process(node.process.pid)
    rss_active_mb = process.memory_info().rss / 2**20
    assert change(client, Transition.TRANSITION_DEACTIVATE) is True
    assert change(client, Transition.TRANSITION_CLEANUP) is True
    assert state(client) == "unconfigured"
    rss_clean_mb = process.memory_info().rss / 2**20
    print(f"lifecycle RSS: active {rss_active_mb:.0f} MB, after cleanup {rss_clean_mb:.0f} MB")
    assert rss_clean_mb < rss_active_mb, "cleanup must give memory back"
    assert quiet_for(client, 1.0) == []
    asked = time.monotonic()
    assert change(client, Transition.TRANSITION_CONFIGURE) is True
    assert change(client, Transition.TRANSITION_ACTIVATE) is True
    assert wait_until(lambda: depth_after(client, asked), 10), node.log()[-3000:]


def test_available_transitions_follow_the_state(client: RosClient) -> None:
    answer = call_service(
        client, GetAvailableTransitions, f"{NODE}/get_available_transitions",
        GetAvailableTransitions.Request(),
    )  # fmt: skip
    labels = {t.transition.label for t in answer.available_transitions}
    assert {"deactivate", "shutdown"} <= labels and "configure" not in labels


def test_shutdown_finalizes_and_sigint_ends_the_process_within_2s(
    node: NodeProcess, client: RosClient
) -> None:
    assert change(client, Transition.TRANSITION_ACTIVE_SHUTDOWN) is True
    assert state(client) == "finalized"
    assert quiet_for(client, 1.0) == []
    start = time.monotonic()
    node.process.send_signal(signal.SIGINT)
    code = node.process.wait(timeout=20)
    assert time.monotonic() - start < 2.0 and code == 0, node.log()[-3000:]
    assert "Traceback" not in node.log()


def test_a_configured_lifecycle_node_stops_on_sigterm_within_2s(
    client: RosClient, tmp_path: Path
) -> None:
    params = {"model.checkpoint": str(save_tiny_checkpoint(tmp_path)), "engine.backend": "torch"}
    process = NodeProcess(
        write_params(tmp_path / "p.yaml", params), tmp_path / "node.log", "/cam_lc2",
        executable="depth_lifecycle_node",
    )  # fmt: skip
    try:
        request = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE))
        name = "/cam_lc2/dav2_depth/change_state"
        assert call_service(client, ChangeState, name, request, timeout_s=90).success
        start = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        code = process.process.wait(timeout=20)
        assert time.monotonic() - start < 2.0 and code == 0, process.log()[-3000:]
    finally:
        process.stop()
