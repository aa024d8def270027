"""``dav2_depth``: camera image (+ camera_info) in, metric depth, camera_info, points out.

The wiring diagram of the node, and the only owner of its ROS handles (publishers,
subscriptions, timer, TF listener, logger). The work is done by plain logic it calls:
``conversions`` (messages ↔ arrays), ``EngineSupervisor`` (engine per input size, failure
back-off), ``ScaleSource`` (metres for relative models, re-fitted ones for metric models),
``outputs`` and ``camera_info``, all saying problems through one ``Reporter``.
Subscription callbacks only park the newest frame in a depth-1 mailbox; one worker
thread runs the model and publishes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial
from importlib.util import find_spec
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan, PointCloud2
from std_msgs.msg import Float64MultiArray, Header

from dav2_ros.colorize import colorize
from dav2_ros.engines import EngineSupervisor
from dav2_ros.engines.cache import discard_unfinished_builds
from dav2_ros.geometry.laserscan import ScanHeightError
from dav2_ros.reporting import Reporter
from dav2_ros.ros import camera_info, conversions, diagnostics, outputs, startup
from dav2_ros.ros.mailbox import LatestMailbox
from dav2_ros.ros.qos import input_qos, output_qos
from dav2_ros.ros.startup import StartupError
from dav2_ros.ros.stats import ENGINE_STAGES, FrameClock, NodeStats
from dav2_ros.ros.tf_lookup import tf_lookup
from dav2_ros.ros.transport import log_choice, use_large_data_profile
from dav2_ros.scale.source import ScaleSource, SparseDepth
from dav2_ros.temporal import TemporalSettings, TemporalStabilizer

NODE_NAME = "dav2_depth"
DEFAULT_INPUT_SIZE = 518
STOP_WAIT_S = 1.0  # how long stop() waits for an inference in flight (a stop takes < 2 s)
# Outputs for the camera's frames (depth/scale and /diagnostics come beside them).
OUTPUTS = {
    "depth": Image,
    "depth/camera_info": CameraInfo,
    "depth/relative": Image,
    "depth/colored": Image,
    "points": PointCloud2,
    "scan": LaserScan,
}


@dataclass
class Frame:
    msg: Image | CompressedImage
    received_s: float  # time.monotonic() at the callback


class DepthNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.settings = s = startup.read_settings(self)
        log = self.get_logger()
        self.loaded = startup.load_model(s, log.info)
        self.input_size = s.input_size or self.loaded.meta.input_size or DEFAULT_INPUT_SIZE
        self.model_name = startup.model_label(self.loaded.meta, s.checkpoint)
        self.reporter = Reporter(log.info, log.warning, log.error)
        self._stopping = threading.Event()
        estimator = startup.depth_estimator(s, self.loaded.model, self.input_size)
        self.engine = EngineSupervisor(estimator, self.reporter, self._stopping)
        self.mailbox: LatestMailbox[Frame] = LatestMailbox()
        self.stats = NodeStats()
        self._camera_info: CameraInfo | None = None

        out_qos, in_qos = output_qos(s.output_reliability), input_qos(s.input_reliability)
        self.pub = {topic: self.create_publisher(t, topic, out_qos) for topic, t in OUTPUTS.items()}
        # Reused messages and buffers of the outputs (one worker thread fills and publishes).
        self.images = {topic: outputs.ImageOutput() for topic, t in OUTPUTS.items() if t is Image}
        self.cloud = outputs.CloudOutput(s.points_stride, s.points_max_range_m)
        self.scan_out = outputs.ScanOutput(s.scan)
        self.temporal = TemporalStabilizer(
            TemporalSettings(**s.temporal), self.loaded.meta.depth_type
        )
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        image_topic = "image/compressed" if s.image_transport == "compressed" else "image"
        image_type = CompressedImage if s.image_transport == "compressed" else Image
        self.create_subscription(image_type, image_topic, self._on_image, in_qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, in_qos)
        self.scale = self._wire_scale(in_qos)
        self.create_timer(1.0, self._publish_diagnostics)

        self._worker = threading.Thread(target=self._work, name="dav2_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: model {self.model_name}, backend {s.backend}, "
            f"input_size {self.input_size}, subscribed to {image_topic}"
        )

    def _wire_scale(self, in_qos: Any) -> ScaleSource | None:
        """``scale.*``: depth/scale out, sparse_depth in (sparse mode). A metric model's
        inverse depth is re-scaled as a relative model's disparity would be."""
        scale = self.settings.scale
        if scale.mode == "none":
            return None
        lookup, points = None, scale.mode == "sparse" and scale.sparse_type == "points"
        if points and scale.use_tf and find_spec("tf2_ros"):  # ROS installs; else extrinsic.*
            import tf2_ros

            buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(buffer, self)
            lookup = tf_lookup(buffer)
        source = ScaleSource(scale, self.reporter, lookup, self.loaded.meta.depth_type)
        self.pub_scale = self.create_publisher(Float64MultiArray, "depth/scale", 10)
        if scale.mode == "sparse":
            # A LiDAR or depth camera is a sensor stream: same QoS choice as the camera.
            sparse_type = Image if scale.sparse_type == "image" else PointCloud2
            self.create_subscription(sparse_type, "sparse_depth", self._on_sparse, in_qos)
        self.reporter.info(source.summary())
        return source

    # ---- callbacks: never wait for the model ------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.input_rate.tick()
        if not self._anyone_listening():
            self.stats.skipped_no_subscriber += 1
            return
        self.mailbox.put(Frame(msg, time.monotonic()))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_sparse(self, msg: Image | PointCloud2) -> None:
        to_array = (
            conversions.image_to_metres if isinstance(msg, Image) else conversions.cloud_to_xyz
        )
        decode = partial(to_array, msg)  # only if it pairs with a frame (in the worker)
        self.scale.add_sparse(SparseDepth(_stamp_s(msg.header), msg.header.frame_id, decode))

    def _anyone_listening(self) -> bool:
        return any(p.get_subscription_count() for p in self.pub.values())

    # ---- worker thread ----------------------------------------------------------------
    def _work(self) -> None:
        while not self.mailbox.closed:
            frame = self.mailbox.get(timeout_s=0.5)
            if frame is None:
                continue
            if not self.context.ok():
                return  # shutting down (Ctrl-C): publishing would fail
            try:
                self._process(frame)
            except conversions.ImageDecodeError as exc:
                self.stats.rejected += 1
                self.reporter.report(
                    f"frame:bad_image:{exc.kind}", f"dropped a bad image: {exc}", error=True
                )
            except Exception as exc:  # keep serving: one bad frame must not end the node
                if not self.context.ok():
                    return
                text = f"frame failed: {type(exc).__name__}: {exc}"
                self.reporter.report("frame:failed", text, error=True)

    def _process(self, frame: Frame) -> None:
        clock = FrameClock()
        msg = frame.msg
        compressed = isinstance(msg, CompressedImage)
        rgb = conversions.compressed_to_rgb(msg) if compressed else conversions.image_to_rgb(msg)
        clock.lap("decode")
        output_hw = rgb.shape[:2] if self.settings.output_resolution == "input" else (0, 0)
        prediction = self.engine.predict(rgb, output_hw)
        if prediction is None:
            return  # the engine failed: reported, and backed off
        for stage in ENGINE_STAGES:
            clock.add(stage, getattr(prediction, f"{stage}_ms"))
        self._publish(
            Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id), rgb, prediction, clock
        )
        self.reporter.resolve("frame")
        self.stats.frame_out(clock, frame.received_s)

    def _publish(self, header: Header, rgb: Any, prediction: Any, clock: FrameClock) -> None:
        """The outputs some subscriber wants: depth first, then depth/camera_info (the pair
        depth_image_proc synchronises), then points (the largest, built from both), then
        scan (from the same depth and lens)."""
        s, values = self.settings, prediction.values
        height, width = values.shape
        depth_m = outputs.metric_depth_m(prediction)  # invalid → NaN, in place
        clock.lap("metric")
        if s.temporal["mode"] != "none":  # steadier scale: metres, or disparity before scale.*
            raw = values if depth_m is None else depth_m
            steady = self.temporal.update(rgb, raw, _stamp_s(header)).values
            values, depth_m = (steady, None) if depth_m is None else (values, steady)
            clock.lap("temporal")
        if prediction.depth_type == "relative" or self.scale is not None:
            # What scale.* turns into metres: a metric model's own inverse depth (1/m).
            disparity = values if depth_m is None else outputs.inverse_depth(depth_m)
            if self._wanted("depth/relative"):
                relative = self.images["depth/relative"].fill(disparity, "32FC1", header)
                self._send(clock, "depth/relative", relative)
            if self.scale is not None:
                now_s = self.get_clock().now().nanoseconds * 1e-9
                scaled = self.scale.to_metres(
                    disparity, self._camera_info, _stamp_s(header), header.frame_id, now_s
                )
                self.pub_scale.publish(outputs.scale_msg(scaled.reading))
                depth_m = scaled.depth_m
                clock.lap("scale")
        if depth_m is not None and self._wanted("depth"):
            self._send(clock, "depth", self.images["depth"].fill(depth_m, "32FC1", header))
        if self._wanted("depth/colored"):
            shown = colorize(values if depth_m is None else depth_m, depth_m is None)
            self._send(
                clock, "depth/colored", self.images["depth/colored"].fill(shown, "rgb8", header)
            )
        if depth_m is None:
            return
        problem = camera_info.camera_info_problem(
            self._camera_info, rgb.shape[1], rgb.shape[0], s.camera_rectified
        )
        if problem is not None:
            self.reporter.report(problem.kind, problem.text, error=problem.error, once=problem.once)
            return
        self.reporter.resolve(camera_info.FAMILY)
        points = s.points_enabled and self._wanted("points")
        scan = s.scan_enabled and self._wanted("scan")
        if not (points or scan or self._wanted("depth/camera_info")):
            return
        depth_info = camera_info.scaled_camera_info(self._camera_info, header, width, height)
        if self._wanted("depth/camera_info"):
            self._send(clock, "depth/camera_info", depth_info)
        if not (points or scan):
            return
        lens = camera_info.lens_of(depth_info, s.camera_rectified)
        if lens.warning:  # an unknown distortion model: said once (until fixed), a pinhole
            self.reporter.report("lens:distortion", lens.warning, once=True)
        else:
            self.reporter.resolve("lens")
        if points:
            colours = outputs.rgb_at(rgb, height, width) if s.points_color else None
            self._send(clock, "points", self.cloud.fill(depth_m, lens.lens, colours, header))
        if scan:
            self._publish_scan(clock, depth_m, lens.lens, header)

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

    def _wanted(self, topic: str) -> bool:
        return self.pub[topic].get_subscription_count() > 0

    def _send(self, clock: FrameClock, topic: str, msg: Any) -> None:
        """Publish ``msg``: the lap so far was building it. It is serialised before
        ``publish()`` returns, so its reused buffers may be refilled for the next frame."""
        clock.lap(f"{topic} build")
        self.pub[topic].publish(msg)
        clock.lap(f"{topic} publish")

    # ---- diagnostics ------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        now, name = self.get_clock().now(), self.get_name()
        state = diagnostics.snapshot(
            self.stats, self.mailbox, self.engine, self.reporter.problem(), self.model_name
        )
        statuses = [diagnostics.node_status(name, state)]
        if self.scale is not None:
            scale = self.scale.status(now.nanoseconds * 1e-9)
            statuses.append(diagnostics.scale_status(name, scale))
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=now.to_msg()), status=statuses))

    def stop(self) -> None:
        self._stopping.set()
        self.mailbox.close()
        self._worker.join(timeout=STOP_WAIT_S)


def _stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def main(args: list[str] | None = None) -> int:
    """Console script ``depth_node``: exit 0 on shutdown, 1 if the node cannot start.

    The process ends as soon as the node is cleaned up: the interpreter's own teardown
    (torch, Open3D, DDS modules) takes seconds, and SIGINT/SIGTERM must stop the node
    within 2 s. Nothing is lost: the worker is joined and logs are flushed first.
    """
    code = run(args)
    discard_unfinished_builds()  # a cache build cut short by the exit leaves no temp file
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)  # rcutils writes through C stdio
    os._exit(code)


def run(args: list[str] | None = None) -> int:
    """Start the node and spin until shutdown; 0 on shutdown, 1 if it cannot start."""
    transport = use_large_data_profile()  # before rclpy.init: the participant reads it
    rclpy.init(args=args)
    log_choice(rclpy.logging.get_logger(NODE_NAME), transport)
    node = None
    try:
        node = DepthNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
