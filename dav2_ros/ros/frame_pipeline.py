"""One camera frame through the node: decode → engine → metres → the outputs someone wants.

Confidence (``model.confidence``) is made only for a frame that needs it: someone listens
to ``depth/confidence``, or ``points.min_confidence`` filters points or scan that someone
listens to. The filter NaNs the points and scan beams of pixels below the threshold;
``depth`` itself keeps every pixel.

The metres are corrected to the camera's focal length right after the model (when the
model has a canonical focal length and the frame a calibrated camera_info), so the
temporal stabiliser, ``scale.*`` and every output see the corrected metres.

Plain logic: the node hands in the image message and the latest camera_info, and a
``Sink`` that says which topics have subscribers and publishes a built message. Settings
changed at runtime (``ros2 param set``) are handed in with ``retune`` from any thread
and take effect at the start of the next frame, never in the middle of one.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan, PointCloud2
from std_msgs.msg import Header

from dav2_ros.colorize import colorize
from dav2_ros.geometry.laserscan import ScanHeightError
from dav2_ros.reporting import Reporter
from dav2_ros.ros import camera_info, conversions, outputs
from dav2_ros.ros.parameters import NodeSettings
from dav2_ros.ros.stats import ENGINE_STAGES, FrameClock
from dav2_ros.scale.source import ScaleSource
from dav2_ros.temporal import TemporalSettings, TemporalStabilizer

CONFIDENCE_TOPIC = "depth/confidence"
IMAGE_TOPICS = ("depth", CONFIDENCE_TOPIC, "depth/relative", "depth/colored")
FOCAL_KIND = "focal"  # the reporter kind family of frames left without focal correction
# The outputs for the camera's frames (depth/scale and /diagnostics come beside them).
OUTPUTS = {
    "depth": Image,
    CONFIDENCE_TOPIC: Image,
    "depth/camera_info": CameraInfo,
    "depth/relative": Image,
    "depth/colored": Image,
    "points": PointCloud2,
    "scan": LaserScan,
}


def output_types(confidence: str) -> dict[str, type]:
    """Topic → message type of the outputs to advertise: depth/confidence only when the
    model gives confidence (``confidence``: the mode in use, ``off`` for none)."""
    return {t: kind for t, kind in OUTPUTS.items() if t != CONFIDENCE_TOPIC or confidence != "off"}


class Sink(Protocol):
    """Where the pipeline's messages go (the node's publishers)."""

    def wanted(self, topic: str) -> bool: ...

    def publish(self, topic: str, msg: Any) -> None: ...

    def now_s(self) -> float: ...


class FramePipeline:
    """The outputs of one frame at a time (one worker thread calls ``process``)."""

    def __init__(
        self,
        settings: NodeSettings,
        engine: Any,  # EngineSupervisor
        scale: ScaleSource | None,
        depth_type: str,
        reporter: Reporter,
        sink: Sink,
        correct_focal: bool = False,
    ) -> None:
        self.engine, self.scale, self.depth_type = engine, scale, depth_type
        self.correct_focal = correct_focal  # the model has a canonical focal length
        self.reporter, self.sink = reporter, sink
        # Reused messages and buffers of the outputs (one worker thread fills and publishes).
        self.images = {topic: outputs.ImageOutput() for topic in IMAGE_TOPICS}
        self._lock = threading.Lock()
        self._pending: NodeSettings | None = None
        self.settings = settings
        self._apply(settings)

    def retune(self, settings: NodeSettings) -> None:
        """Use ``settings`` (checked, same model and engine) from the next frame on."""
        with self._lock:
            self._pending = settings

    def _apply(self, new: NodeSettings, old: NodeSettings | None = None) -> None:
        """Rebuild only the outputs whose settings changed (their state starts afresh)."""
        if old is None or (new.points_stride, new.points_max_range_m) != (
            old.points_stride,
            old.points_max_range_m,
        ):
            self.cloud = outputs.CloudOutput(new.points_stride, new.points_max_range_m)
        if old is None or new.scan != old.scan:
            self.scan_out = outputs.ScanOutput(new.scan)
        if old is None or new.temporal != old.temporal:
            self.temporal = TemporalStabilizer(TemporalSettings(**new.temporal), self.depth_type)
        if old is not None and self.scale is not None and new.scale is not old.scale:
            self.scale.retune(new.scale)  # keeps its fit and sparse history
        self.settings = new

    def serve(self, msg: Any, camera_info_msg: Any, stats: Any, received_s: float) -> None:
        """``process`` one frame and count it in ``stats`` (``NodeStats``); a bad image or
        a failure is reported and counted, never raised: the node keeps serving."""
        try:
            clock = self.process(msg, camera_info_msg)
        except conversions.ImageDecodeError as exc:
            stats.rejected += 1
            text = f"dropped a bad image: {exc}"
            self.reporter.report(f"frame:bad_image:{exc.kind}", text, error=True)
            return
        except Exception as exc:  # one bad frame must not end the node
            self.reporter.report(
                "frame:failed", f"frame failed: {type(exc).__name__}: {exc}", error=True
            )
            return
        if clock is not None:
            self.reporter.resolve("frame")
            stats.frame_out(clock, received_s)

    def process(self, msg: Any, camera_info_msg: Any) -> FrameClock | None:
        """Publish the outputs of one image message; its stage timings, or None when the
        engine failed (reported and backed off). Raises ``conversions.ImageDecodeError``
        for a message that is not a usable image."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._apply(pending, self.settings)
        clock = FrameClock()
        compressed = isinstance(msg, CompressedImage)
        rgb = conversions.compressed_to_rgb(msg) if compressed else conversions.image_to_rgb(msg)
        clock.lap("decode")
        output_hw = rgb.shape[:2] if self.settings.output_resolution == "input" else (0, 0)
        confidence = None if self._confidence_wanted() else "off"
        focal_px = self._camera_focal_px(camera_info_msg, rgb) if self.correct_focal else None
        prediction = self.engine.predict(rgb, output_hw, confidence, focal_px)
        if prediction is None:
            return None
        for stage in ENGINE_STAGES:
            clock.add(stage, getattr(prediction, f"{stage}_ms"))
        header = Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id)
        self._publish(header, rgb, prediction, camera_info_msg, clock)
        return clock

    def _confidence_wanted(self) -> bool:
        s = self.settings
        if self.sink.wanted(CONFIDENCE_TOPIC):
            return True
        filtered = (s.points_enabled and self.sink.wanted("points")) or (
            s.scan_enabled and self.sink.wanted("scan")
        )
        return s.points_min_confidence > 0 and filtered

    def _camera_focal_px(self, info: Any, rgb: np.ndarray) -> tuple[float, float] | None:
        """(fx, fy) of this frame's camera for the focal correction, or None (said once
        until a usable camera_info arrives): the frame's metres stay the canonical camera's."""
        problem = camera_info.camera_info_problem(
            info, rgb.shape[1], rgb.shape[0], self.settings.camera_rectified
        )
        if problem is not None:
            self.reporter.report(
                f"{FOCAL_KIND}:{problem.detail}",
                f"metric depth not corrected to the camera's focal length ({problem.cause}): "
                "publishing the canonical camera's metres until a calibrated camera_info "
                "arrives",
                once=True,
            )
            return None
        self.reporter.resolve(FOCAL_KIND)
        return camera_info.focal_px(info, self.settings.camera_rectified)

    def _publish(
        self, header: Header, rgb: np.ndarray, prediction: Any, info: Any, clock: FrameClock
    ) -> None:
        """The outputs some subscriber wants: depth first, then depth/camera_info (the pair
        depth_image_proc synchronises), then points (the largest, built from both), then
        scan (from the same depth and lens)."""
        s, values = self.settings, prediction.values
        height, width = values.shape
        depth_m = outputs.metric_depth_m(prediction)  # invalid → NaN, in place
        clock.lap("metric")
        if s.temporal["mode"] != "none":  # steadier scale: metres, or disparity before scale.*
            raw = values if depth_m is None else depth_m
            steady = self.temporal.update(rgb, raw, stamp_s(header)).values
            values, depth_m = (steady, None) if depth_m is None else (values, steady)
            clock.lap("temporal")
        if prediction.depth_type == "relative" or self.scale is not None:
            depth_m = self._relative_and_scale(header, values, depth_m, info, clock)
        if depth_m is not None and self.sink.wanted("depth"):
            self._send(clock, "depth", self.images["depth"].fill(depth_m, "32FC1", header))
        confidence = prediction.confidence
        if confidence is not None and self.sink.wanted(CONFIDENCE_TOPIC):
            message = self.images[CONFIDENCE_TOPIC].fill(confidence, "32FC1", header)
            self._send(clock, CONFIDENCE_TOPIC, message)
        if self.sink.wanted("depth/colored"):
            shown = colorize(values if depth_m is None else depth_m, depth_m is None)
            colored = self.images["depth/colored"].fill(shown, "rgb8", header)
            self._send(clock, "depth/colored", colored)
        if depth_m is None:
            return
        problem = camera_info.camera_info_problem(
            info, rgb.shape[1], rgb.shape[0], s.camera_rectified
        )
        if problem is not None:
            self.reporter.report(problem.kind, problem.text, error=problem.error, once=problem.once)
            return
        self.reporter.resolve(camera_info.FAMILY)
        points = s.points_enabled and self.sink.wanted("points")
        scan = s.scan_enabled and self.sink.wanted("scan")
        if not (points or scan or self.sink.wanted("depth/camera_info")):
            return
        depth_info = camera_info.scaled_camera_info(info, header, width, height)
        if self.sink.wanted("depth/camera_info"):
            self._send(clock, "depth/camera_info", depth_info)
        if not (points or scan):
            return
        lens = camera_info.lens_of(depth_info, s.camera_rectified)
        if lens.warning:  # an unknown distortion model: said once (until fixed), a pinhole
            self.reporter.report("lens:distortion", lens.warning, once=True)
        else:
            self.reporter.resolve("lens")
        if s.points_min_confidence > 0:
            depth_m = self._trusted(depth_m, confidence)
            clock.lap("confidence filter")
        if points:
            colours = outputs.rgb_at(rgb, height, width) if s.points_color else None
            self._send(clock, "points", self.cloud.fill(depth_m, lens.lens, colours, header))
        if scan:
            self._publish_scan(clock, depth_m, lens.lens, header)

    def _relative_and_scale(
        self, header: Header, values: np.ndarray, depth_m: np.ndarray | None, info: Any,
        clock: FrameClock,
    ) -> np.ndarray | None:  # fmt: skip
        """``depth/relative``, and with ``scale.*`` the metres of this frame (None: not
        publishable in metres)."""
        # What scale.* turns into metres: a metric model's own inverse depth (1/m).
        disparity = values if depth_m is None else outputs.inverse_depth(depth_m)
        if self.sink.wanted("depth/relative"):
            relative = self.images["depth/relative"].fill(disparity, "32FC1", header)
            self._send(clock, "depth/relative", relative)
        if self.scale is None:
            return depth_m
        scaled = self.scale.to_metres(
            disparity, info, stamp_s(header), header.frame_id, self.sink.now_s()
        )
        self.sink.publish("depth/scale", outputs.scale_msg(scaled.reading))
        clock.lap("scale")
        return scaled.depth_m

    def _trusted(self, depth_m: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
        """For points and scan: ``depth_m`` with NaN where confidence is below
        ``points.min_confidence``, as a new array (``depth`` keeps every pixel)."""
        threshold = self.settings.points_min_confidence
        if confidence is None:
            self.reporter.report(
                "confidence:missing",
                f"points.min_confidence is {threshold:g} but this model gives no confidence "
                "(model.confidence resolved to off): points and scan are not filtered. Use a "
                "checkpoint with a confidence head or model.confidence 'flip'",
                error=True,
                once=True,
            )
            return depth_m
        self.reporter.resolve("confidence")
        return np.where(confidence >= threshold, depth_m, np.float32(np.nan))

    def _publish_scan(self, clock: FrameClock, depth_m: Any, lens: Any, header: Header) -> None:
        """``scan``, or a configuration problem on /diagnostics when ``scan.height`` does
        not fit this camera (the frame's other outputs are out already and count)."""
        try:
            msg = self.scan_out.fill(depth_m, lens, header)
        except ScanHeightError as exc:
            self.reporter.report("scan:height", f"scan not published: {exc}", error=True, once=True)
            return
        self.reporter.resolve("scan")
        self._send(clock, "scan", msg)

    def _send(self, clock: FrameClock, topic: str, msg: Any) -> None:
        """Publish ``msg``: the lap so far was building it. It is serialised before
        ``publish()`` returns, so its reused buffers may be refilled for the next frame."""
        clock.lap(f"{topic} build")
        self.sink.publish(topic, msg)
        clock.lap(f"{topic} publish")


def stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9
