"""Engines return a confidence head's output; the self-check checks it; the estimator turns
it (or a mirrored second pass) into a confidence map at the depth's size."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)

from dav2_ros.engines import DepthEstimator, EngineConfig, EngineSpec, create_engine
from dav2_ros.engines.base import SelfCheckSettings, register_backend
from dav2_ros.engines.self_check import SelfCheckFailed, calibration_batch, reference_output
from dav2_ros.engines.torch_engine import TorchEngine
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.confidence import confidence_from_error, flip_disagreement
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import prepare_input, resize_output

INPUT_HW = (56, 70)
INPUT_SIZE = 56


@pytest.fixture(scope="module")
def model() -> DepthAnythingV2:
    torch.manual_seed(0)
    net = DepthAnythingV2("vitt", "metric", 10.0, confidence_head=True)
    net = randomize_weights_(net, seed=7).eval()
    with torch.no_grad():  # an error map that varies over the image
        net.depth_head.uncertainty.conv1.weight.mul_(20.0)
    return net


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return calibration_batch(INPUT_HW)


@pytest.fixture(scope="module")
def reference(model, batch) -> np.ndarray:
    with torch.inference_mode():
        depth, log_error = model.depth_and_log_error(torch.from_numpy(batch))
    return np.concatenate([depth.numpy(), log_error.exp().numpy()])


@pytest.fixture(scope="module")
def ort_engine(model, tmp_path_factory):
    cache = tmp_path_factory.mktemp("confidence-cache")
    return create_engine(
        model, EngineConfig(backend="onnxruntime", input_hw=INPUT_HW, cache_dir=cache)
    )


def test_the_onnx_graph_carries_depth_and_expected_error(ort_engine) -> None:
    graph = onnx.load(str(ort_engine.model_path), load_external_data=False)
    assert [o.name for o in graph.graph.output] == ["depth", "expected_error"]
    props = {p.key: p.value for p in graph.metadata_props}
    assert "exp(-expected_error)" in props["dav2.expected_error"]


def test_torch_and_onnxruntime_return_both_planes_as_the_model(
    model, batch, reference, ort_engine
) -> None:
    assert reference[1].std() > 1e-3 * reference[1].mean()  # not a constant map
    torch_planes = create_engine(model, EngineConfig(input_hw=INPUT_HW)).infer(batch)
    assert torch_planes.shape == (2, *INPUT_HW)
    np.testing.assert_allclose(torch_planes[0], reference[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch_planes[1], reference[1], rtol=1e-4)  # exp of the log
    ort_planes = ort_engine.infer(batch)
    assert ort_planes.shape == (2, *INPUT_HW) and ort_planes.dtype == np.float32
    for plane in (0, 1):
        error = np.linalg.norm(ort_planes[plane] - reference[plane])
        assert error / np.linalg.norm(reference[plane]) < 1e-4


def test_openvino_returns_both_planes_as_the_model(
    model, batch, reference, tmp_path_factory
) -> None:
    cache = tmp_path_factory.mktemp("confidence-openvino")
    config = EngineConfig("openvino", input_hw=INPUT_HW, cache_dir=cache, options={"threads": 1})
    planes = create_engine(model, config).infer(batch)
    assert planes.shape == (2, *INPUT_HW) and planes.dtype == np.float32
    for plane in (0, 1):
        error = np.linalg.norm(planes[plane] - reference[plane])
        assert error / np.linalg.norm(reference[plane]) < 1e-4


class WrongConfidenceEngine(TorchEngine):
    """Right depth, expected error tripled: confidence a costmap must not trust."""

    backend = "wrong-confidence"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        planes = super().infer(batch)
        planes[1] *= 3.0
        return planes


register_backend("wrong-confidence-test", WrongConfidenceEngine)


def test_the_self_check_compares_the_confidence_as_well_as_the_depth(model, batch) -> None:
    assert reference_output(model, batch).shape == (2, *INPUT_HW)
    settings = SelfCheckSettings(max_deviation=0.05)
    config = EngineConfig(backend="wrong-confidence-test", input_hw=INPUT_HW, self_check=settings)
    with pytest.raises(SelfCheckFailed, match="returns wrong confidence") as failed:
        create_engine(model, config)
    result = failed.value.result
    assert result.deviation < 1e-6 and result.confidence_deviation > 0.05  # depth was right
    assert "self_check_confidence_deviation" in result.fields()


def test_the_estimator_maps_the_heads_error_to_confidence_at_the_depths_size(model) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (48, 60, 3), dtype=np.uint8)
    estimator = DepthEstimator(model, EngineSpec("torch"), INPUT_SIZE, confidence="auto")
    assert estimator.confidence == "head"
    prediction = estimator.predict(rgb)
    with torch.inference_mode():
        _, log_error = model.depth_and_log_error(torch.from_numpy(prepare_input(rgb, INPUT_SIZE)))
    expected = confidence_from_error(resize_output(log_error[0].exp().numpy(), 48, 60))
    assert prediction.confidence.shape == prediction.values.shape == (48, 60)
    np.testing.assert_allclose(prediction.confidence, expected, rtol=1e-5, atol=1e-6)
    assert estimator.predict(rgb, confidence="off").confidence is None
    at_network = estimator.predict(rgb, (0, 0))
    assert at_network.confidence.shape == at_network.values.shape == (56, 70)


class CountingEngine(TorchEngine):
    backend = "counting"
    calls = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        CountingEngine.calls += 1
        return super().infer(batch)


register_backend("counting-test", CountingEngine)


def test_flip_confidence_runs_a_mirrored_pass_only_when_asked() -> None:
    plain = randomize_weights_(DepthAnythingV2("vitt", "metric", 10.0), seed=8).eval()
    rgb = np.random.default_rng(2).integers(0, 256, (56, 70, 3), dtype=np.uint8)
    estimator = DepthEstimator(plain, EngineSpec("counting-test"), INPUT_SIZE, confidence="flip")
    CountingEngine.calls = 0
    prediction = estimator.predict(rgb, (0, 0))
    assert CountingEngine.calls == 2
    with torch.inference_mode():
        depth = plain(torch.from_numpy(prepare_input(rgb, INPUT_SIZE)))[0].numpy()
        mirrored = plain(torch.from_numpy(prepare_input(rgb[:, ::-1].copy(), INPUT_SIZE)))
    expected = confidence_from_error(flip_disagreement(depth, mirrored[0].numpy(), "metric"))
    np.testing.assert_allclose(prediction.confidence, expected, rtol=1e-4, atol=1e-4)
    assert prediction.confidence.min() < 1.0
    CountingEngine.calls = 0
    assert estimator.predict(rgb, confidence="off").confidence is None
    assert CountingEngine.calls == 1
