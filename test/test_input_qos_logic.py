"""The node's input QoS choice, its loss meter and its answers to parameter changes, as
plain logic (the same code runs in the node over DDS: test_ros_input_qos.py,
test_ros_runtime_params.py)."""

from __future__ import annotations

import pytest

from dav2_ros.ros.input_loss import MIN_EXPECTED, StampGapMeter, advice
from dav2_ros.ros.parameters import PARAMETERS
from dav2_ros.ros.qos import InputPort, matched_reliability
from dav2_ros.ros.runtime_params import RUNTIME, answer_change

DEFAULTS = {spec.name: spec.default for spec in PARAMETERS}


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ([], "best_effort"),  # none yet: a best-effort reader hears whoever comes
        (["reliable"], "reliable"),
        (["reliable", "reliable"], "reliable"),
        (["best_effort"], "best_effort"),
        (["reliable", "best_effort"], "best_effort"),  # a reliable reader misses the second
    ],
)
def test_auto_is_reliable_only_when_every_publisher_is(offered: list[str], expected: str) -> None:
    assert matched_reliability(offered) == expected


def test_a_reliable_port_is_incompatible_with_a_best_effort_camera() -> None:
    port = InputPort("image", object, print, "reliable", "reliable", ["best_effort"])
    assert not port.compatible()
    assert "qos.input_reliability auto or best_effort" in port.incompatible_text()
    port.reliability = "best_effort"
    assert port.compatible()


def feed(meter: StampGapMeter, stamps_s: list[float]) -> None:
    for i, stamp in enumerate(stamps_s):
        meter.add(stamp, now_s=100.0 + i * 0.01)


def test_meter_counts_the_frames_missing_between_stamps_at_the_cameras_rate() -> None:
    meter = StampGapMeter()
    every = [i / 30 for i in range(90)]
    feed(meter, [t for i, t in enumerate(every) if i % 3 != 2])  # every third frame lost
    loss = meter.loss(now_s=101.0)
    assert loss.camera_rate_hz == pytest.approx(30.0)
    # 30 lost; the first is before the rate is known, the last has no arrival after it
    assert (loss.arrived, loss.lost) == (60, 28)
    assert loss.significant


def test_meter_finds_the_rate_where_most_frames_are_lost() -> None:
    """94 % lost (a 1280x720 reliable camera read best effort over UDP): most intervals
    span many periods; the shortest ones still say the camera's rate."""
    meter = StampGapMeter()
    kept = [i for i in range(1000) if i % 17 in (0, 1)]  # pairs of neighbours, then a gap
    feed(meter, [i / 30 for i in kept])
    loss = meter.loss(now_s=110.0)
    assert loss.camera_rate_hz == pytest.approx(30.0)
    assert loss.share == pytest.approx(15 / 17, abs=0.01)


def test_meter_is_quiet_for_a_steady_camera_a_pause_and_a_restart() -> None:
    meter = StampGapMeter()
    stamps = [i / 15 for i in range(40)] + [60 + i / 15 for i in range(40)]  # 57 s pause
    stamps += [i / 15 for i in range(40)]  # restarted: stamps went back
    feed(meter, stamps)
    loss = meter.loss(now_s=102.0)
    assert loss.lost == 0 and not loss.significant
    assert loss.arrived == len(stamps)


def test_meter_needs_enough_frames_before_it_speaks() -> None:
    meter = StampGapMeter()
    feed(meter, [0.0, 0.1, 0.2, 0.4])  # one frame lost of five
    assert meter.loss(now_s=100.1).lost == 1
    assert MIN_EXPECTED > 4 and not meter.loss(now_s=100.1).significant


def test_meter_forgets_arrivals_older_than_its_window() -> None:
    meter = StampGapMeter(window_s=10.0)
    feed(meter, [i / 30 for i in range(60) if i % 3 != 2])
    assert meter.loss(now_s=100.5).lost > 0
    assert meter.loss(now_s=200.0).arrived == 0


def test_advice_names_the_profile_or_reliable_as_the_fix() -> None:
    meter = StampGapMeter()
    feed(meter, [i / 30 for i in range(120) if i % 4 == 1])  # a regular loss looks like
    assert meter.loss(now_s=101.0).lost == 0  # a slower camera: nothing to tell them apart
    meter = StampGapMeter()
    feed(meter, [i / 30 for i in range(121) if i % 3 != 2])
    loss = meter.loss(now_s=101.0)
    port = InputPort("image", object, print, "auto", "best_effort", ["best_effort"])
    text = advice(loss, port)
    assert "FASTRTPS_DEFAULT_PROFILES_FILE=" in text and "fastdds_large_data.xml" in text
    assert "39 of 120 camera frames (32%)" in text and "30.0 Hz" in text
    port = InputPort("image", object, print, "best_effort", "best_effort", ["reliable"])
    assert "set qos.input_reliability auto" in advice(loss, port)


def test_runtime_change_gives_the_settings_of_the_next_frame() -> None:
    answer = answer_change({"points.stride": 4}, DEFAULTS, configured=True, managed=False)
    assert answer.accepted and answer.settings is not None
    assert answer.settings.points_stride == 4


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"temporal.mode": "smooth"}, r"'temporal.mode': expected one of none, align"),
        ({"points.stride": "2"}, r"'points.stride': expected a int"),
        ({"scan.range_min": 20.0}, r"scan\.\*"),  # above range_max: a rule across two
    ],
)
def test_runtime_change_is_checked_as_at_start(changes: dict, reason: str) -> None:
    answer = answer_change(changes, DEFAULTS, configured=True, managed=False)
    assert not answer.accepted
    assert pytest.importorskip("re").search(reason, answer.reason), answer.reason


def test_read_only_parameters_say_how_to_apply_them() -> None:
    unmanaged = answer_change({"engine.backend": "torch"}, DEFAULTS, configured=True, managed=False)
    assert "restart the node" in unmanaged.reason and "'engine.backend'" in unmanaged.reason
    managed = answer_change({"model.checkpoint": "/m"}, DEFAULTS, configured=True, managed=True)
    assert "cleanup, set it, then configure" in managed.reason
    unconfigured = answer_change({"engine.backend": "torch"}, DEFAULTS, False, managed=True)
    assert unconfigured.accepted and unconfigured.settings is None


def test_runtime_parameters_are_the_output_ones() -> None:
    assert {"points.stride", "scan.range_max", "temporal.strength", "scale.min_inliers"} <= RUNTIME
    fixed = {"model.checkpoint", "engine.backend", "qos.input_reliability", "scale.mode"}
    assert not fixed & RUNTIME
