"""Which scale to use right now: the last good fit, smoothed, until it times out.

States, in the order a run normally visits them:

* ``waiting``  - no fit accepted yet; metric depth cannot be published.
* ``tracking`` - the latest fit was accepted and the last good one is younger
  than ``timeout_s``.
* ``holding``  - no new fit (no sparse data, or too little to fit), but the last
  good fit is still younger than ``timeout_s``; it keeps being used.
* ``rejected`` - the newest sparse data *contradicts* the prediction (``ScaleFit.
  disagrees``): the model is wrong on this view, and an older fit would only put
  wrong metres on it, so metric depth is withheld until a fit is accepted again.
  Reported whatever the age of the last good fit: it names the cause.
* ``stale``    - the last good fit is older than ``timeout_s``: stop publishing
  metric depth until a new fit is accepted (it then starts afresh, unsmoothed).

Times are plain seconds from one clock chosen by the caller; the tracker never
reads a clock itself, so it is testable and works with ROS sim time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dav2_ros.scale.fit import ScaleFit
from dav2_ros.scale.smoothing import EmaSmoother

WAITING, TRACKING, HOLDING, REJECTED, STALE = "waiting", "tracking", "holding", "rejected", "stale"


@dataclass(frozen=True)
class ScaleEstimate:
    """The (a, b) to apply now, with its state and age."""

    a: float
    b: float
    state: str
    age_s: float  # since the last accepted fit

    @property
    def usable(self) -> bool:
        return self.state in (TRACKING, HOLDING)


class ScaleTracker:
    """Accepts per-frame fits, smooths the good ones and ages them out."""

    def __init__(self, timeout_s: float = 2.0, smoothing_tau_s: float = 0.0) -> None:
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise ValueError(f"scale timeout must be a finite value > 0 s, got {timeout_s}")
        self.timeout_s = timeout_s
        self._smoother = EmaSmoother(smoothing_tau_s)
        self._last_good_s: float | None = None
        self.last_fit: ScaleFit | None = None
        self.accepted = 0
        self.rejected = 0

    def retune(self, timeout_s: float, smoothing_tau_s: float) -> None:
        """Another timeout and smoothing from now on; the value so far is kept."""
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise ValueError(f"scale timeout must be a finite value > 0 s, got {timeout_s}")
        self.timeout_s = timeout_s
        self._smoother.retune(smoothing_tau_s)

    def update(self, fit: ScaleFit, stamp_s: float) -> None:
        """Record one fit attempt made at ``stamp_s``."""
        self.last_fit = fit
        if not fit.ok:
            self.rejected += 1
            return
        self.accepted += 1
        if self._last_good_s is not None and stamp_s - self._last_good_s > self.timeout_s:
            self._smoother.reset()  # the old value is stale: do not drag the new one back to it
        self._smoother.update(fit.a, fit.b, stamp_s)
        self._last_good_s = (
            stamp_s if self._last_good_s is None else max(stamp_s, self._last_good_s)
        )

    def estimate(self, now_s: float) -> ScaleEstimate:
        """The scale to apply at ``now_s`` (check ``usable`` before publishing metres)."""
        value = self._smoother.value
        if value is None or self._last_good_s is None:
            return ScaleEstimate(math.nan, math.nan, WAITING, math.inf)
        age_s = max(now_s - self._last_good_s, 0.0)
        if self.last_fit is not None and self.last_fit.disagrees:
            state = REJECTED  # says why better than "stale", however old the last good fit
        elif age_s > self.timeout_s:
            state = STALE
        elif self.last_fit is not None and self.last_fit.ok:
            state = TRACKING
        else:
            state = HOLDING
        return ScaleEstimate(value[0], value[1], state, age_s)
