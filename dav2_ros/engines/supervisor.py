"""A ``DepthEstimator`` for a process that must keep serving: engine builds, failures,
back-off and recovery, said through the owner's ``Reporter``.

A failed build or inference loses that frame, drops the engine (it may be left broken)
and waits, doubling per failure in a row: a broken device is not hammered, and a
transient fault heals by itself at the next frame's rebuild. An engine refused by its
self-check (wrong depth) is not retried: the same build would return the same wrong
depth, so the error and its figure stay on /diagnostics until the node is restarted.
"""

from __future__ import annotations

import threading

import numpy as np

from dav2_ros.engines.base import EngineIdentity
from dav2_ros.engines.pipeline import DepthEstimator, Prediction
from dav2_ros.engines.self_check import SelfCheckFailed
from dav2_ros.model.focal import check_focal_px
from dav2_ros.reporting import Reporter

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
KIND = "engine"  # the reporter kind of engine failures
NOT_BUILT = "not built yet (waiting for the first frame)"
SELF_CHECK_KIND = f"{KIND}:self_check"


class EngineSupervisor:
    def __init__(
        self,
        estimator: DepthEstimator,
        reporter: Reporter,
        stop: threading.Event,
        retry_first_s: float = RETRY_FIRST_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.estimator = estimator
        self.reporter = reporter
        self._stop = stop
        self.retry_first_s, self.retry_max_s = retry_first_s, retry_max_s
        self.failures = 0  # in total; ``failures_in_row`` drives the back-off
        self.failures_in_row = 0
        self.state = NOT_BUILT  # for /diagnostics: the engine, or why there is none
        self.identity: EngineIdentity | None = None
        self.self_check_fields: dict[str, str] = {}  # the latest self-check's figure
        self.refused = False  # an engine failed its self-check: no more builds

    def predict(
        self,
        image_rgb: np.ndarray,
        output_hw: tuple[int, int],
        confidence: str | None = None,
        focal_px: tuple[float, float] | None = None,
    ) -> Prediction | None:
        """The prediction (``confidence`` and ``focal_px`` as ``DepthEstimator.predict``'s),
        or None: the engine failed (reported, dropped, backed off) or was refused by its
        self-check. A focal length that is not > 0 raises ``ValueError``: the caller's input,
        not an engine failure."""
        if self.refused:
            return None
        if focal_px is not None:
            check_focal_px(*focal_px)
        height, width = image_rgb.shape[:2]
        building = not self.estimator.has_engine_for(height, width)
        if building and self.estimator.engine is not None:
            self.reporter.warn(f"camera resolution changed to {width}x{height}: rebuilding")
        try:
            prediction = self.estimator.predict(image_rgb, output_hw, confidence, focal_px)
        except SelfCheckFailed as exc:
            self._refused(exc)
            return None
        except Exception as exc:  # any failure of the engine must not end the process
            self._failed(exc)
            return None
        if building:
            self._built(width, height)
        if self.failures_in_row:
            self.reporter.info(
                f"engine recovered after {self.failures_in_row} failures: {self.state}"
            )
            self.failures_in_row = 0
            self.reporter.resolve(KIND)
        return prediction

    def _built(self, width: int, height: int) -> None:
        engine = self.estimator.engine
        self.identity, self.state = engine.identity, engine.description
        self.reporter.info(f"engine for {width}x{height} images: {engine.description}")
        wrong_depth = []  # auto's candidates refused by their self-check: an error each
        for skipped in engine.skipped_backends:  # backend "auto" says why
            if SelfCheckFailed.__name__ in skipped:
                wrong_depth.append(skipped)
                self.reporter.report(SELF_CHECK_KIND, f"engine auto: skipped {skipped}", error=True)
            else:
                self.reporter.warn(f"engine auto: skipped {skipped}")
        check = engine.self_check
        self.self_check_fields = dict(check.fields()) if check is not None else {}
        if engine.auto_choice:  # what auto chose, why, and what it passed over
            self.self_check_fields["engine_choice"] = engine.auto_choice
            self.reporter.info(f"engine auto: {engine.auto_choice}")
        if wrong_depth:
            self.self_check_fields["self_check_refused_backends"] = "; ".join(wrong_depth)
        if check is None and engine.self_check_skipped:
            self.reporter.warn(engine.self_check_skipped)
        elif check is not None and check.passed:
            self.reporter.info(check.message)
        elif check is not None:  # kept: engine.allow_deviation
            self.reporter.report(
                SELF_CHECK_KIND, f"{check.message} (kept: engine.allow_deviation)", error=True
            )

    def _refused(self, exc: SelfCheckFailed) -> None:
        self.refused = True
        self.self_check_fields = dict(exc.result.fields())
        self.identity = None
        self.state = f"refused by its self-check: {exc.result.engine}"
        self.reporter.report(
            SELF_CHECK_KIND, f"{exc} (not retried; fix the engine and restart)", error=True
        )

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.failures_in_row += 1
        delay_s = min(self.retry_max_s, self.retry_first_s * 2 ** (self.failures_in_row - 1))
        cause = f"{type(exc).__name__}: {exc}"
        self.reporter.report(
            KIND,
            f"engine failed ({self.failures_in_row} in a row): {cause}; "
            f"rebuilding it and retrying in {delay_s:.1f} s",
            error=True,
        )
        try:
            self.estimator.close()
        except Exception as close_exc:  # a broken engine may fail to close, too
            self.reporter.warn(f"closing the failed engine: {close_exc}")
        self.identity, self.state = None, f"failed, retrying in {delay_s:.1f} s: {cause}"
        self._stop.wait(delay_s)  # frames arriving meanwhile replace each other (drops)
