"""Torch backend options (threads, channels-last, bf16) keep the network's output; the
engine's identity names them; ``DepthEstimator`` builds one engine per input size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dav2_ros.engines import (
    DepthEstimator,
    EngineConfig,
    EngineIdentity,
    EngineSpec,
    EngineUnavailable,
    create_engine,
)
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_

INPUT_HW = (126, 154)


@pytest.fixture
def model() -> DepthAnythingV2:
    return randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=2).eval()


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(1, 3, *INPUT_HW)).astype(np.float32)


def test_channels_last_and_thread_count_do_not_change_output(model, batch):
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).numpy()
    previous_threads = torch.get_num_threads()
    try:
        options = {"channels_last": True, "threads": 1}
        engine = create_engine(model, EngineConfig(input_hw=INPUT_HW, options=options))
        assert torch.get_num_threads() == 1
        out = engine.infer(batch)
    finally:
        torch.set_num_threads(previous_threads)
    assert out.shape == (1, *INPUT_HW) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)


def test_bf16_on_cpu_is_close_and_fp16_is_refused(model, batch):
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).numpy()
    engine = create_engine(model, EngineConfig(precision="bf16", input_hw=INPUT_HW))
    out = engine.infer(batch)
    assert np.linalg.norm(out - reference) / np.linalg.norm(reference) < 0.1
    with pytest.raises(EngineUnavailable, match="fp16 is not supported on CPU"):
        create_engine(model, EngineConfig(precision="fp16", input_hw=INPUT_HW))


def test_identity_has_each_part_and_rebuilds_the_same_engine(model):
    engine = create_engine(model, EngineConfig(input_hw=INPUT_HW, options={"threads": 1}))
    identity = engine.identity
    assert identity == EngineIdentity("torch", "cpu", "fp32", INPUT_HW,
                                      {"threads": 1, "channels_last": False})  # fmt: skip
    fields = identity.fields()  # as /diagnostics carries them: one key per part
    assert fields["engine_backend"] == "torch" and fields["engine_input_width"] == "154"
    assert EngineIdentity.from_fields({"engine": "x", **fields}) == identity
    assert EngineIdentity.from_fields({"engine": "not built yet"}) is None
    again = create_engine(model, identity.spec().config(identity.input_hw))
    assert again.identity == identity and engine.skipped_backends == ()


def test_estimator_builds_one_engine_per_input_size_and_keeps_the_newest(model):
    estimator = DepthEstimator(model, EngineSpec(options={"threads": 1}), input_size=126)
    small, wide = np.zeros((60, 80, 3), np.uint8), np.zeros((60, 120, 3), np.uint8)
    assert estimator.engine is None and not estimator.has_engine_for(60, 80)
    first = estimator.engine_for(60, 80)
    assert estimator.predict(small).values.shape == (60, 80)
    assert estimator.engine is first and estimator.engine_for(61, 81) is first  # same input
    assert estimator.predict(wide, output_hw=(0, 0)).values.shape == (126, 252)
    assert estimator.engine.input_hw == (126, 252) and not estimator.has_engine_for(60, 80)
    keep_all = DepthEstimator(model, EngineSpec(), input_size=126, max_engines=None)
    keep_all.predict(small), keep_all.predict(wide)
    assert keep_all.has_engine_for(60, 80) and keep_all.has_engine_for(60, 120)
    with pytest.raises(ValueError, match="unknown engine backend 'nope'"):
        DepthEstimator(model, EngineSpec("nope"), input_size=126)
