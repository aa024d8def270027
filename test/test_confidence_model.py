"""The confidence head in the model and the checkpoint formats, and the confidence mapping.

A head is an extra output of the DPT head; it must not change the depth, must travel in
the project's format (its metadata says so) and must leave official and Hugging Face
checkpoints loading as they did (no head).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import (
    CheckpointError,
    ModelMeta,
    load_model,
    save_hf_model,
    save_model,
)
from dav2_ros.model.confidence import (
    ConfidenceUnavailable,
    confidence_from_error,
    flip_disagreement,
    resolve_mode,
)
from dav2_ros.model.random_weights import randomize_weights_

BATCH_HW = (56, 70)


def headed(seed: int = 0, depth_type: str = "metric") -> DepthAnythingV2:
    torch.manual_seed(seed)
    return DepthAnythingV2("vitt", depth_type, 10.0, confidence_head=True).eval()


def test_a_head_leaves_the_initial_depth_weights_and_the_depth_unchanged() -> None:
    torch.manual_seed(0)
    plain = DepthAnythingV2("vitt", "metric", 10.0).eval()
    with_head = headed(0)
    plain_state, head_state = plain.state_dict(), with_head.state_dict()
    assert set(head_state) - set(plain_state) == {
        k for k in head_state if k.startswith("depth_head.uncertainty.")
    }
    for key, value in plain_state.items():
        torch.testing.assert_close(head_state[key], value, rtol=0, atol=0)
    x = torch.randn(1, 3, *BATCH_HW)
    with torch.no_grad():
        depth, log_error = with_head.depth_and_log_error(x)
        torch.testing.assert_close(depth, plain(x), rtol=0, atol=0)
        torch.testing.assert_close(with_head(x), plain(x), rtol=0, atol=0)
    assert log_error.shape == depth.shape == (1, *BATCH_HW)


def test_the_heads_loss_reaches_only_the_head() -> None:
    model = headed(1).train()
    _, log_error = model.depth_and_log_error(torch.randn(2, 3, *BATCH_HW))
    log_error.sum().backward()
    for name, parameter in model.named_parameters():
        in_head = name.startswith("depth_head.uncertainty.")
        has_gradient = parameter.grad is not None and bool(parameter.grad.abs().sum() > 0)
        assert has_gradient == in_head, name


def test_a_model_without_head_says_how_to_get_one() -> None:
    plain = DepthAnythingV2("vitt", "metric", 10.0)
    with pytest.raises(ValueError, match="dav2-train confidence"):
        plain.depth_and_log_error(torch.zeros(1, 3, *BATCH_HW))


def test_confidence_is_exp_of_minus_the_expected_error() -> None:
    error = np.array([0.0, math.log(2.0), math.log(1 / 0.8), np.inf, np.nan], np.float32)
    confidence = confidence_from_error(error)
    assert confidence.dtype == np.float32
    np.testing.assert_allclose(confidence[:4], [1.0, 0.5, 0.8, 0.0], rtol=1e-6)
    assert np.isnan(confidence[4])


def test_auto_uses_a_head_when_there_is_one_and_head_refuses_a_model_without() -> None:
    assert resolve_mode("auto", has_head=True) == "head"
    assert resolve_mode("auto", has_head=False) == "off"
    assert resolve_mode("flip", has_head=False) == "flip"
    assert resolve_mode("off", has_head=True) == "off"
    with pytest.raises(ConfidenceUnavailable, match="dav2-train confidence.*flip"):
        resolve_mode("head", has_head=False, source="depth_anything_v2_vits.pth")
    with pytest.raises(ValueError, match="one of auto, head, flip, off"):
        resolve_mode("both", has_head=True)


def test_flip_disagreement_is_zero_for_agreeing_passes_and_measures_the_log_ratio() -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 5.0, (6, 8)).astype(np.float32)
    mirrored = depth[:, ::-1]  # what a symmetric model returns for the mirrored image
    np.testing.assert_allclose(flip_disagreement(depth, mirrored, "metric"), 0.0, atol=1e-6)
    twice_as_far = flip_disagreement(depth, 2.0 * mirrored, "metric")
    np.testing.assert_allclose(twice_as_far, math.log(2.0), rtol=1e-5)
    # Relative: the passes' own scale and shift do not count, only their shapes.
    disparity = 1.0 / depth
    affine = 3.0 * disparity[:, ::-1] + 0.5
    np.testing.assert_allclose(flip_disagreement(disparity, affine, "relative"), 0.0, atol=1e-5)
    bumped = affine.copy()
    bumped[0, 0] += 1.0  # mirrored back, the bump is at column 7 of row 0
    assert flip_disagreement(disparity, bumped, "relative")[0, 7] > 0.5


def test_the_project_format_carries_the_head_and_says_so(tmp_path) -> None:
    model = randomize_weights_(headed(2), seed=2)
    meta = ModelMeta("vitt", "metric", 10.0, input_size=70, confidence_head={"steps": 5})
    path = save_model(model, meta, tmp_path / "with_head")
    document = json.loads(path.with_suffix(".json").read_text())
    assert document["format_version"] == 2
    assert document["confidence_head"]["output"] == "expected_error"
    assert (
        "ln d" in document["confidence_head"]["measures"]
        and document["confidence_head"]["steps"] == 5
    )
    loaded = load_model(path)
    assert loaded.model.has_confidence_head and loaded.meta.has_confidence_head
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value, rtol=0, atol=0)
    plain = save_model(
        DepthAnythingV2("vitt", "metric", 10.0),
        ModelMeta("vitt", "metric", 10.0),
        tmp_path / "plain",
    )
    plain_document = json.loads(plain.with_suffix(".json").read_text())
    assert plain_document["format_version"] == 1 and "confidence_head" not in plain_document
    assert not load_model(plain).meta.has_confidence_head


def test_metadata_and_tensors_that_disagree_about_the_head_are_refused(tmp_path) -> None:
    path = save_model(headed(3), ModelMeta("vitt", "metric", 10.0), tmp_path / "m")
    json_path = path.with_suffix(".json")
    document = json.loads(json_path.read_text())
    del document["confidence_head"]
    json_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="metadata does not describe one"):
        load_model(path)
    plain = save_model(
        DepthAnythingV2("vitt", "metric", 10.0), ModelMeta("vitt", "metric", 10.0), tmp_path / "p"
    )
    plain_json = plain.with_suffix(".json")
    document = json.loads(plain_json.read_text())
    document["confidence_head"] = {"output": "expected_error"}
    plain_json.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="tensors hold none"):
        load_model(plain)
    with pytest.raises(CheckpointError, match="no confidence head"):
        save_model(
            DepthAnythingV2("vitt", "metric", 10.0),
            ModelMeta("vitt", "metric", 10.0, confidence_head={"x": 1}),
            tmp_path / "q",
        )


def test_official_and_hugging_face_checkpoints_load_without_a_head(tmp_path) -> None:
    plain = randomize_weights_(DepthAnythingV2("vitt", "relative"), seed=4)
    torch.save(plain.state_dict(), tmp_path / "depth_anything_v2_vitt.pth")
    official = load_model(tmp_path / "depth_anything_v2_vitt.pth")
    assert not official.model.has_confidence_head and not official.meta.has_confidence_head
    hf = load_model(save_hf_model(plain, tmp_path / "hf"))
    assert not hf.model.has_confidence_head
    with pytest.raises(CheckpointError, match="transformers format has no confidence head"):
        save_hf_model(headed(4), tmp_path / "hf_head")
    # A plain state dict of a model with a head (official layout) keeps the head.
    torch.save(headed(5).state_dict(), tmp_path / "with_head_metric.pth")
    loaded = load_model(tmp_path / "with_head_metric.pth", depth_type="metric", max_depth=10.0)
    assert loaded.model.has_confidence_head and "ln d" in loaded.meta.confidence_head["measures"]
