"""The one reporter (throttle per kind, once until resolved, resolution by family) and the
engine supervisor that reports through it (back-off, drop and rebuild, recovery), with a
scripted engine: no model, no ROS."""

from __future__ import annotations

import threading

import numpy as np

from dav2_ros.engines import DepthEstimator, Engine, EngineSpec, EngineSupervisor
from dav2_ros.engines.base import register_backend
from dav2_ros.reporting import Reporter


class Log:
    def __init__(self) -> None:
        self.now_s = 0.0
        self.lines: list[tuple[str, str]] = []
        sinks = [lambda text, level=level: self.lines.append((level, text))
                 for level in ("info", "warn", "error")]  # fmt: skip
        self.reporter = Reporter(*sinks, throttle_s=5.0, clock=lambda: self.now_s)

    def texts(self, level: str) -> list[str]:
        return [text for lv, text in self.lines if lv == level]


def test_each_kind_is_throttled_on_its_own():
    log = Log()
    for _ in range(3):
        log.reporter.report("frame:bad_image:encoding", "bad encoding", error=True)
        log.reporter.report("frame:bad_image:size", "bad size", error=True)
    assert log.texts("error") == ["bad encoding", "bad size"]
    log.now_s = 5.1
    log.reporter.report("frame:bad_image:encoding", "bad encoding again", error=True)
    assert log.texts("error")[-1] == "bad encoding again"


def test_once_problems_are_said_again_only_after_they_were_resolved():
    log = Log()
    for _ in range(2):
        log.now_s += 10  # past the throttle: only "once" keeps it quiet
        log.reporter.report("camera_info:missing", "no camera_info", once=True)
    assert log.texts("warn") == ["no camera_info"]
    log.reporter.resolve("camera_info")
    log.reporter.report("camera_info:missing", "no camera_info", once=True)
    assert log.texts("warn") == ["no camera_info", "no camera_info"]


def test_status_shows_the_latest_unresolved_problem_and_resolving_one_family_keeps_others():
    log = Log()
    reporter = log.reporter
    assert reporter.problem() is None
    reporter.report("engine", "engine failed", error=True)
    reporter.report("camera_info:uncalibrated", "K is zero", once=True)
    assert (reporter.problem().text, reporter.problem().error) == ("K is zero", False)
    reporter.resolve("camera_info")  # a usable camera_info does not clear the engine's problem
    assert reporter.problem().text == "engine failed"
    reporter.report("scale:rejected", "fit rejected", status=False)  # logged, not in status
    assert reporter.problem().text == "engine failed" and "fit rejected" in log.texts("warn")
    reporter.resolve("engine")
    assert reporter.problem() is None


class ScriptedEngine(Engine):
    """Fails while ``FAULTS["infer"]`` is set; counts builds."""

    backend = "scripted"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if FAULTS["infer"]:
            raise RuntimeError("injected")
        return np.ones((1, *self.input_hw), np.float32)


FAULTS = {"infer": False, "builds": 0}


def scripted_factory(model: object, config: object) -> Engine:
    FAULTS["builds"] += 1
    return ScriptedEngine(config)


register_backend("scripted-test", scripted_factory)


def test_supervisor_backs_off_doubling_drops_the_engine_and_says_when_it_recovered():
    log = Log()
    waits: list[float] = []
    FAULTS.update(infer=False, builds=0)

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            return False

    model = type("Model", (), {"depth_type": "metric"})()
    estimator = DepthEstimator(model, EngineSpec("scripted-test"), input_size=14)
    supervisor = EngineSupervisor(estimator, log.reporter, Stop())
    image = np.zeros((10, 20, 3), np.uint8)
    assert supervisor.state.startswith("not built") and supervisor.identity is None

    assert supervisor.predict(image, (0, 0)).values.shape == (14, 28)
    assert supervisor.identity.backend == "scripted" and supervisor.identity.input_hw == (14, 28)
    assert log.texts("info") == [f"engine for 20x10 images: {supervisor.state}"]

    FAULTS["infer"] = True
    for _ in range(3):
        assert supervisor.predict(image, (0, 0)) is None
    assert waits == [0.5, 1.0, 2.0] and supervisor.failures == 3
    assert supervisor.identity is None and supervisor.state.startswith("failed, retrying in 2.0 s")
    assert log.reporter.problem().text.startswith("engine failed (3 in a row): RuntimeError")
    assert FAULTS["builds"] == 3  # the first build, then a rebuild at each retry

    FAULTS["infer"] = False
    assert supervisor.predict(image, (0, 0)) is not None
    assert log.texts("info")[-1].startswith("engine recovered after 3 failures: scripted")
    assert log.reporter.problem() is None and supervisor.failures_in_row == 0
    assert supervisor.predict(np.zeros((20, 20, 3), np.uint8), (0, 0)) is not None
    assert "camera resolution changed to 20x20: rebuilding" in log.texts("warn")
