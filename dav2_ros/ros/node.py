"""``dav2_depth``: camera image (+ camera_info) in; metric depth, camera_info, points, scan out.

Two executables, one wiring: ``depth_node`` (``DepthNode``) configures and activates at
start; ``depth_lifecycle_node`` (``DepthLifecycleNode``) does so on its lifecycle
transitions (configure loads the model and builds the engine, activate publishes,
cleanup releases them). The node is the only owner of ROS handles; the work is plain
logic it calls: ``FramePipeline`` (one frame, decode → outputs), ``EngineSupervisor``,
``ScaleSource``, the input QoS matching (``qos``) and loss meter (``input_loss``), the
parameter answers (``runtime_params``), all saying problems through one ``Reporter``.
Subscription callbacks only park the newest frame in a depth-1 mailbox; one worker
thread runs the model and publishes.
"""

from __future__ import annotations

import time
from functools import partial
from importlib.util import find_spec
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float64MultiArray, Header

from dav2_ros.reporting import Reporter
from dav2_ros.ros import conversions, diagnostics, input_loss, qos, startup
from dav2_ros.ros.configured import Configured, Frame
from dav2_ros.ros.executable import run_executable
from dav2_ros.ros.frame_pipeline import FramePipeline, output_types, stamp_s
from dav2_ros.ros.parameters import NodeSettings, declare_parameters, parameter_values
from dav2_ros.ros.qos import InputPort, input_ports, input_qos, output_qos, reliability_name
from dav2_ros.ros.runtime_params import answer_change
from dav2_ros.ros.startup import StartupError
from dav2_ros.ros.tf_lookup import tf_lookup
from dav2_ros.scale.source import ScaleSource, SparseDepth

NODE_NAME = "dav2_depth"
STOP_WAIT_S = 1.0  # how long a stop waits for an inference in flight (a stop takes < 2 s)
CLEANUP_WAIT_S = 30.0  # cleanup: the inference in flight ends before its engine is closed


class DepthWiring:
    """Both executables' wiring, mixed into an rclpy ``Node`` or ``LifecycleNode``."""

    managed = False  # depth_lifecycle_node: parameters it can rebuild with cleanup/configure

    def _start_wiring(self) -> None:
        log = self.get_logger()
        self.reporter = Reporter(log.info, log.warning, log.error)
        self.refused_values = declare_parameters(self)  # a value rclpy refused at start
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.run: Configured | None = None
        self.active = False
        self.state_label = "unconfigured"
        self._camera_info: CameraInfo | None = None
        self.loss = input_loss.StampGapMeter()
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._tick)

    # ---- lifecycle ------------------------------------------------------------------
    def configure(self) -> None:
        """Check the parameters, load the model, build the engine on a warm-up frame, wire
        the outputs and inputs; StartupError (nothing kept) if any of it fails."""
        if self.refused_values:
            raise StartupError("; ".join(self.refused_values.values()))
        s = startup.settings_of(parameter_values(self))
        built = startup.model_engine(s, self.reporter, strict=self.managed)
        out_qos = output_qos(s.output_reliability)
        outputs = output_types(built.confidence).items()
        pubs = {topic: self.create_publisher(t, topic, out_qos) for topic, t in outputs}
        depth_type = built.meta.depth_type
        scale = self._wire_scale(s, depth_type, pubs)
        pipeline = FramePipeline(
            s, built.engine, scale, depth_type, self.reporter, self, built.focal.enabled
        )
        ports = input_ports(s, self._on_image, self._on_camera_info, self._on_sparse)
        run = Configured(s, built.name, built.engine, pipeline, pubs, ports, built.stopping)
        for port in run.ports:
            self._subscribe(port, startup.first_reliability(s.input_reliability))
        run.start_worker(self._work)
        self.run, self.state_label = run, "inactive"
        self.reporter.resolve("configure")
        word = "configured" if self.managed else "ready"  # depth_node is active at once
        self.reporter.info(
            f"{word}: model {built.name}, backend {s.backend}, input_size {built.input_size}, "
            f"confidence {built.confidence}, focal correction: {built.focal.reason}, "
            f"subscribed to {run.ports[0].topic} (qos.input_reliability {s.input_reliability})"
        )

    def activate(self) -> None:
        self.active, self.state_label = True, "active"

    def deactivate(self) -> None:
        """Silent from now on: waits for a frame in flight, forgets the parked one."""
        self.active, self.state_label = False, "inactive"
        # An engine backing off holds its frame for seconds: publish() checks active anyway.
        if self.run is not None and self.run.frame_lock.acquire(timeout=STOP_WAIT_S):
            self.run.mailbox.get(timeout_s=0.0)
            self.run.frame_lock.release()

    def cleanup(self, wait_s: float = CLEANUP_WAIT_S) -> None:
        """Back to unconfigured: the worker stopped (after at most ``wait_s``), handles
        destroyed, model released."""
        run, self.run = self.run, None
        self.active, self.state_label = False, "unconfigured"
        if run is None:
            return
        run.stopping.set()
        run.mailbox.close()
        if run.worker is not None:
            run.worker.join(timeout=wait_s)
        for port in run.ports:
            self.destroy_subscription(port.handle)
        for publisher in run.publishers.values():
            self.destroy_publisher(publisher)
        run.engine.estimator.close()
        del run
        startup.release_memory()

    # ---- callbacks: never wait for the model ---------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        run = self.run
        if run is None or not self.active:
            return  # inactive: not decoded
        self.loss.add(stamp_s(msg.header), time.monotonic())
        run.stats.input_rate.tick()
        if not any(p.get_subscription_count() for p in run.publishers.values()):
            run.stats.skipped_no_subscriber += 1
            return
        run.mailbox.put(Frame(msg, time.monotonic()))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_sparse(self, msg: Image | PointCloud2) -> None:
        run = self.run
        if run is None or not self.active or run.pipeline.scale is None:
            return
        image = isinstance(msg, Image)
        decode = partial(conversions.image_to_metres if image else conversions.cloud_to_xyz, msg)
        run.pipeline.scale.add_sparse(SparseDepth(stamp_s(msg.header), msg.header.frame_id, decode))

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        configured = self.run is not None
        answer = answer_change(changes, parameter_values(self), configured, self.managed)
        if answer.accepted:
            for name in changes:
                self.refused_values.pop(name, None)
            if answer.settings is not None and self.run is not None:
                self.run.settings = answer.settings
                self.run.pipeline.retune(answer.settings)  # from the next frame on
        return SetParametersResult(successful=answer.accepted, reason=answer.reason)

    # ---- Sink of the frame pipeline --------------------------------------------------
    def wanted(self, topic: str) -> bool:
        publisher = self.run.publishers.get(topic) if self.run is not None else None
        return publisher is not None and publisher.get_subscription_count() > 0

    def publish(self, topic: str, msg: Any) -> None:
        if self.active and self.run is not None:
            self.run.publishers[topic].publish(msg)

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- wiring helpers ------------------------------------------------------------
    def _wire_scale(self, s: NodeSettings, depth_type: str, pubs: dict) -> ScaleSource | None:
        """``scale.*``: depth/scale out (sparse_depth in: an input port). A metric model's
        inverse depth is re-scaled as a relative model's disparity would be."""
        if s.scale.mode == "none":
            return None
        lookup, points = None, s.scale.mode == "sparse" and s.scale.sparse_type == "points"
        if points and s.scale.use_tf and find_spec("tf2_ros"):  # ROS installs; else extrinsic.*
            import tf2_ros

            buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(buffer, self)
            lookup = tf_lookup(buffer)
        source = ScaleSource(s.scale, self.reporter, lookup, depth_type)
        pubs["depth/scale"] = self.create_publisher(Float64MultiArray, "depth/scale", 10)
        self.reporter.info(source.summary())
        return source

    def _subscribe(self, port: InputPort, reliability: str) -> None:
        """(Re)create ``port``'s subscription with ``reliability``; an incompatible
        publisher (a best-effort camera for a reliable reader) is reported."""
        if port.handle is not None:
            self.destroy_subscription(port.handle)
        events = SubscriptionEventCallbacks(incompatible_qos=partial(self._on_incompatible, port))
        port.handle = self.create_subscription(
            port.msg_type, port.topic, port.callback, input_qos(reliability), event_callbacks=events
        )
        port.reliability = reliability

    def _on_incompatible(self, port: InputPort, info: Any) -> None:
        text = port.incompatible_text()  # said once, on /diagnostics until it is compatible
        self.reporter.report(f"qos:{port.topic}", text, error=True, once=True)

    def _rematch_inputs(self, run: Configured) -> None:
        for port in run.ports:
            infos = self.get_publishers_info_by_topic(port.handle.topic_name)
            port.offered = [reliability_name(i.qos_profile.reliability) for i in infos]
            if port.choice == qos.AUTO and port.matched() != port.reliability:
                self._subscribe(port, port.matched())
                self.reporter.info(port.choice_text())
            if port.compatible():
                self.reporter.resolve(f"qos:{port.topic}")

    # ---- worker thread and the 1 Hz tick ---------------------------------------------
    def _work(self, run: Configured) -> None:
        while not run.mailbox.closed:
            frame = run.mailbox.get(timeout_s=0.5)
            if frame is None or not self.context.ok():
                continue
            with run.frame_lock:  # a deactivate waits for the frame in flight
                run.pipeline.serve(frame.msg, self._camera_info, run.stats, frame.received_s)

    def _tick(self) -> None:
        """Once a second: re-match the inputs' QoS, judge input loss, /diagnostics."""
        run, now = self.run, self.get_clock().now()
        if run is not None:
            self._rematch_inputs(run)
            loss = self.loss.loss(time.monotonic())
            if loss.significant and self.active:
                self.reporter.report("input:loss", input_loss.advice(loss, run.ports[0]))
            else:
                self.reporter.resolve("input:loss")
        statuses = diagnostics.statuses(self.get_name(), self, now.nanoseconds * 1e-9)
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=now.to_msg()), status=statuses))

    def stop(self) -> None:
        self.deactivate()
        self.cleanup(STOP_WAIT_S)


class DepthNode(DepthWiring, Node):
    """``depth_node``: configured and active from the start; StartupError if it cannot."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._start_wiring()
        self.configure()
        self.activate()


class DepthLifecycleNode(DepthWiring, LifecycleNode):
    """``depth_lifecycle_node``: the same node, brought up by a lifecycle manager."""

    managed = True

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._start_wiring()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure()
        except Exception as exc:  # StartupError, or an engine that failed to build
            self.reporter.report("configure", f"configure failed: {exc}", error=True)
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.state_label = "finalized"
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Console script ``depth_node``: exit 0 on shutdown, 1 if the node cannot start."""
    return run_executable(DepthNode, NODE_NAME, args)


def main_lifecycle(args: list[str] | None = None) -> int:
    """Console script ``depth_lifecycle_node``: a managed node, unconfigured at start."""
    return run_executable(DepthLifecycleNode, NODE_NAME, args)
