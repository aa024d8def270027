"""Engine self-check: real engines against the fp32 torch reference on one frame.

The bundled model (ViT-T student, input 84) keeps this cheap: one ONNX export into a
temporary cache, shared by the fp32 and int8 engines. The wrong-depth engine is the
robustness tests' plugin (``test/plugins/faulty_engine.py``), switched by a file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)

from dav2_ros.engines import EngineConfig, create_engine
from dav2_ros.engines.self_check import (
    DEFAULT_MAX_DEVIATION,
    check_engine,
    needs_self_check,
    reference_output,
)
from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.transforms import model_input_size, prepare_input
from dav2_ros.sim import Intrinsics, make_scene, random_pose, render

PLUGINS_DIR = Path(__file__).resolve().parent / "plugins"
ONE_THREAD = {"threads": 1}  # torch engines set the process-wide pool: keep the fixture's


@pytest.fixture(scope="module")
def bundled():
    loaded = load_model(None)
    return loaded.model.eval(), loaded.meta.input_size


@pytest.fixture(scope="module")
def batch(bundled) -> np.ndarray:
    """The calibration frame: a rendered room, as a camera would see it."""
    _, input_size = bundled
    scene = make_scene(7, "a", "room")
    frame = render(
        scene, Intrinsics.from_fov(160, 120, 70.0), random_pose(scene, np.random.default_rng(0))
    )
    return prepare_input(frame.rgb, input_size)


@pytest.fixture(scope="module")
def reference(bundled, batch) -> np.ndarray:
    model, _ = bundled
    return reference_output(model, batch)


@pytest.fixture(scope="module")
def input_hw(bundled) -> tuple[int, int]:
    return model_input_size(120, 160, bundled[1])


def independent_relative_l2(output: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(((output - reference) ** 2).sum() / (reference**2).sum()))


def test_reference_is_the_fp32_model_itself(bundled, batch, reference) -> None:
    model, _ = bundled
    with torch.inference_mode():
        np.testing.assert_array_equal(reference, model(torch.from_numpy(batch)).numpy())
    assert reference.shape == (1, *batch.shape[2:]) and np.abs(reference).max() > 0.1


def test_int8_engine_reports_its_deviation(
    bundled, batch, reference, input_hw, bundled_engine_cache
):
    model, _ = bundled
    cache_dir = bundled_engine_cache
    config = EngineConfig(
        "onnxruntime", input_hw=input_hw, cache_dir=cache_dir, options={"quantize": "int8"}
    )
    assert needs_self_check(config)
    engine = create_engine(copy.deepcopy(model), config)
    result = check_engine(engine, batch, reference)
    expected = independent_relative_l2(engine.infer(batch), reference)
    assert result.deviation == pytest.approx(expected, rel=1e-6)
    assert 1e-4 < result.deviation < DEFAULT_MAX_DEVIATION  # int8 is not exact, but close
    assert result.passed and result.max_deviation == DEFAULT_MAX_DEVIATION
    assert f"{result.deviation:.2%}" in result.message and "int8" in result.message
    assert result.fields()["self_check"] == "passed"
    assert float(result.fields()["self_check_deviation"]) == pytest.approx(result.deviation, 1e-5)
    # The fp32 graph of the same cache is checked too, and is exact to float rounding.
    fp32 = create_engine(
        copy.deepcopy(model), EngineConfig("onnxruntime", input_hw=input_hw, cache_dir=cache_dir)
    )
    assert check_engine(fp32, batch, reference).deviation < 1e-4
    # A tighter limit than int8 achieves refuses the same engine, with the figure.
    strict = check_engine(engine, batch, reference, max_deviation=result.deviation / 2)
    assert not strict.passed and f"{result.deviation:.2%}" in strict.message


def test_bf16_torch_is_checked_against_weights_taken_before_it_converts_them(
    bundled, batch, reference, input_hw
) -> None:
    model, _ = bundled
    own = copy.deepcopy(model)
    own_reference = reference_output(own, batch)  # first: the engine converts ``own`` in place
    engine = create_engine(
        own, EngineConfig("torch", precision="bf16", input_hw=input_hw, options=ONE_THREAD)
    )
    result = check_engine(engine, batch, own_reference)
    assert result.passed and 1e-4 < result.deviation < DEFAULT_MAX_DEVIATION
    with pytest.raises(ValueError, match="fp32 weights.*before building an engine"):
        reference_output(own, batch)  # now bf16: no reference can be made from it


@pytest.fixture
def faulty(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    monkeypatch.setenv("DAV2_FAULT_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("factor, figure", [("1.3", "30.00%"), ("0.9", "10.00%")])
def test_engine_returning_wrong_depth_is_refused_with_the_figure(
    bundled, batch, reference, input_hw, faulty: Path, factor: str, figure: str
) -> None:
    (faulty / "wrong_depth").write_text(factor)
    config = EngineConfig("faulty_engine:factory", input_hw=input_hw, options=ONE_THREAD)
    assert needs_self_check(config)  # a plugin is not the reference, whatever it wraps
    engine = create_engine(bundled[0], config)
    result = check_engine(engine, batch, reference)
    assert not result.passed
    assert result.deviation == pytest.approx(abs(float(factor) - 1), rel=1e-5)
    assert "self-check FAILED" in result.message and figure in result.message
    assert "engine.allow_deviation" in result.message
    assert result.fields()["self_check"] == "failed"


def test_engine_returning_nan_or_failing_is_refused_with_the_reason(
    bundled, batch, reference, input_hw, faulty: Path
) -> None:
    engine = create_engine(
        bundled[0], EngineConfig("faulty_engine:factory", input_hw=input_hw, options=ONE_THREAD)
    )
    (faulty / "wrong_depth").write_text("nan")
    result = check_engine(engine, batch, reference)
    assert not result.passed and result.deviation == float("inf")
    assert f"returned {reference.size} NaN/Inf values of {reference.size}" in result.message
    (faulty / "wrong_depth").unlink()
    (faulty / "infer_fails").touch()
    result = check_engine(engine, batch, reference)
    assert not result.passed and result.deviation == float("inf")
    assert "failed on the calibration frame (RuntimeError: injected engine fault" in result.message
    (faulty / "infer_fails").unlink()
    assert check_engine(engine, batch, reference).deviation < 1e-6  # healed: it is torch fp32


@pytest.mark.parametrize(
    "config, checked",
    [
        (EngineConfig("torch"), False),
        (EngineConfig("torch", device="cuda"), False),
        (EngineConfig("torch", precision="bf16"), True),
        (EngineConfig("torch", options={"compile": True}), True),
        (EngineConfig("onnxruntime"), True),
        (EngineConfig("tensorrt", precision="fp16"), True),
    ],
)
def test_every_engine_but_eager_fp32_torch_is_checked(config: EngineConfig, checked: bool) -> None:
    assert needs_self_check(config) is checked


def test_a_limit_must_be_positive(bundled, batch, reference, input_hw) -> None:
    engine = create_engine(bundled[0], EngineConfig("torch", input_hw=input_hw, options=ONE_THREAD))
    with pytest.raises(ValueError, match="max_deviation must be > 0"):
        check_engine(engine, batch, reference, max_deviation=0.0)
