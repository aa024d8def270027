"""Temporal smoothing of (a, b): an exponential moving average with a time constant.

Averaging a and b separately is sound here because the depth they produce is
linear in them: the smoothed inverse depth ``ā·x + b̄`` is the same average of
the per-fit inverse depths ``aᵢ·x + bᵢ``. The weight of a new fit depends on the
time since the previous one (``1 − exp(−dt/τ)``), so irregular sparse rates
(a LiDAR at 10 Hz, an RGB-D camera at 30 Hz) smooth over the same seconds.
"""

from __future__ import annotations

import math


class EmaSmoother:
    """EMA over (a, b) with time constant ``tau_s`` (0 = no smoothing)."""

    def __init__(self, tau_s: float) -> None:
        self.retune(tau_s)
        self._value: tuple[float, float] | None = None
        self._stamp_s = 0.0

    def retune(self, tau_s: float) -> None:
        """Another time constant from the next fit on (the value so far is kept)."""
        if tau_s < 0 or not math.isfinite(tau_s):
            raise ValueError(f"smoothing time constant must be a finite value >= 0 s, got {tau_s}")
        self.tau_s = tau_s

    @property
    def value(self) -> tuple[float, float] | None:
        return self._value

    def reset(self) -> None:
        self._value = None

    def update(self, a: float, b: float, stamp_s: float) -> tuple[float, float]:
        """Blend in one accepted fit taken at ``stamp_s``; returns the smoothed (a, b)."""
        if self._value is None or self.tau_s == 0:
            self._value = (a, b)
        else:
            # Out-of-order or repeated stamps get no weight rather than a negative one.
            dt_s = max(stamp_s - self._stamp_s, 0.0)
            weight = 1.0 - math.exp(-dt_s / self.tau_s)
            a_old, b_old = self._value
            self._value = (a_old + weight * (a - a_old), b_old + weight * (b - b_old))
        self._stamp_s = max(stamp_s, self._stamp_s)
        return self._value
