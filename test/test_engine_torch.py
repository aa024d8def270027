"""Torch backend options (threads, channels-last, bf16) keep the network's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dav2_ros.engines import EngineConfig, EngineUnavailable, create_engine
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
