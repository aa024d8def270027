"""The node refuses to start on bad configuration: exit code 1 and a message that names
the parameter (started as a user would, ``depth_node --ros-args --params-file``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_ros_support import NodeProcess, save_tiny_checkpoint, write_params

pytestmark = pytest.mark.ros


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"points.stride": 0}, "parameter 'points.stride'"),
        ({"model.checkpoint": "/nonexistent/model.pth"}, "parameter 'model.checkpoint'"),
    ],
    ids=["out of range", "missing checkpoint"],
)
def test_bad_configuration_stops_the_start_naming_the_parameter(
    tmp_path: Path, values: dict, message: str
) -> None:
    if "model.checkpoint" not in values:
        values = {"model.checkpoint": str(save_tiny_checkpoint(tmp_path))} | values
    process = NodeProcess(write_params(tmp_path / "p.yaml", values), tmp_path / "node.log")
    try:
        returncode = process.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the node kept running with a bad configuration")
    finally:
        process.stop()
    assert returncode == 1
    assert message in process.log(), process.log()
