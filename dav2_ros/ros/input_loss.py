"""Camera frames lost before they reach the node, seen from the gaps between image stamps.

A camera publishes at a steady rate, so a gap of k periods between two consecutive
stamps means k - 1 frames never arrived (lost in transport: a best-effort image that
lost one UDP fragment). Frames the node itself drops (mailbox: a newer one replaced it)
are not counted here: they did arrive. No ROS.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from dav2_ros.ros.transport import PROFILE_FILE, bundled_profile

PERIOD_HISTORY = 121  # recent stamps the camera's period is read from
STEP_SPREAD = 1.6  # intervals up to this many times the shortest are single steps
PAUSE_PERIODS = 20  # a longer gap is a paused or restarted camera, not loss
WINDOW_S = 10.0  # loss is reported over this many seconds of arrivals
MIN_EXPECTED = 20  # frames expected in the window before a share is meaningful
WARN_SHARE = 0.05  # more lost than this: a problem on /diagnostics


@dataclass(frozen=True)
class InputLoss:
    arrived: int  # frames that reached the node in the window
    lost: int  # frames missing between them
    camera_rate_hz: float  # from the median stamp interval; 0 while unknown

    @property
    def share(self) -> float:
        expected = self.arrived + self.lost
        return self.lost / expected if expected else 0.0

    @property
    def significant(self) -> bool:
        return self.arrived + self.lost >= MIN_EXPECTED and self.share > WARN_SHARE


class StampGapMeter:
    """Fed every arriving image's stamp (any thread); ``loss`` over the last WINDOW_S."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque(maxlen=PERIOD_HISTORY)
        self._arrivals: deque[tuple[float, int]] = deque()  # (arrival s, frames lost before it)

    def add(self, stamp_s: float, now_s: float) -> None:
        with self._lock:
            lost = 0
            if self._stamps and stamp_s <= self._stamps[-1]:
                self._stamps.clear()  # stamps went back: a restarted camera or a looped bag
            elif self._stamps:
                period_s = self._period_s()
                gap_s = stamp_s - self._stamps[-1]
                if period_s > 0 and gap_s < PAUSE_PERIODS * period_s:
                    lost = max(0, round(gap_s / period_s) - 1)
            self._stamps.append(stamp_s)
            self._arrivals.append((now_s, lost))
            self._forget(now_s)

    def loss(self, now_s: float) -> InputLoss:
        with self._lock:
            self._forget(now_s)
            period_s = self._period_s()
            return InputLoss(
                arrived=len(self._arrivals),
                lost=sum(lost for _, lost in self._arrivals),
                camera_rate_hz=1.0 / period_s if period_s > 0 else 0.0,
            )

    def _period_s(self) -> float:
        """The camera's period: the median of the recent intervals that are single steps
        (near the shortest one). Not the median of all: where most frames are lost, most
        intervals span several periods. 0 while unknown."""
        intervals = np.diff(np.fromiter(self._stamps, float))
        if len(intervals) < 2:
            return 0.0
        steps = intervals[intervals <= STEP_SPREAD * intervals.min()]
        return float(np.median(steps))

    def _forget(self, now_s: float) -> None:
        while self._arrivals and self._arrivals[0][0] < now_s - self.window_s:
            self._arrivals.popleft()


def advice(loss: InputLoss, image_port: Any) -> str:
    """What a user reads on /diagnostics when frames go missing, and how to fix it."""
    expected = loss.arrived + loss.lost
    fix = (
        "give the camera the node's shared-memory profile (start it with "
        f"FASTRTPS_DEFAULT_PROFILES_FILE={bundled_profile() or PROFILE_FILE}) or make it "
        "publish reliable"
    )
    offered = image_port.offered
    if (
        image_port.reliability == "best_effort"
        and offered
        and all(o == "reliable" for o in offered)
    ):
        fix = "the camera is reliable: set qos.input_reliability auto (or reliable)"
    return (
        f"{image_port.topic}: {loss.lost} of {expected} camera frames ({loss.share:.0%}) never "
        f"reached the node in the last {WINDOW_S:g} s (gaps between image stamps at the "
        f"camera's {loss.camera_rate_hz:.1f} Hz): large best-effort images are lost in "
        f"transport when one fragment is. Fix: {fix}"
    )
