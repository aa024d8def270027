"""The node refuses to start on bad configuration: exit code 1 and a message that names
the parameter (started as a user would, ``depth_node --ros-args --params-file``). A model
named ``hf:…`` starts from the Hugging Face cache, or stops the start saying how to fetch it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hub_cache import cache_commit, use_cache
from test_ros_support import NodeProcess, running_node, save_tiny_checkpoint, write_params

pytestmark = pytest.mark.ros
HYPERSIM_SMALL = (
    "hf:depth-anything/Depth-Anything-V2-Metric-Hypersim-Small/"
    "depth_anything_v2_metric_hypersim_vits.pth"
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"points.stride": 0}, "parameter 'points.stride'"),
        ({"model.checkpoint": "/nonexistent/model.pth"}, "parameter 'model.checkpoint'"),
        # A name missing from the (empty) cache: what to run, and the parameter that allows it.
        (
            {"model.checkpoint": HYPERSIM_SMALL},
            f"`dav2 fetch {HYPERSIM_SMALL}`, or allow the "
            "download where it is loaded: `--download` on dav2 commands, `model.download: true`",
        ),
    ],
    ids=["out of range", "missing checkpoint", "hub name not cached"],
)
def test_bad_configuration_stops_the_start_naming_the_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict, message: str
) -> None:
    use_cache(monkeypatch, tmp_path / "empty-hub-cache")
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


def test_a_model_named_on_the_hub_starts_from_the_cache_and_logs_its_licence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from dav2_ros.model import DepthAnythingV2

    cache = use_cache(monkeypatch, tmp_path / "hub")  # HF_HUB_CACHE for the node's process
    torch.save(DepthAnythingV2("vitt").state_dict(), tmp_path / "official.pth")
    cache_commit(
        cache,
        "depth-anything/Depth-Anything-V2-Metric-Hypersim-Small",
        {"depth_anything_v2_metric_hypersim_vits.pth": tmp_path / "official.pth"},
    )
    values = {"model.checkpoint": HYPERSIM_SMALL, "engine.backend": "torch",
              "engine.input_size": 126}  # fmt: skip
    with running_node(tmp_path, values) as node:
        log = node.log()
    # Through the node's logger; metric 20 m because the repository says Hypersim.
    repo = "depth-anything/Depth-Anything-V2-Metric-Hypersim-Small"
    assert f"[dav2_depth]: model licence: Apache-2.0 ({repo})" in log
    assert f"ready: model vitt metric max_depth=20m ({HYPERSIM_SMALL})" in log
