"""``dav2_depth``: camera image (+ camera_info) in, metric depth, camera_info, points out.

A thin wiring shell over pure functions (``image_decode``, ``outputs``, ``messages``,
``geometry``): subscription callbacks only park the newest frame in a depth-1 mailbox;
one worker thread runs the model and publishes. The engine is built lazily for the
camera's resolution (rebuilt only if it changes), never per frame.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from dav2_ros.engines import DepthEstimator, EngineConfig, backend_names, create_engine
from dav2_ros.engines.cache import discard_unfinished_builds
from dav2_ros.geometry import IntrinsicsError
from dav2_ros.model.transforms import model_input_size
from dav2_ros.ros import outputs
from dav2_ros.ros.colorize import colorize
from dav2_ros.ros.diagnostics import DiagnosticsSnapshot, diagnostics_msg
from dav2_ros.ros.image_decode import ImageDecodeError, compressed_to_rgb, image_to_rgb
from dav2_ros.ros.mailbox import LatestMailbox
from dav2_ros.ros.messages import (
    float_image_msg,
    intrinsics_of,
    pointcloud_msg,
    rgb_image_msg,
    scaled_camera_info,
)
from dav2_ros.ros.parameters import NodeSettings, ParameterError, declare_and_read
from dav2_ros.ros.parameters import settings_from_values as _settings
from dav2_ros.ros.qos import input_qos, output_qos
from dav2_ros.ros.scale_source import ScaleSource  # also registers the scale.* parameters
from dav2_ros.ros.stats import LatencyWindow, RateMeter
from dav2_ros.ros.transport import log_choice, use_large_data_profile

NODE_NAME = "dav2_depth"
THROTTLE_S = 5.0
DEFAULT_INPUT_SIZE = 518
# After an engine failure the worker waits, doubling per failure in a row, then rebuilds
# the engine: a broken device is not hammered, and a transient fault heals by itself.
ENGINE_RETRY_FIRST_S = 0.5
ENGINE_RETRY_MAX_S = 30.0
# How long stop() waits for an inference in flight; the whole stop must take < 2 s.
STOP_WAIT_S = 1.0


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing checkpoint); the message says why."""


class EngineFault(RuntimeError):
    """Building or running the engine failed (the cause is chained); the frame is lost."""


@dataclass
class Frame:
    msg: Image | CompressedImage
    received_s: float  # time.monotonic() at the callback


class DepthNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        try:
            values = declare_and_read(self)
            self.settings: NodeSettings = _settings(values)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc
        backend = self.settings.backend
        if backend not in backend_names() and ":" not in backend:
            raise StartupError(
                f"parameter 'engine.backend': unknown backend {backend!r}; expected one of "
                f"{', '.join(backend_names())} or a plugin 'package.module:factory'"
            )
        self.loaded = _load_model(self.settings)
        try:
            self.scale = ScaleSource(self, values, self.loaded.meta.depth_type)
        except ParameterError as exc:
            raise StartupError(str(exc)) from exc
        meta = self.loaded.meta
        self.input_size = self.settings.input_size or meta.input_size or DEFAULT_INPUT_SIZE
        self.model_name = (
            f"{meta.encoder} {meta.depth_type}"
            + (f" max_depth={meta.max_depth:g}m" if meta.depth_type == "metric" else "")
            + f" ({self.settings.checkpoint or 'bundled default'})"
        )
        self._estimator: DepthEstimator | None = None
        self._estimator_hw: tuple[int, int] | None = None
        self.engine_name = "not built yet (waiting for the first frame)"

        self._camera_info: CameraInfo | None = None
        self.mailbox: LatestMailbox[Frame] = LatestMailbox()
        self.input_rate, self.output_rate = RateMeter(), RateMeter()
        self.latency = LatencyWindow()
        self.infer_ms = LatencyWindow()  # Engine.infer alone
        self.engine_ms = LatencyWindow()  # preprocess + infer + postprocess
        self.rejected = 0
        self.skipped_no_subscriber = 0
        self.engine_failures = 0  # in total; ``_failures_in_row`` drives the back-off
        self._failures_in_row = 0
        self._stopping = threading.Event()
        self._problem, self._problem_is_error = "", False
        self._last_log: dict[str, float] = {}
        self._said_once: set[str] = set()  # "say so once" warnings, until the cause is gone

        out_qos = output_qos(self.settings.output_reliability)
        self.pub_depth = self.create_publisher(Image, "depth", out_qos)
        self.pub_info = self.create_publisher(CameraInfo, "depth/camera_info", out_qos)
        self.pub_relative = self.create_publisher(Image, "depth/relative", out_qos)
        self.pub_colored = self.create_publisher(Image, "depth/colored", out_qos)
        self.pub_points = self.create_publisher(PointCloud2, "points", out_qos)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        in_qos = input_qos(self.settings.input_reliability)
        if self.settings.image_transport == "compressed":
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, in_qos)
        else:
            self.create_subscription(Image, "image", self._on_image, in_qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, in_qos)
        self.create_timer(1.0, self._publish_diagnostics)

        self._worker = threading.Thread(target=self._work, name="dav2_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: model {self.model_name}, backend {self.settings.backend}, "
            f"input_size {self.input_size}, subscribed to "
            f"{'image/compressed' if self.settings.image_transport == 'compressed' else 'image'}"
        )

    # ---- callbacks: never wait for the model ------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.input_rate.tick()
        if not self._anyone_listening():
            self.skipped_no_subscriber += 1
            return
        self.mailbox.put(Frame(msg, time.monotonic()))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _anyone_listening(self) -> bool:
        publishers = (self.pub_depth, self.pub_info, self.pub_relative, self.pub_colored)
        return any(p.get_subscription_count() for p in (*publishers, self.pub_points))

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
            except ImageDecodeError as exc:
                self.rejected += 1
                self._report(f"bad_image:{exc.kind}", f"dropped a bad image: {exc}", error=True)
            except EngineFault as exc:
                self._engine_failed(exc.__cause__ or exc)
            except Exception as exc:  # keep serving: one bad frame must not end the node
                if not self.context.ok():
                    return
                self._report("frame_failed", f"frame failed: {type(exc).__name__}: {exc}", True)

    def _process(self, frame: Frame) -> None:
        msg = frame.msg
        rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        output_hw = rgb.shape[:2] if self.settings.output_resolution == "input" else (0, 0)
        try:
            estimator = self._estimator_for(rgb.shape[0], rgb.shape[1])
            prediction = estimator.predict(rgb, output_hw)
        except Exception as exc:
            raise EngineFault(str(exc)) from exc
        if self._failures_in_row:
            self._engine_recovered()
        header = Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id)
        self._publish(header, rgb, prediction)
        self.infer_ms.add(prediction.infer_ms)
        self.engine_ms.add(prediction.total_ms)
        self.output_rate.tick()
        self.latency.add((time.monotonic() - frame.received_s) * 1e3)

    def _estimator_for(self, height: int, width: int) -> DepthEstimator:
        if self._estimator is not None and self._estimator_hw == (height, width):
            return self._estimator
        if self._estimator is not None:
            self._estimator.engine.close()
            self.get_logger().warn(f"camera resolution changed to {width}x{height}: rebuilding")
        config = EngineConfig(
            backend=self.settings.backend,
            device=self.settings.device,
            precision=self.settings.precision,
            input_hw=model_input_size(height, width, self.input_size),
            options={"threads": self.settings.threads} if self.settings.threads else {},
        )
        engine = create_engine(self.loaded.model, config)
        self._estimator = DepthEstimator(engine, self.loaded.meta.depth_type, self.input_size)
        self._estimator_hw = (height, width)
        self.engine_name = engine.description
        self.get_logger().info(f"engine for {width}x{height} images: {engine.description}")
        for skipped in getattr(engine, "skipped_backends", []):  # backend "auto" says why
            self.get_logger().warn(f"engine auto: skipped {skipped}")
        return self._estimator

    def _engine_failed(self, exc: BaseException) -> None:
        """Report, drop the engine (it may be left broken) and wait before the next try."""
        self.engine_failures += 1
        self._failures_in_row += 1
        delay_s = min(ENGINE_RETRY_MAX_S, ENGINE_RETRY_FIRST_S * 2 ** (self._failures_in_row - 1))
        self._report(
            "engine",
            f"engine failed ({self._failures_in_row} in a row): {type(exc).__name__}: {exc}; "
            f"rebuilding it and retrying in {delay_s:.1f} s",
            error=True,
        )
        if self._estimator is not None:
            try:
                self._estimator.engine.close()
            except Exception as close_exc:  # a broken engine may fail to close, too
                self.get_logger().warn(f"closing the failed engine: {close_exc}")
        self._estimator, self._estimator_hw = None, None
        self.engine_name = f"failed, retrying in {delay_s:.1f} s: {type(exc).__name__}: {exc}"
        self._stopping.wait(delay_s)  # frames arriving meanwhile replace each other (drops)

    def _engine_recovered(self) -> None:
        self.get_logger().info(
            f"engine recovered after {self._failures_in_row} failures: {self.engine_name}"
        )
        self._failures_in_row = 0
        self._problem = ""

    def _publish(self, header: Header, rgb: np.ndarray, prediction: Any) -> None:
        values = prediction.values
        height, width = values.shape
        if prediction.depth_type == "relative":
            self.pub_relative.publish(float_image_msg(header, values))
        depth_m = self.scale.to_metres(prediction, header, self._camera_info)
        if self.pub_colored.get_subscription_count():
            shown = values if depth_m is None else depth_m
            self.pub_colored.publish(rgb_image_msg(header, colorize(shown, depth_m is None)))
        if depth_m is None:
            return
        self.pub_depth.publish(float_image_msg(header, depth_m))
        info = self._usable_camera_info(rgb.shape[1], rgb.shape[0])
        if info is None:
            return
        depth_info = scaled_camera_info(info, header, width, height)
        self.pub_info.publish(depth_info)
        if self.settings.points_enabled and self.pub_points.get_subscription_count():
            colours = outputs.rgb_at(rgb, height, width) if self.settings.points_color else None
            cloud = outputs.organised_cloud(
                depth_m,
                intrinsics_of(depth_info),
                self.settings.points_stride,
                self.settings.points_max_range_m,
                colours,
            )
            self.pub_points.publish(pointcloud_msg(header, cloud))

    def _usable_camera_info(self, image_width: int, image_height: int) -> CameraInfo | None:
        """The latest camera_info if it calibrates this image; else None and a warning."""
        info = self._camera_info
        if info is None:
            self._report(
                "no_info", "no camera_info received: publishing depth without points", once=True
            )
            return None
        if (info.width, info.height) != (image_width, image_height):
            self._report(
                "info_size",
                f"camera_info is for {info.width}x{info.height} but the image is "
                f"{image_width}x{image_height}: publishing depth without camera_info and "
                "points; remap camera_info to the camera that publishes this image",
                error=True,
            )
            return None
        try:
            calibrated = intrinsics_of(info).is_calibrated
        except IntrinsicsError:
            calibrated = False
        if not calibrated and not np.isfinite(info.k).all():
            self._report(
                "info_k_not_finite",
                f"camera_info K has NaN or Inf values ({np.asarray(info.k).tolist()}): "
                "publishing depth without camera_info and points; fix the camera's calibration",
                error=True,
            )
            return None
        if not calibrated:
            self._report(
                "uncalibrated", "camera_info K is zero (uncalibrated): no points", once=True
            )
            return None
        self._problem = ""
        self._said_once.clear()  # calibrated again: a later loss is worth saying again
        return info

    # ---- reporting --------------------------------------------------------------------
    def _report(self, kind: str, text: str, error: bool = False, once: bool = False) -> None:
        """Throttled per kind, so each different problem is still said; ``once``: said a
        single time until the problem goes away (ROS convention for missing calibration)."""
        self._problem, self._problem_is_error = text, error
        if once:
            if kind in self._said_once:
                return
            self._said_once.add(kind)
        now = time.monotonic()
        if now - self._last_log.get(kind, -1e9) < THROTTLE_S:
            return
        self._last_log[kind] = now
        # Two call sites: rclpy refuses one call site logging at two severities.
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().warn(text)

    def snapshot(self) -> DiagnosticsSnapshot:
        return DiagnosticsSnapshot(
            input_fps=self.input_rate.rate_hz(),
            output_fps=self.output_rate.rate_hz(),
            latency_p50_ms=self.latency.percentile_ms(50),
            latency_p95_ms=self.latency.percentile_ms(95),
            infer_ms_p50=self.infer_ms.percentile_ms(50),
            engine_ms_p50=self.engine_ms.percentile_ms(50),
            frames_received=self.mailbox.received,
            frames_dropped=self.mailbox.dropped,
            frames_rejected=self.rejected,
            frames_skipped_no_subscriber=self.skipped_no_subscriber,
            engine=self.engine_name,
            model=self.model_name,
            problem=self._problem,
            level_error=self._problem_is_error,
            engine_failures=self.engine_failures,
        )

    def _publish_diagnostics(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg())
        self.pub_diag.publish(diagnostics_msg(header, self.get_name(), self.snapshot()))

    def stop(self) -> None:
        self._stopping.set()
        self.mailbox.close()
        self._worker.join(timeout=STOP_WAIT_S)


def _load_model(settings: NodeSettings) -> Any:
    try:
        from dav2_ros.model.checkpoints import CheckpointError, load_model
    except ImportError as exc:
        raise StartupError(f"the checkpoint loader is not installed: {exc}") from exc
    try:
        return load_model(
            settings.checkpoint or None,
            encoder=settings.encoder or None,
            depth_type=None if settings.depth_type == "auto" else settings.depth_type,
            max_depth=settings.max_depth_m or None,
        )
    except (CheckpointError, OSError, ValueError) as exc:
        where = f"'{settings.checkpoint}'" if settings.checkpoint else "the bundled default"
        raise StartupError(
            f"cannot load the model from {where} (parameter 'model.checkpoint'): {exc}"
        ) from exc


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
