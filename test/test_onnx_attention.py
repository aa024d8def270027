"""The attention rewrite: every block fused at opset 18, numerically the same graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from dav2_ros.engines.onnx_attention import fuse_attention
from dav2_ros.engines.onnx_export import export_onnx
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_

INPUT_HW = (70, 98)


@pytest.fixture(scope="module")
def model() -> DepthAnythingV2:
    return randomize_weights_(DepthAnythingV2("vitt", "relative"), seed=5).eval()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("attention") / "plain.onnx"
    export_onnx(model, INPUT_HW, path)
    return path.read_bytes()


def _run(onnx_model: onnx.ModelProto, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def test_every_block_becomes_one_multi_head_attention_with_the_same_output(model, exported):
    onnx_model = onnx.load_from_string(exported)
    batch = np.random.default_rng(0).normal(size=(1, 3, *INPUT_HW)).astype(np.float32)
    expected = _run(onnx_model, batch)

    assert fuse_attention(onnx_model, model.spec.num_heads) == model.spec.depth
    ops = [node.op_type for node in onnx_model.graph.node]
    assert ops.count("MultiHeadAttention") == model.spec.depth and "Softmax" not in ops
    onnx.checker.check_model(onnx_model)
    fused = _run(onnx_model, batch)
    assert np.linalg.norm(fused - expected) / np.linalg.norm(expected) < 1e-5


def test_a_graph_declaring_opset_17_is_left_alone(model, exported):
    # Split's num_outputs attribute needs opset 18; older graphs keep their attention.
    onnx_model = onnx.load_from_string(exported)
    for opset in onnx_model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 17
    before = onnx_model.SerializeToString()
    assert fuse_attention(onnx_model, model.spec.num_heads) == 0
    assert onnx_model.SerializeToString() == before
