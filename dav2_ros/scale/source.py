"""Metres for a relative model's disparity, frame by frame: the ``scale.*`` feature's logic.

Modes (``scale.mode``): ``fixed`` applies metric inverse depth = a·disparity + b from a
calibration; ``sparse`` fits a and b on every frame against the sparse metric depth
paired with it by stamp (an image registered to the camera, or a point cloud in any
frame) and falls back as ``tracker`` describes. A metric model comes here only when
``scale.mode`` is set: its inverse depth (1/m) is then the disparity that is re-fitted.

Plain logic, no ROS: the node hands in sparse depth (decoded on demand), the
prediction, the latest camera_info and the time; it gets back the depth in metres (or
None: do not publish metres) with the scale to publish, and a status for /diagnostics.
Problems are said through the node's ``Reporter``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dav2_ros.geometry import CameraIntrinsics, IntrinsicsError
from dav2_ros.reporting import Reporter
from dav2_ros.scale.fit import apply_scale, fit_scale_shift
from dav2_ros.scale.settings import ScaleSettings
from dav2_ros.scale.sparse import samples_from_depth_image, samples_from_points
from dav2_ros.scale.tracker import (
    HOLDING,
    REJECTED,
    STALE,
    TRACKING,
    WAITING,
    ScaleTracker,
)

FIXED = "fixed"
STATE_CODES = {WAITING: 0.0, TRACKING: 1.0, HOLDING: 2.0, STALE: 3.0, FIXED: 4.0, REJECTED: 5.0}
SCALE_FIELDS = ("a", "b", "state", "num_inliers", "num_samples", "residual", "age_s")
OK, WARN, ERROR = 0, 1, 2  # status levels, as diagnostic_msgs/DiagnosticStatus numbers them
SPARSE_HISTORY = 32  # messages kept for pairing by stamp (1 s at 30 Hz, 6 s at 5 Hz)
# (camera frame, cloud frame, cloud stamp s) → 4×4 T_camera_from_cloud; raises if unknown.
TransformLookup = Callable[[str, str, float], np.ndarray]


@dataclass(frozen=True)
class SparseDepth:
    """One sparse_depth message. ``decode`` gives a depth image in metres (H×W, NaN
    invalid) or an N×3 point cloud in ``frame_id``; it runs only if the message pairs
    with a frame (most never do: inference lags the camera), so the node can keep
    messages rather than decoded arrays."""

    stamp_s: float
    frame_id: str
    decode: Callable[[], np.ndarray]


@dataclass(frozen=True)
class ScaleReading:
    """The scale used for one frame, as ``depth/scale`` publishes it (SCALE_FIELDS)."""

    a: float
    b: float
    state: str
    num_inliers: float
    num_samples: float
    residual: float
    age_s: float

    def values(self) -> list[float]:
        """In ``SCALE_FIELDS`` order, the state as its code."""
        state = STATE_CODES[self.state]
        fields = (self.a, self.b, state, self.num_inliers, self.num_samples, self.residual)
        return [float(v) for v in (*fields, self.age_s)]


@dataclass(frozen=True)
class ScaledDepth:
    depth_m: np.ndarray | None  # None: this frame must not be published in metres
    reading: ScaleReading


@dataclass(frozen=True)
class ScaleStatus:
    level: int  # OK, WARN or ERROR
    message: str
    values: dict[str, str]


class ScaleSource:
    """Turns disparity into metres, or says why it cannot. ``add_sparse`` may be called
    from another thread than ``to_metres`` and ``status``."""

    def __init__(
        self,
        settings: ScaleSettings,
        reporter: Reporter,
        lookup_transform: TransformLookup | None = None,
        model_depth_type: str = "relative",
    ) -> None:
        if settings.mode not in (FIXED, "sparse"):
            raise ValueError(f"ScaleSource needs scale.mode fixed or sparse, got {settings.mode!r}")
        self.settings = settings
        self.reporter = reporter
        self.lookup_transform = lookup_transform
        self.model_depth_type = model_depth_type  # metric: its inverse depth is the disparity
        self.tracker = ScaleTracker(settings.timeout_s, settings.smoothing_tau_s)
        self._lock = threading.Lock()
        # Recent sparse_depth messages: inference lags the camera, so the one that pairs
        # with the frame being processed is often not the newest.
        self._sparse: deque[SparseDepth] = deque(maxlen=SPARSE_HISTORY)
        self.sparse_received = 0
        self._nearest_offset_s = math.nan  # sparse minus image stamp, of the last pairing

    def retune(self, settings: ScaleSettings) -> None:
        """New thresholds, a, b or extrinsic for the next frame (same mode and sparse
        type); the fit so far and the sparse history are kept."""
        if (settings.mode, settings.sparse_type) != (self.settings.mode, self.settings.sparse_type):
            raise ValueError("scale.mode and scale.sparse_type need a new subscription")
        self.tracker.retune(settings.timeout_s, settings.smoothing_tau_s)
        self.settings = settings

    def summary(self) -> str:
        """One line for the start-up log."""
        s = self.settings
        if s.mode == FIXED:
            return f"metric scale: fixed a={s.a:g}, b={s.b:g}"
        if s.sparse_type == "image":
            kind = "Image"
        else:
            source = "TF2" if self.lookup_transform is not None else "scale.extrinsic.*"
            kind = f"PointCloud2, cloud-to-camera transform from {source}"
        return (
            f"metric scale: sparse fit against 'sparse_depth' ({kind}), timeout {s.timeout_s:g} s"
        )

    def add_sparse(self, sparse: SparseDepth) -> None:
        with self._lock:
            self._sparse.append(sparse)
            self.sparse_received += 1

    def to_metres(
        self, disparity: np.ndarray, camera_info: Any, stamp_s: float, frame_id: str, now_s: float
    ) -> ScaledDepth:
        """Depth in metres for this frame's disparity (None when it must not be published).

        ``camera_info``: the latest one (``k``, ``width``, ``height``) or None; only used to
        project point clouds. ``stamp_s``, ``frame_id``: the image's; ``now_s``: the clock.
        """
        s = self.settings
        if s.mode == FIXED:
            reading = ScaleReading(s.a, s.b, FIXED, math.nan, math.nan, math.nan, 0.0)
            return ScaledDepth(apply_scale(disparity, s.a, s.b), reading)
        self._fit(disparity, camera_info, stamp_s, frame_id, now_s)
        with self._lock:
            estimate = self.tracker.estimate(now_s)
            fit = self.tracker.last_fit
        reading = ScaleReading(
            estimate.a,
            estimate.b,
            estimate.state,
            float(fit.num_inliers) if fit else math.nan,
            float(fit.num_samples) if fit else math.nan,
            fit.residual if fit else math.nan,
            estimate.age_s,
        )
        if not estimate.usable:
            if estimate.state == REJECTED:
                why = "the latest sparse_depth contradicts the model on this view"
            elif estimate.state == WAITING:
                why = "no fit accepted yet"
            else:
                why = f"no fit accepted in the last {s.timeout_s:g} s (scale.timeout_s)"
            self._say(
                f"state:{estimate.state}",
                f"metric scale {estimate.state}: {why}; last: {self._last_reason()}; "
                "not publishing depth",
            )
            return ScaledDepth(None, reading)
        return ScaledDepth(apply_scale(disparity, estimate.a, estimate.b), reading)

    def _fit(
        self, disparity: np.ndarray, camera_info: Any, stamp_s: float, frame_id: str, now_s: float
    ) -> None:
        with self._lock:
            candidates = list(self._sparse)
        if not candidates:
            return
        sparse = min(candidates, key=lambda m: abs(m.stamp_s - stamp_s))
        self._nearest_offset_s = sparse.stamp_s - stamp_s
        if abs(self._nearest_offset_s) > self.settings.max_time_offset_s:
            return  # no sparse data for this frame: the tracker ages the last fit
        height, width = disparity.shape
        try:
            if self.settings.sparse_type == "image":
                samples = samples_from_depth_image(
                    sparse.decode(), height, width, self.settings.fit.max_samples
                )
            else:
                K = self._camera_matrix(camera_info, width, height)
                T = None if K is None else self._cloud_to_camera(sparse, frame_id)
                if T is None:
                    return
                samples = samples_from_points(sparse.decode(), T, K, height, width)
        except ValueError as exc:  # a malformed message (ImageDecodeError is a ValueError)
            self._say("bad_sparse", f"sparse_depth dropped: {exc}", error=True)
            return
        fit = fit_scale_shift(samples.lookup(disparity), samples.depth_m, self.settings.fit)
        with self._lock:
            self.tracker.update(fit, now_s)
        if not fit.ok:
            self._say("rejected", f"metric scale fit rejected: {fit.reason}")

    def _camera_matrix(self, info: Any, width: int, height: int) -> np.ndarray | None:
        try:
            intrinsics = CameraIntrinsics.from_k(info.k, info.width, info.height)
            if not intrinsics.is_calibrated:
                raise IntrinsicsError("K is zero (uncalibrated)")
        except (AttributeError, IntrinsicsError) as exc:
            reason = "no camera_info received" if info is None else str(exc)
            self._say("no_camera", f"cannot project sparse_depth points: {reason}", error=True)
            return None
        return intrinsics.scaled_to(width, height).k_matrix()

    def _cloud_to_camera(self, sparse: SparseDepth, camera_frame: str) -> np.ndarray | None:
        if not sparse.frame_id or sparse.frame_id == camera_frame:
            return np.eye(4)
        if self.lookup_transform is None:
            return self.settings.T_camera_from_cloud
        try:
            return self.lookup_transform(camera_frame, sparse.frame_id, sparse.stamp_s)
        except Exception as exc:  # tf2 raises several unrelated exception types
            self._say("tf", f"no TF from {sparse.frame_id} to {camera_frame}: {exc}", error=True)
            return None

    def _last_reason(self) -> str:
        fit = self.tracker.last_fit
        if fit is None:
            if not self.sparse_received:
                return "no sparse_depth message received yet"
            return (
                f"no sparse_depth stamp within scale.max_time_offset_s "
                f"({self.settings.max_time_offset_s:g} s) of an image stamp; nearest is "
                f"{self._nearest_offset_s:+.3f} s away"
            )
        return fit.reason

    def status(self, now_s: float) -> ScaleStatus:
        """The metric scale's status for /diagnostics (OK, WARN or ERROR with why)."""
        s = self.settings
        if s.mode == FIXED:
            values = {"mode": "fixed", "a": f"{s.a:.6g}", "b": f"{s.b:.6g}"}
            values["model_depth_type"] = self.model_depth_type
            return ScaleStatus(OK, f"fixed a={s.a:g} b={s.b:g}", values)
        with self._lock:
            estimate = self.tracker.estimate(now_s)
            fit, accepted, rejected = (
                self.tracker.last_fit,
                self.tracker.accepted,
                self.tracker.rejected,
            )
        level = {TRACKING: OK, HOLDING: WARN, WAITING: WARN, REJECTED: WARN, STALE: ERROR}[
            estimate.state
        ]
        if estimate.state == REJECTED and estimate.age_s > s.timeout_s:
            level = ERROR  # contradicted for longer than a dropout
        message = estimate.state
        if estimate.state != TRACKING:
            message += f": last fit {self._last_reason()}"
            if estimate.state in (STALE, REJECTED):
                message += "; depth not published"
        values = {
            "mode": "sparse",
            "state": estimate.state,
            "a": f"{estimate.a:.6g}",
            "b": f"{estimate.b:.6g}",
            "age_s": f"{estimate.age_s:.2f}",
            "inliers": str(fit.num_inliers) if fit else "",
            "samples": str(fit.num_samples) if fit else "",
            "inlier_ratio": f"{fit.inlier_ratio:.3f}" if fit else "",
            "residual": f"{fit.residual:.4f}" if fit else "",
            "fits_accepted": str(accepted),
            "fits_rejected": str(rejected),
            "sparse_msgs_received": str(self.sparse_received),
            "model_depth_type": self.model_depth_type,
        }
        return ScaleStatus(level, message, values)

    def _say(self, kind: str, text: str, error: bool = False) -> None:
        # Log only: the scale's own status carries its state to /diagnostics.
        self.reporter.report(f"scale:{kind}", text, error=error, status=False)
