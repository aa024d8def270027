"""ONNX Runtime backend against eager torch on the same weights, and its disk cache.

One small student (vitt, 126×168) is exported once per module into a temporary
cache; the tests share it so the suite pays for a single export.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import onnx
import pytest
import torch

from dav2_ros.engines import EngineConfig, EngineUnavailable, create_engine, openvino_engine
from dav2_ros.engines.onnxruntime_engine import OnnxRuntimeEngine
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_

INPUT_HW = (126, 168)


def relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="module")
def model() -> DepthAnythingV2:
    return randomize_weights_(DepthAnythingV2("vitt", "relative"), seed=3).eval()


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1, 3, *INPUT_HW)).astype(np.float32)


@pytest.fixture(scope="module")
def torch_output(model, batch) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(batch)).numpy()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="module")
def ort_engine(model, cache_dir) -> OnnxRuntimeEngine:
    config = EngineConfig(backend="onnxruntime", input_hw=INPUT_HW, cache_dir=cache_dir)
    return create_engine(model, config)


def test_onnxruntime_matches_torch_fp32(ort_engine, batch, torch_output):
    assert np.abs(torch_output).max() > 0.1  # the comparison is not between zeros
    out = ort_engine.infer(batch)
    assert out.shape == (1, *INPUT_HW) and out.dtype == np.float32
    assert relative_l2(out, torch_output) < 1e-4


def test_cpu_engine_runs_the_fused_graph_on_all_cores(ort_engine, model):
    assert ort_engine.session.get_providers() == ["CPUExecutionProvider"]
    assert ort_engine.threads == len(os.sched_getaffinity(0))
    identity = ort_engine.identity  # what /diagnostics shows, field by field
    assert (identity.backend, identity.device, identity.precision) == ("onnxruntime", "cpu", "fp32")
    assert identity.input_hw == (126, 168) and identity.options["fuse"] is True
    assert identity.options["provider"] == "CPU" and ort_engine.skipped_backends == ()
    assert ort_engine.description.startswith("onnxruntime cpu fp32 126x168 (")
    ops = [node.op_type for node in onnx.load(str(ort_engine.model_path)).graph.node]
    assert "SkipLayerNormalization" in ops  # ORT's transformer fusions were applied
    # Every block's attention is one fused node; no tokens × tokens Softmax is left.
    assert ops.count("MultiHeadAttention") == model.spec.depth and "Softmax" not in ops


def test_second_engine_loads_from_cache(ort_engine, model, cache_dir, batch):
    config = EngineConfig(backend="onnxruntime", input_hw=INPUT_HW, cache_dir=cache_dir)
    again = create_engine(model, config)
    assert ort_engine.cache_result.built and not again.cache_result.built
    assert again.model_path == ort_engine.model_path
    np.testing.assert_array_equal(again.infer(batch), ort_engine.infer(batch))


def test_corrupt_cached_graph_is_rebuilt(ort_engine, model, cache_dir, batch, torch_output, caplog):
    path = ort_engine.model_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64  # damage a weight block
    path.write_bytes(bytes(data))
    config = EngineConfig(backend="onnxruntime", input_hw=INPUT_HW, cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        rebuilt = create_engine(model, config)
    assert rebuilt.cache_result.built
    assert "checksum" in rebuilt.cache_result.rebuild_reason
    assert "rebuilding" in caplog.text
    assert relative_l2(rebuilt.infer(batch), torch_output) < 1e-4


def test_int8_quantised_encoder_stays_close(ort_engine, model, cache_dir, batch, torch_output):
    config = EngineConfig(
        backend="onnxruntime", input_hw=INPUT_HW, cache_dir=cache_dir, options={"quantize": "int8"}
    )
    int8 = create_engine(model, config)
    assert int8.model_path != ort_engine.model_path
    assert int8.model_path.stat().st_size < 0.6 * ort_engine.model_path.stat().st_size
    ops = {node.op_type for node in onnx.load(str(int8.model_path)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}  # linear layers now int8
    assert "MultiHeadAttention" in ops  # the attention fusion survives quantisation
    assert "ConvInteger" not in ops  # the DPT head stays fp32
    error = relative_l2(int8.infer(batch), torch_output)
    assert 0 < error < 0.05


def test_wrong_input_shape_is_a_clear_error(ort_engine):
    with pytest.raises(ValueError, match="built for input"):
        ort_engine.infer(np.zeros((1, 3, 140, 168), np.float32))


def test_unsupported_precision_or_device_says_what_to_do(model, cache_dir):
    with pytest.raises(EngineUnavailable, match="precision 'fp16'"):
        create_engine(
            model, EngineConfig(backend="onnxruntime", precision="fp16", input_hw=INPUT_HW)
        )
    with pytest.raises(EngineUnavailable, match="onnxruntime-gpu"):
        create_engine(model, EngineConfig(backend="onnxruntime", device="cuda", input_hw=INPUT_HW))
    with pytest.raises(ValueError, match="quantize"):
        create_engine(
            model,
            EngineConfig(backend="onnxruntime", input_hw=INPUT_HW, options={"quantize": "int4"}),
        )


def test_auto_prefers_openvino_then_onnxruntime_on_cpu_and_says_why(
    ort_engine, model, cache_dir, caplog, monkeypatch
):
    config = EngineConfig(backend="auto", input_hw=INPUT_HW, cache_dir=cache_dir)
    with caplog.at_level(logging.INFO, logger="dav2_ros.engines.auto"):
        engine = create_engine(model, config)
    assert engine.backend == "openvino"  # auto's order: tensorrt → openvino → onnxruntime
    assert "skipping tensorrt" in caplog.text
    assert any("tensorrt" in reason for reason in engine.skipped_backends)
    monkeypatch.setattr(openvino_engine, "_import_openvino", _openvino_missing)
    engine = create_engine(model, config)
    assert engine.backend == "onnxruntime"
    assert [reason.split(" ")[0] for reason in engine.skipped_backends] == [
        "tensorrt",
        "openvino",
    ]
    assert "the openvino package is not installed" in engine.skipped_backends[1]


def test_auto_falls_back_to_torch(caplog, monkeypatch):
    model = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=3)  # torch casts it
    # bf16 on a CPU without BF16 (its capability list injected): tensorrt needs CUDA,
    # openvino refuses bf16, onnxruntime runs fp32 graphs, torch serves it.
    no_bf16 = ["FP32", "INT8", "EXPORT_IMPORT"]
    monkeypatch.setattr(openvino_engine, "capabilities_of", lambda core, device: no_bf16)
    config = EngineConfig(backend="auto", precision="bf16", input_hw=INPUT_HW)
    with caplog.at_level(logging.INFO, logger="dav2_ros.engines.auto"):
        engine = create_engine(model, config)
    assert engine.backend == "torch"
    assert "skipping onnxruntime" in caplog.text
    assert [reason.split(" ")[0] for reason in engine.skipped_backends] == [
        "tensorrt",
        "openvino",
        "onnxruntime",
    ]
    assert "needs BF16" in engine.skipped_backends[1]


def _openvino_missing():
    raise EngineUnavailable("openvino backend: the openvino package is not installed (test)")
