"""Torch-TensorRT backend: the program it compiles exports strictly on any machine;
building and running it needs CUDA and torch_tensorrt (skipped with the reason here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dav2_ros.engines import EngineConfig, EngineUnavailable, create_engine
from dav2_ros.engines.tensorrt_engine import export_program, require_tensorrt
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_

INPUT_HW = (126, 168)


def _tensorrt_missing() -> str | None:
    try:
        require_tensorrt("cuda")
    except EngineUnavailable as exc:
        return str(exc)
    return None


TENSORRT_MISSING = _tensorrt_missing()
needs_tensorrt = pytest.mark.skipif(TENSORRT_MISSING is not None, reason=str(TENSORRT_MISSING))


@pytest.fixture(scope="module")
def model() -> DepthAnythingV2:
    return randomize_weights_(DepthAnythingV2("vitt6", "metric", max_depth=20.0), seed=1).eval()


def test_program_tensorrt_compiles_exports_strictly_at_configured_shape(model):
    # strict=True fails on any graph break; this is the exact call the backend makes.
    program = export_program(model, INPUT_HW)
    (user_input,) = program.graph_signature.user_inputs
    placeholder = next(n for n in program.graph.nodes if n.name == user_input)
    assert tuple(placeholder.meta["val"].shape) == (1, 3, *INPUT_HW)
    x = torch.randn(1, 3, *INPUT_HW, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(TENSORRT_MISSING is None, reason="tensorrt is available here")
def test_missing_cuda_or_package_is_named(model):
    with pytest.raises(EngineUnavailable) as info:
        create_engine(model, EngineConfig(backend="tensorrt", device="cuda", input_hw=INPUT_HW))
    message = str(info.value)
    if not torch.cuda.is_available():
        assert "CUDA device" in message
    assert ("torch_tensorrt" in message) or torch.cuda.is_available()
    with pytest.raises(EngineUnavailable, match="device 'cuda'"):
        create_engine(model, EngineConfig(backend="tensorrt", device="cpu", input_hw=INPUT_HW))


@pytest.mark.gpu
@needs_tensorrt
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_tensorrt_matches_torch_and_reloads_from_cache(model, tmp_path, precision, tolerance):
    config = EngineConfig(
        backend="tensorrt",
        device="cuda",
        precision=precision,
        input_hw=INPUT_HW,
        cache_dir=tmp_path,
    )
    batch = np.random.default_rng(0).normal(size=(1, 3, *INPUT_HW)).astype(np.float32)
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).numpy()
    engine = create_engine(model, config)
    out = engine.infer(batch)
    assert np.linalg.norm(out - reference) / np.linalg.norm(reference) < tolerance
    again = create_engine(model, config)
    assert engine.cache_result.built and not again.cache_result.built
    np.testing.assert_allclose(again.infer(batch), out, rtol=1e-3, atol=1e-3)
