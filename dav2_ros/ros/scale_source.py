"""Metric depth for relative models inside ``dav2_depth``: the ``scale.*`` feature.

Wiring only; the arithmetic is in ``dav2_ros.scale``. Modes (``scale.mode``):

* ``none``   - relative models publish ``depth/relative`` only (no ``depth``).
* ``fixed``  - metric inverse depth = ``scale.a``·disparity + ``scale.b`` (``dav2 calibrate``).
* ``sparse`` - fit a, b on every frame against ``sparse_depth`` (``sensor_msgs/Image``
  32FC1 m / 16UC1 mm registered to the camera, or ``sensor_msgs/PointCloud2`` in any
  frame, by ``scale.sparse_type``). The last good fit is kept ``scale.timeout_s``
  seconds; after that ``depth`` (and ``points``) stop until a fit succeeds again.
  Sparse data that contradicts the prediction stops them at once (state ``rejected``).

Each frame with a scale publishes ``depth/scale`` (``std_msgs/Float64MultiArray``,
fields in ``SCALE_FIELDS`` order, named in ``layout.dim[0].label``); a status named
``dav2_depth: metric scale`` goes to ``/diagnostics`` once a second.
Metric models ignore ``scale.*`` (they already predict metres).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension

from dav2_ros.geometry import CameraIntrinsics, IntrinsicsError
from dav2_ros.ros import outputs
from dav2_ros.ros.parameters import ParameterError, ParamSpec, check_value, register_parameters
from dav2_ros.ros.qos import input_qos
from dav2_ros.scale import (
    HOLDING,
    REJECTED,
    STALE,
    TRACKING,
    WAITING,
    FitConfig,
    ScaleTracker,
    apply_scale,
    fit_scale_shift,
    samples_from_depth_image,
    samples_from_points,
    transform_from_xyz_rpy,
)

STATUS_NAME = "dav2_depth: metric scale"
FIXED = "fixed"
STATE_CODES = {WAITING: 0.0, TRACKING: 1.0, HOLDING: 2.0, STALE: 3.0, FIXED: 4.0, REJECTED: 5.0}
SCALE_FIELDS = ("a", "b", "state", "num_inliers", "num_samples", "residual", "age_s")
THROTTLE_S = 5.0
SPARSE_HISTORY = 32  # messages kept for pairing by stamp (1 s at 30 Hz, 6 s at 5 Hz)

_EXTRINSIC = ("x", "y", "z", "roll", "pitch", "yaw")
SCALE_PARAMETERS = [
    ParamSpec(
        "scale.mode",
        "none",
        "relative models: none (depth/relative only), fixed (scale.a, scale.b) or sparse "
        "(fit against the sparse_depth topic)",
        choices=("none", "fixed", "sparse"),
    ),
    ParamSpec("scale.a", 0.0, "fixed mode: metric inverse depth (1/m) = a * disparity + b"),
    ParamSpec("scale.b", 0.0, "fixed mode: shift of the metric inverse depth (1/m)"),
    ParamSpec(
        "scale.sparse_type",
        "image",
        "sparse_depth message type: image (32FC1 m / 16UC1 mm, registered to the camera) "
        "or points (PointCloud2 in any frame)",
        choices=("image", "points"),
    ),
    ParamSpec(
        "scale.timeout_s",
        2.0,
        "keep the last good fit this long without a new one, then stop publishing depth",
        min_value=0.01,
        max_value=3600.0,
    ),
    ParamSpec(
        "scale.max_time_offset_s",
        0.1,
        "pair a sparse message with an image only if their stamps differ by at most this",
        min_value=0.0,
        max_value=10.0,
    ),
    ParamSpec(
        "scale.min_inliers", 15, "fewest agreeing samples for a fit", min_value=2, max_value=10**7
    ),
    ParamSpec(
        "scale.inlier_threshold",
        0.25,
        "relative inverse-depth residual under which a sample agrees with a fit",
        min_value=1e-4,
        max_value=1.0,
    ),
    ParamSpec(
        "scale.max_residual",
        0.30,
        "reject a fit whose median relative residual over all samples exceeds this",
        min_value=1e-4,
        max_value=1.0,
    ),
    ParamSpec(
        "scale.smoothing_tau_s",
        0.0,
        "EMA time constant over accepted fits in seconds; 0 = use each frame's own fit",
        min_value=0.0,
        max_value=3600.0,
    ),
    ParamSpec(
        "scale.use_tf",
        True,
        "points: take the cloud-to-camera transform from TF2 when tf2_ros is importable",
    ),
    *(
        ParamSpec(
            f"scale.extrinsic.{name}",
            0.0,
            f"points without TF2: pose of the cloud's frame in the camera optical frame, "
            f"{name} in {unit}",
        )
        for name, unit in zip(_EXTRINSIC, ["m"] * 3 + ["rad (fixed axes X, Y, Z)"] * 3, strict=True)
    ),
]
register_parameters(SCALE_PARAMETERS)


@dataclass(frozen=True)
class ScaleSettings:
    mode: str
    a: float
    b: float
    sparse_type: str
    timeout_s: float
    max_time_offset_s: float
    smoothing_tau_s: float
    use_tf: bool
    T_camera_from_cloud: np.ndarray
    fit: FitConfig


def scale_settings_from_values(values: dict[str, Any]) -> ScaleSettings:
    """Check the ``scale.*`` values (missing → default); ParameterError names the culprit."""
    v = {s.name: check_value(s, values.get(s.name, s.default)) for s in SCALE_PARAMETERS}
    if v["scale.mode"] == "fixed" and not v["scale.a"] > 0:
        raise ParameterError(
            f"parameter 'scale.a': scale.mode 'fixed' needs a > 0, got {v['scale.a']}; "
            "estimate it with `dav2 calibrate` and pass the file it writes as --params-file"
        )
    extrinsic = [v[f"scale.extrinsic.{name}"] for name in _EXTRINSIC]
    return ScaleSettings(
        mode=v["scale.mode"],
        a=v["scale.a"],
        b=v["scale.b"],
        sparse_type=v["scale.sparse_type"],
        timeout_s=v["scale.timeout_s"],
        max_time_offset_s=v["scale.max_time_offset_s"],
        smoothing_tau_s=v["scale.smoothing_tau_s"],
        use_tf=v["scale.use_tf"],
        T_camera_from_cloud=transform_from_xyz_rpy(extrinsic[:3], extrinsic[3:]),
        fit=FitConfig(
            min_inliers=v["scale.min_inliers"],
            inlier_threshold=v["scale.inlier_threshold"],
            max_residual=v["scale.max_residual"],
        ),
    )


def depth_image_from_msg(msg: Image) -> np.ndarray:
    """A 32FC1/16UC1 ``Image`` → H×W array (row padding and byte order handled)."""
    dtypes = {"32FC1": np.float32, "16UC1": np.uint16}
    if msg.encoding not in dtypes:
        raise ValueError(
            f"sparse_depth encoding {msg.encoding!r} is not supported; publish 32FC1 "
            "(metres) or 16UC1 (millimetres)"
        )
    dtype = np.dtype(dtypes[msg.encoding]).newbyteorder(">" if msg.is_bigendian else "<")
    row_bytes = msg.width * dtype.itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise ValueError(
            f"sparse_depth {msg.width}x{msg.height} {msg.encoding}: step {msg.step} and "
            f"{len(msg.data)} data bytes are too small for the image"
        )
    rows = np.frombuffer(bytes(msg.data), np.uint8, msg.step * msg.height)
    rows = rows.reshape(msg.height, msg.step)[:, :row_bytes]
    return np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width)


def points_from_cloud_msg(msg: PointCloud2) -> np.ndarray:
    """x, y, z of a ``PointCloud2`` (FLOAT32 or FLOAT64 fields, any layout) → N×3 float64."""
    kinds = {7: "f4", 8: "f8"}
    fields = {f.name: f for f in msg.fields}
    missing = [name for name in "xyz" if name not in fields]
    if missing or any(fields[name].datatype not in kinds for name in "xyz"):
        raise ValueError(
            f"sparse_depth PointCloud2 needs FLOAT32/FLOAT64 fields x, y, z; got "
            f"{[(f.name, f.datatype) for f in msg.fields]}"
        )
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(
        {
            "names": list("xyz"),
            "formats": [order + kinds[fields[name].datatype] for name in "xyz"],
            "offsets": [fields[name].offset for name in "xyz"],
            "itemsize": msg.point_step,
        }
    )
    count = msg.width * msg.height
    if msg.row_step < msg.width * msg.point_step or len(msg.data) < msg.row_step * msg.height:
        raise ValueError(
            f"sparse_depth PointCloud2 {msg.width}x{msg.height}: row_step {msg.row_step} and "
            f"{len(msg.data)} data bytes are too small for point_step {msg.point_step}"
        )
    rows = np.frombuffer(bytes(msg.data), np.uint8, msg.row_step * msg.height)
    rows = rows.reshape(msg.height, msg.row_step)[:, : msg.width * msg.point_step]
    points = np.ascontiguousarray(rows).view(dtype).reshape(count)
    return np.stack([points[name].astype(np.float64) for name in "xyz"], axis=1)


def _stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class ScaleSource:
    """Turns a prediction into metres for the node, or says why it cannot."""

    def __init__(self, node: Any, values: dict[str, Any], depth_type: str) -> None:
        self.node = node
        self.settings = scale_settings_from_values(values)
        self.active = depth_type == "relative" and self.settings.mode != "none"
        self.tracker = ScaleTracker(self.settings.timeout_s, self.settings.smoothing_tau_s)
        self._lock = threading.Lock()
        # Recent sparse_depth messages: inference lags the camera, so the one that pairs
        # with the frame being processed is often not the newest.
        self._sparse: deque = deque(maxlen=SPARSE_HISTORY)
        self.sparse_received = 0
        self._nearest_offset_s = math.nan  # sparse minus image stamp, of the last pairing
        self._tf_buffer: Any = None
        self._last_said: dict[str, float] = {}
        log = node.get_logger()
        if depth_type != "relative":
            if self.settings.mode != "none":
                log.warn(f"scale.mode '{self.settings.mode}' ignored: the model is metric")
            return
        if not self.active:
            return
        self.pub_scale = node.create_publisher(Float64MultiArray, "depth/scale", 10)
        self.pub_diag = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        node.create_timer(1.0, self._publish_diagnostics)
        if self.settings.mode == "sparse":
            msg_type = Image if self.settings.sparse_type == "image" else PointCloud2
            # A LiDAR or depth camera is a sensor stream: same QoS choice as the camera.
            qos = input_qos(node.settings.input_reliability)
            node.create_subscription(msg_type, "sparse_depth", self._on_sparse, qos)
            if self.settings.sparse_type == "points" and self.settings.use_tf:
                self._tf_buffer = _tf_buffer(node)
            source = "TF2" if self._tf_buffer is not None else "scale.extrinsic.*"
            log.info(
                f"metric scale: sparse fit against 'sparse_depth' ({msg_type.__name__}"
                + (f", cloud-to-camera transform from {source}" if msg_type is PointCloud2 else "")
                + f"), timeout {self.settings.timeout_s:g} s"
            )
        else:
            log.info(f"metric scale: fixed a={self.settings.a:g}, b={self.settings.b:g}")

    # ---- executor thread ---------------------------------------------------------------
    def _on_sparse(self, msg: Any) -> None:
        with self._lock:
            self._sparse.append(msg)
            self.sparse_received += 1

    # ---- worker thread -----------------------------------------------------------------
    def to_metres(self, prediction: Any, header: Header, camera_info: Any) -> np.ndarray | None:
        """Depth in metres for this prediction, or None when it must not be published."""
        if prediction.depth_type != "relative":
            return outputs.metric_depth_m(prediction)
        if not self.active:
            return None
        if self.settings.mode == "fixed":
            self._publish_scale(header, self.settings.a, self.settings.b, FIXED, None, 0.0)
            return apply_scale(prediction.values, self.settings.a, self.settings.b)
        now_s = self.node.get_clock().now().nanoseconds * 1e-9
        self._fit(prediction.values, header, camera_info, now_s)
        with self._lock:
            estimate = self.tracker.estimate(now_s)
        self._publish_scale(
            header, estimate.a, estimate.b, estimate.state, self.tracker.last_fit, estimate.age_s
        )
        if not estimate.usable:
            if estimate.state == REJECTED:
                why = "the latest sparse_depth contradicts the model on this view"
            elif estimate.state == WAITING:
                why = "no fit accepted yet"
            else:
                why = f"no fit accepted in the last {self.settings.timeout_s:g} s (scale.timeout_s)"
            self._say(
                f"state:{estimate.state}",
                f"metric scale {estimate.state}: {why}; last: {self._last_reason()}; "
                "not publishing depth",
            )
            return None
        return apply_scale(prediction.values, estimate.a, estimate.b)

    def _fit(self, disparity: np.ndarray, header: Header, camera_info: Any, now_s: float) -> None:
        image_s = _stamp_s(header)
        with self._lock:
            candidates = list(self._sparse)
        if not candidates:
            return
        msg = min(candidates, key=lambda m: abs(_stamp_s(m.header) - image_s))
        self._nearest_offset_s = _stamp_s(msg.header) - image_s
        if abs(self._nearest_offset_s) > self.settings.max_time_offset_s:
            return  # no sparse data for this frame: the tracker ages the last fit
        height, width = disparity.shape
        try:
            if self.settings.sparse_type == "image":
                depth = depth_image_from_msg(msg)
                samples = samples_from_depth_image(
                    depth, msg.encoding, height, width, self.settings.fit.max_samples
                )
            else:
                K = self._camera_matrix(camera_info, width, height)
                if K is None:
                    return
                T = self._cloud_to_camera(msg, header)
                if T is None:
                    return
                samples = samples_from_points(points_from_cloud_msg(msg), T, K, height, width)
        except ValueError as exc:
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

    def _cloud_to_camera(self, msg: Any, header: Header) -> np.ndarray | None:
        if not msg.header.frame_id or msg.header.frame_id == header.frame_id:
            return np.eye(4)
        if self._tf_buffer is None:
            return self.settings.T_camera_from_cloud
        return _tf_lookup(self._tf_buffer, header.frame_id, msg.header, self._say)

    # ---- outputs -----------------------------------------------------------------------
    def _publish_scale(
        self, header: Header, a: float, b: float, state: str, fit: Any, age_s: float
    ) -> None:
        values = [
            a,
            b,
            STATE_CODES[state],
            float(fit.num_inliers) if fit else math.nan,
            float(fit.num_samples) if fit else math.nan,
            fit.residual if fit else math.nan,
            age_s,
        ]
        msg = Float64MultiArray(data=[float(v) for v in values])
        msg.layout.dim = [
            MultiArrayDimension(label=",".join(SCALE_FIELDS), size=len(values), stride=len(values))
        ]
        self.pub_scale.publish(msg)

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

    def status(self) -> DiagnosticStatus:
        """The /diagnostics status of the metric scale (OK, WARN or ERROR with why)."""
        s = self.settings
        if s.mode == "fixed":
            level, message = DiagnosticStatus.OK, f"fixed a={s.a:g} b={s.b:g}"
            values = {"mode": "fixed", "a": f"{s.a:.6g}", "b": f"{s.b:.6g}"}
            return _status(level, message, self.node.get_name(), values)
        now_s = self.node.get_clock().now().nanoseconds * 1e-9
        with self._lock:
            estimate = self.tracker.estimate(now_s)
            fit, accepted, rejected = (
                self.tracker.last_fit,
                self.tracker.accepted,
                self.tracker.rejected,
            )
        level = {
            TRACKING: DiagnosticStatus.OK,
            HOLDING: DiagnosticStatus.WARN,
            WAITING: DiagnosticStatus.WARN,
            REJECTED: DiagnosticStatus.WARN,
            STALE: DiagnosticStatus.ERROR,
        }[estimate.state]
        if estimate.state == REJECTED and estimate.age_s > s.timeout_s:
            level = DiagnosticStatus.ERROR  # contradicted for longer than a dropout
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
        }
        return _status(level, message, self.node.get_name(), values)

    def _publish_diagnostics(self) -> None:
        header = Header(stamp=self.node.get_clock().now().to_msg())
        self.pub_diag.publish(DiagnosticArray(header=header, status=[self.status()]))

    def _say(self, kind: str, text: str, error: bool = False) -> None:
        """Log once per ``THROTTLE_S`` per kind, so one problem does not hide another."""
        now_s = time.monotonic()
        if now_s - self._last_said.get(kind, -math.inf) < THROTTLE_S:
            return
        self._last_said[kind] = now_s
        # rclpy ties a severity to each call site: one call per severity.
        if error:
            self.node.get_logger().error(text)
        else:
            self.node.get_logger().warn(text)


def _status(level: bytes, message: str, node_name: str, values: dict[str, str]):
    return DiagnosticStatus(
        level=level,
        name=STATUS_NAME,
        message=message,
        hardware_id=node_name,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )


def _tf_buffer(node: Any) -> Any:
    """A TF2 buffer + listener when ``tf2_ros`` is importable (ROS installs); else None."""
    try:
        import tf2_ros
    except ImportError:
        return None
    buffer = tf2_ros.Buffer()
    node._dav2_tf_listener = tf2_ros.TransformListener(buffer, node)  # keep it alive
    return buffer


def _tf_lookup(buffer: Any, camera_frame: str, cloud_header: Header, say: Any) -> np.ndarray | None:
    """T_camera_from_cloud at the cloud's stamp from TF2 (not exercised without tf2_ros)."""
    from dav2_ros.scale import transform_from_quaternion

    try:
        stamped = buffer.lookup_transform(camera_frame, cloud_header.frame_id, cloud_header.stamp)
    except Exception as exc:  # tf2 raises several unrelated exception types
        say("tf", f"no TF from {cloud_header.frame_id} to {camera_frame}: {exc}", error=True)
        return None
    t, q = stamped.transform.translation, stamped.transform.rotation
    return transform_from_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])
