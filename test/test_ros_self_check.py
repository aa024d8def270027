"""The engine self-check in the real node, read over real Fast DDS: an explicit engine that
returns wrong depth (``test/plugins/faulty_engine.py``, ``wrong_depth``) is refused with
the figure on /diagnostics and in the log, never rebuilt, and no depth is published.
(A passing engine's figure in the /diagnostics fields: test_engine_self_check_build.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import Image
from test_ros_robustness import plugin_env, running_node, status_of, values_of
from test_ros_support import (
    RosClient,
    camera_client,
    image_msg,
    save_tiny_checkpoint,
    scene_rgb,
)

pytestmark = pytest.mark.ros

NS = "/cam_check"
FRAME = "cam_check_optical_frame"
HEIGHT, WIDTH = 120, 160


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("self_check_model"))


@pytest.fixture
def client() -> Iterator[RosClient]:
    with camera_client(NS, {"depth": Image}) as ros:
        yield ros


def diagnosed(
    client: RosClient, level: bytes | None, text: str, key: str = "", timeout_s: float = 40
) -> object:
    """Stream frames at 5 Hz until /diagnostics says ``text`` at ``level`` (any level:
    None) with the value ``key``, if given."""
    stamp = 1_720_000_000_000_000_000
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stamp += 200_000_000
        client.image_pub.publish(image_msg(scene_rgb(HEIGHT, WIDTH), "rgb8", stamp, FRAME))
        time.sleep(0.2)
        for msg in client.messages("/diagnostics"):
            status = status_of(msg)
            wanted = not key or key in values_of(msg)
            if level in (None, status.level) and text in status.message and wanted:
                return msg
    last = client.messages("/diagnostics")[-1:]
    raise AssertionError(f"/diagnostics never said {text!r}: {last}")


def params(checkpoint: Path) -> dict:
    return {
        "model.checkpoint": str(checkpoint),
        "engine.backend": "faulty_engine:factory",
        "engine.threads": 1,
        "output.resolution": "model",
    }


def test_wrong_depth_engine_is_refused_with_the_figure_on_diagnostics(
    checkpoint: Path, tmp_path: Path, client: RosClient
) -> None:
    (tmp_path / "wrong_depth").write_text("1.5")
    with running_node(tmp_path, params(checkpoint), plugin_env(tmp_path), NS) as node:
        msg = diagnosed(client, DiagnosticStatus.ERROR, "self-check FAILED")
        status, values = status_of(msg), values_of(msg)
        assert "50.00%" in status.message and "engine.allow_deviation" in status.message
        assert values["self_check"] == "failed"
        assert float(values["self_check_deviation"]) == pytest.approx(0.5, rel=1e-4)
        assert float(values["self_check_max_deviation"]) == pytest.approx(0.02)
        assert values["self_check_reference"] == "torch cpu fp32"
        assert values["engine"].startswith("refused by its self-check")
        time.sleep(1.0)  # more frames: still refused, never rebuilt, no depth
        assert node.log().count("self-check FAILED") == 1, node.log()
        assert (tmp_path / "calls.log").read_text().count("build") == 1
        assert client.messages("depth") == []
