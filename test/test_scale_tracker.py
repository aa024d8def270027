"""Which scale is used over time: smoothing, holding, withholding on disagreement, stale."""

from __future__ import annotations

import math

import pytest

from dav2_ros.scale import (
    HOLDING,
    REJECTED,
    STALE,
    TRACKING,
    WAITING,
    ScaleFit,
    ScaleTracker,
)
from dav2_ros.scale.smoothing import EmaSmoother


def _fit(a: float, b: float = 0.0, ok: bool = True, disagrees: bool = False) -> ScaleFit:
    reason = "ok" if ok else ("too few inliers" if disagrees else "too few valid samples")
    return ScaleFit(a, b, ok, reason, 100, 90 if ok else 3, 0.01, disagrees)


def test_waiting_until_the_first_good_fit():
    tracker = ScaleTracker(timeout_s=1.0)
    assert tracker.estimate(0.0).state == WAITING
    tracker.update(_fit(0.5, ok=False), 0.0)
    assert tracker.estimate(0.1).state == WAITING and not tracker.estimate(0.1).usable
    tracker.update(_fit(0.5, 0.1), 0.2)
    estimate = tracker.estimate(0.3)
    assert (estimate.a, estimate.b, estimate.state) == (0.5, 0.1, TRACKING)
    assert estimate.age_s == pytest.approx(0.1) and estimate.usable


def test_rejected_fits_hold_the_last_good_one_until_timeout_then_stale():
    tracker = ScaleTracker(timeout_s=2.0)
    tracker.update(_fit(0.5), 10.0)
    tracker.update(_fit(9.0, ok=False), 11.0)
    held = tracker.estimate(11.5)
    assert held.state == HOLDING and held.a == 0.5 and held.usable
    stale = tracker.estimate(12.01)
    assert stale.state == STALE and not stale.usable
    assert tracker.accepted == 1 and tracker.rejected == 1


def test_a_contradicting_fit_withholds_metric_depth_until_a_fit_is_accepted():
    tracker = ScaleTracker(timeout_s=2.0)
    tracker.update(_fit(0.5), 10.0)
    tracker.update(_fit(9.0, ok=False, disagrees=True), 10.1)
    withheld = tracker.estimate(10.2)
    assert withheld.state == REJECTED and not withheld.usable
    assert tracker.estimate(13.0).state == REJECTED  # the cause, not just "stale"
    tracker.update(_fit(0.5, ok=False), 10.3)  # too little data: no verdict, the old fit holds
    assert tracker.estimate(10.4).state == HOLDING
    tracker.update(_fit(9.0, ok=False, disagrees=True), 10.5)
    tracker.update(_fit(0.7), 10.6)
    resumed = tracker.estimate(10.6)
    assert resumed.state == TRACKING and resumed.a == 0.7 and resumed.usable


def test_silence_times_out_to_stale_and_a_new_fit_restarts_unsmoothed():
    tracker = ScaleTracker(timeout_s=1.0, smoothing_tau_s=5.0)
    tracker.update(_fit(0.5), 0.0)
    assert tracker.estimate(1.0).state == TRACKING  # age == timeout is still fine
    assert tracker.estimate(1.5).state == STALE
    tracker.update(_fit(2.0), 3.0)
    estimate = tracker.estimate(3.0)
    assert estimate.state == TRACKING and estimate.a == 2.0  # not dragged back to 0.5


def test_smoothing_weights_by_elapsed_time():
    smoother = EmaSmoother(tau_s=1.0)
    assert smoother.update(1.0, 0.0, 0.0) == (1.0, 0.0)
    a, b = smoother.update(2.0, 1.0, 1.0)
    weight = 1.0 - math.exp(-1.0)
    assert a == pytest.approx(1.0 + weight) and b == pytest.approx(weight)
    # A fit with an old or repeated stamp gets no weight.
    assert smoother.update(50.0, 50.0, 0.5) == pytest.approx((a, b))


def test_zero_time_constant_means_latest_fit():
    tracker = ScaleTracker(timeout_s=1.0, smoothing_tau_s=0.0)
    tracker.update(_fit(0.5), 0.0)
    tracker.update(_fit(0.7), 0.1)
    assert tracker.estimate(0.1).a == 0.7


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_bad_timeout_is_refused(bad):
    with pytest.raises(ValueError, match="scale timeout"):
        ScaleTracker(timeout_s=bad)
