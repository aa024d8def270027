"""The self-check where engines are built: ``create_engine`` with ``self_check`` set, the
``auto`` fallback, the supervisor's refusal, and ``dav2 bench``'s JSON.

The bundled model (ViT-T student, input 84) keeps it cheap: one ONNX export into a
module-wide cache, shared by the fp32 and int8 engines. The wrong-depth engine is the
robustness tests' plugin (``test/plugins/faulty_engine.py``), switched by a file.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)

from dav2_ros.cli import main as dav2_main
from dav2_ros.engines import DepthEstimator, EngineConfig, EngineSpec, create_engine
from dav2_ros.engines.base import SelfCheckSettings
from dav2_ros.engines.self_check import SelfCheckFailed, calibration_frame
from dav2_ros.engines.supervisor import EngineSupervisor
from dav2_ros.model.checkpoints import default_checkpoint, load_model
from dav2_ros.model.transforms import model_input_size
from dav2_ros.reporting import Reporter
from dav2_ros.ros import diagnostics
from dav2_ros.ros.mailbox import LatestMailbox
from dav2_ros.ros.stats import NodeStats

PLUGINS_DIR = Path(__file__).resolve().parent / "plugins"
ONE_THREAD = {"threads": 1}


@pytest.fixture(scope="module")
def bundled():
    loaded = load_model(None)
    return loaded.model.eval(), loaded.meta.input_size


@pytest.fixture(scope="module")
def input_hw(bundled) -> tuple[int, int]:
    return model_input_size(120, 160, bundled[1])


@pytest.fixture(scope="module")
def cache_dir(bundled_engine_cache: Path) -> Path:
    return bundled_engine_cache  # test_engine_self_check exports the same graphs


@pytest.fixture
def faulty(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    monkeypatch.setenv("DAV2_FAULT_DIR", str(tmp_path))
    return tmp_path


def test_int8_engine_is_built_with_its_deviation(bundled, input_hw, cache_dir) -> None:
    options = {"quantize": "int8", **ONE_THREAD}
    config = EngineConfig(
        "onnxruntime",
        input_hw=input_hw,
        cache_dir=cache_dir,
        options=options,
        self_check=SelfCheckSettings(),
    )
    engine = create_engine(bundled[0], config)
    result = engine.self_check
    assert result is not None and result.passed
    assert 0 < result.deviation < 0.05  # quantisation costs something, within the limit
    fields = result.fields()
    assert float(fields["self_check_deviation"]) == pytest.approx(result.deviation, rel=1e-5)
    assert fields["self_check"] == "passed" and "int8" in result.engine
    # Unchecked, the same engine carries no verdict.
    plain = create_engine(
        bundled[0],
        EngineConfig("onnxruntime", input_hw=input_hw, cache_dir=cache_dir, options=options),
    )
    assert plain.self_check is None


def test_fp32_torch_is_the_reference_and_not_checked(bundled, input_hw) -> None:
    config = EngineConfig(input_hw=input_hw, options=ONE_THREAD, self_check=SelfCheckSettings())
    assert create_engine(bundled[0], config).self_check is None


def test_explicit_wrong_depth_engine_is_refused_unless_allowed(bundled, input_hw, faulty) -> None:
    (faulty / "wrong_depth").write_text("1.5")
    config = EngineConfig(
        "faulty_engine:factory",
        input_hw=input_hw,
        options=ONE_THREAD,
        self_check=SelfCheckSettings(),
    )
    with pytest.raises(SelfCheckFailed) as refused:
        create_engine(bundled[0], config)
    assert refused.value.result.deviation == pytest.approx(0.5, rel=1e-5)
    assert "self-check FAILED" in str(refused.value) and "50.00%" in str(refused.value)
    allowed = EngineConfig(
        "faulty_engine:factory",
        input_hw=input_hw,
        options=ONE_THREAD,
        self_check=SelfCheckSettings(allow_deviation=True),
    )
    kept = create_engine(bundled[0], allowed)
    assert not kept.self_check.passed and kept.self_check.deviation == pytest.approx(0.5, rel=1e-5)


def test_auto_skips_an_engine_that_fails_its_self_check_with_the_reason(
    bundled, input_hw, cache_dir
) -> None:
    # ONNX Runtime fp32 deviates ~1e-6 from torch: a limit of 1e-12 refuses it, for real.
    config = EngineConfig(
        "auto",
        input_hw=input_hw,
        cache_dir=cache_dir,
        options=ONE_THREAD,
        self_check=SelfCheckSettings(max_deviation=1e-12, allow_deviation=True),
    )
    engine = create_engine(bundled[0], config)
    assert engine.backend == "torch" and engine.self_check is None  # fp32 torch: reference
    reasons = dict(s.split(" ", 1) for s in engine.skipped_backends)
    assert set(reasons) == {"tensorrt", "openvino", "onnxruntime"}
    assert (
        "SelfCheckFailed" in reasons["onnxruntime"]
        and "self-check FAILED" in reasons["onnxruntime"]
    )
    assert "limit 0.00%" in reasons["onnxruntime"]  # the figure and the limit are said


def test_supervisor_refuses_once_and_keeps_the_figure(bundled, faulty) -> None:
    (faulty / "wrong_depth").write_text("1.5")
    said: list[tuple[str, str]] = []
    reporter = Reporter(
        lambda t: said.append(("info", t)),
        lambda t: said.append(("warn", t)),
        lambda t: said.append(("error", t)),
    )
    spec = EngineSpec("faulty_engine:factory", options=ONE_THREAD, self_check=SelfCheckSettings())
    supervisor = EngineSupervisor(
        DepthEstimator(bundled[0], spec, bundled[1]), reporter, threading.Event()
    )
    frame = calibration_frame(120, 160)
    for _ in range(3):
        assert supervisor.predict(frame, (120, 160)) is None
    builds = (faulty / "calls.log").read_text().count("build")
    assert builds == 1  # refused once, never rebuilt
    assert supervisor.refused and supervisor.identity is None
    assert supervisor.self_check_fields["self_check"] == "failed"
    assert float(supervisor.self_check_fields["self_check_deviation"]) == pytest.approx(0.5)
    problem = reporter.problem()
    assert problem.error and "self-check FAILED" in problem.text and "50.00%" in problem.text
    assert [level for level, _ in said] == ["error"]


def test_supervisor_says_an_auto_skip_for_wrong_depth_as_an_error(bundled, cache_dir) -> None:
    reporter = Reporter(lambda t: None, lambda t: None, lambda t: None)
    check = SelfCheckSettings(max_deviation=1e-12)  # refuses OpenVINO and ORT fp32, for real
    spec = EngineSpec("auto", options=ONE_THREAD, cache_dir=cache_dir, self_check=check)
    supervisor = EngineSupervisor(
        DepthEstimator(bundled[0], spec, bundled[1]), reporter, threading.Event()
    )
    assert supervisor.predict(calibration_frame(120, 160), (120, 160)) is not None
    assert supervisor.identity.backend == "torch"  # the next backend serves
    problem = reporter.problem()
    assert problem.error and "engine auto: skipped onnxruntime" in problem.text
    assert "self-check FAILED" in problem.text and "limit 0.00%" in problem.text
    refused = supervisor.self_check_fields["self_check_refused_backends"]
    assert refused.startswith("openvino (SelfCheckFailed")
    assert "; onnxruntime (SelfCheckFailed" in refused


def test_a_passing_engine_keeps_its_figure_for_diagnostics(bundled, faulty) -> None:
    reporter = Reporter(lambda t: None, lambda t: None, lambda t: None)
    spec = EngineSpec("faulty_engine:factory", options=ONE_THREAD, self_check=SelfCheckSettings())
    supervisor = EngineSupervisor(
        DepthEstimator(bundled[0], spec, bundled[1]), reporter, threading.Event()
    )
    assert supervisor.predict(calibration_frame(120, 160), (120, 160)) is not None
    values = diagnostics.node_status("dav2_depth", diagnostics.snapshot(
        NodeStats(), LatestMailbox(), supervisor, reporter.problem(), "bundled"
    )).values  # fmt: skip
    fields = {kv.key: kv.value for kv in values}
    assert fields["self_check"] == "passed" and fields["engine_backend"] == "faulty-torch"
    assert 0 <= float(fields["self_check_deviation"]) < 1e-5  # the same fp32 weights
    assert fields["self_check_max_deviation"] == "0.02"


def test_bench_json_keeps_the_self_check_figure(tmp_path: Path, cache_dir) -> None:
    out = tmp_path / "int8.json"
    code = dav2_main([
        "bench", "--checkpoint", str(default_checkpoint()),
        "--backend", "onnxruntime", "--quantize", "int8", "--threads", "1",
        "--iterations", "1", "--warmup", "0", "--image-size", "160x120",
        "--cache-dir", str(cache_dir), "--json", str(out),
    ])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["self_check"] == "passed"
    assert 0 < float(result["self_check_deviation"]) < 0.05
    assert result["self_check_reference"] == "torch cpu fp32"
    assert np.isfinite(float(result["self_check_abs_rel"]))
