"""Monitor node ``dav2_demo_monitor``: consumes ``depth`` and ``points`` like a nav stack.

Scores each depth image against the camera's ground truth (paired by stamp),
measures latency from the image stamp to arrival, reads engine time from
/diagnostics, prints a live line and writes panels, one PLY and summary.json.
With ``sparse`` (the node in ``scale.mode: sparse``) it also scores the model's own
metres, from ``depth/relative`` (a metric model's inverse depth), on the same frames,
and draws the camera's ``sparse_depth`` returns on the panels.
"""

from __future__ import annotations

import json
import sys
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, PointCloud2

from dav2_ros.demo.lifecycle import run_node
from dav2_ros.demo.metrics import depth_errors
from dav2_ros.demo.pairing import StampJoiner, stamp_ns
from dav2_ros.demo.panels import make_panel
from dav2_ros.demo.report import (
    CameraWindow,
    RunStats,
    engine_ms_from_diagnostics,
    sparse_summary,
)
from dav2_ros.geometry import write_ply
from dav2_ros.ros.conversions import cloud_to_rgb, cloud_to_xyz, image_to_array, image_to_rgb
from dav2_ros.ros.diagnostics import NODE_STATUS_NAME, SCALE_STATUS_NAME

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
EXIT_NO_OUTPUT = 3


# Parameters and defaults (data, so launch files can be checked against it).
PARAMETERS: dict[str, object] = {
    "out_dir": "demo_out",
    "duration_s": 30.0,  # measured window, from the first counted depth image
    "startup_timeout_s": 180.0,
    "panel_every": 25,
    "max_panels": 12,
    "live_every_s": 2.0,
    "warmup_frames": 3,  # first outputs include the engine build: not steady state
    "sparse": False,  # the node fits sparse_depth: also score the model alone
}


class DemoMonitor(Node):
    def __init__(self) -> None:
        super().__init__("dav2_demo_monitor")
        p = {name: self.declare_parameter(name, value).value for name, value in PARAMETERS.items()}
        self.out_dir = Path(p["out_dir"])
        self.duration_s, self.startup_timeout_s = float(p["duration_s"]), p["startup_timeout_s"]
        self.panel_every, self.max_panels = int(p["panel_every"]), int(p["max_panels"])
        self.live_every_s, self.warmup_frames = float(p["live_every_s"]), int(p["warmup_frames"])
        self.warmup_seen = 0
        self.sparse = bool(p["sparse"])
        self.camera_frames_seen = 0
        self.out_dir.mkdir(parents=True, exist_ok=True)

        self.stats = RunStats()
        self.camera_window = CameraWindow()
        parts = ("gt", "depth", "relative") if self.sparse else ("gt", "depth")
        self.frames = StampJoiner(parts)
        self.rgb_by_stamp: OrderedDict[int, np.ndarray] = OrderedDict()
        self.sparse_by_stamp: OrderedDict[int, np.ndarray] = OrderedDict()
        self.last_cloud: bytes | None = None
        self.last_diagnostics: dict[str, str] = {}
        self.last_scale_diagnostics: dict[str, str] = {}
        self.last_scored_stamp = 0
        self.panels: list[str] = []
        self.started_s = time.monotonic()
        self.first_out_s: float | None = None
        self.done = False
        self.exit_code = 0

        self.create_subscription(Image, "ground_truth/depth", self._on_ground_truth, RELIABLE)
        # The camera publishes images best effort, as drivers do (camera.CAMERA_QOS).
        self.create_subscription(Image, "image", self._on_image, qos_profile_sensor_data)
        self.create_subscription(Image, "depth", self._on_depth, RELIABLE)
        # Raw (serialized) clouds: a 640×480 colour cloud is ~10 MB and deserializing
        # each in Python would cost the 2-core machine ~20 % of a core; only the one
        # written to the PLY is deserialized.
        self.create_subscription(PointCloud2, "points", self._on_points, RELIABLE, raw=True)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        if self.sparse:
            self.create_subscription(Image, "depth/relative", self._on_relative, RELIABLE)
            self.create_subscription(
                Image, "sparse_depth", self._on_sparse, qos_profile_sensor_data
            )
        self.create_timer(self.live_every_s, self._print_live_line)
        self.create_timer(0.2, self._check_end)

    # -- inputs -------------------------------------------------------------------------
    def _on_ground_truth(self, msg: Image) -> None:
        self.camera_frames_seen += 1
        self.camera_window.add(stamp_ns(msg.header))
        self.stats.frames_in = self.camera_window.frames  # camera frames in the window only
        self._join("gt", stamp_ns(msg.header), image_to_array(msg, ("32FC1",)))

    def _on_image(self, msg: Image) -> None:
        # Kept only for the panels: RGB of the frames a panel will show.
        _keep_recent(self.rgb_by_stamp, stamp_ns(msg.header), image_to_rgb(msg))

    def _on_sparse(self, msg: Image) -> None:
        _keep_recent(self.sparse_by_stamp, stamp_ns(msg.header), image_to_array(msg, ("32FC1",)))

    def _on_relative(self, msg: Image) -> None:
        self._join("relative", stamp_ns(msg.header), image_to_array(msg, ("32FC1",)))

    def _on_depth(self, msg: Image, info: dict) -> None:
        # Reception time stamped by the middleware: not delayed by this node's own work.
        received_ns = info.get("received_timestamp") or time.time_ns()
        stamp = stamp_ns(msg.header)
        now_s = time.monotonic()
        if self.warmup_seen < self.warmup_frames:
            self.warmup_seen += 1
            self._join("depth", stamp, None)  # completes its frame, which is not scored
            return
        if self.first_out_s is None:
            self.first_out_s = now_s
            self.camera_window.open(stamp)
            self.get_logger().info(
                f"depth images arriving; measuring from now (skipped {self.warmup_frames} "
                "warm-up frames)"
            )
        self.stats.add_output(now_s, (received_ns - stamp) / 1e6)
        self.camera_window.add(stamp)  # its ground truth may still be queued
        self.stats.frames_in = self.camera_window.frames
        self._join("depth", stamp, image_to_array(msg, ("32FC1",)))

    def _on_points(self, serialized: bytes) -> None:
        self.stats.clouds += 1
        self.last_cloud = serialized

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == NODE_STATUS_NAME:  # not the metric scale's status beside it
                self.last_diagnostics = values
            elif status.name == SCALE_STATUS_NAME:
                self.last_scale_diagnostics = values
            found = engine_ms_from_diagnostics(values)
            if found is not None and self.first_out_s is not None:
                key, value_ms = found
                self.stats.add_engine_ms(value_ms, f"/diagnostics '{status.name}': {key}")

    # -- work -----------------------------------------------------------------------------
    def _join(self, part: str, stamp: int, image: np.ndarray | None) -> None:
        joined = self.frames.add(part, stamp, image)
        if joined is not None:
            self._score(stamp, joined)

    def _score(self, stamp: int, joined: dict[str, np.ndarray]) -> None:
        if joined["depth"] is None:  # a warm-up frame
            return
        gt_m = joined["gt"]
        depth_m = _at_size(joined["depth"], gt_m.shape)
        errors = depth_errors(depth_m, gt_m)
        if errors is None:
            return
        model_m = model_alone = None
        if self.sparse:  # the model's own metres: 1/disparity (metres only if it is metric)
            with np.errstate(divide="ignore"):
                model_m = 1.0 / _at_size(joined["relative"], gt_m.shape)
            model_alone = depth_errors(model_m, gt_m)
            if model_alone is None:
                return
        self.stats.add_errors(errors, model_alone)
        self.last_scored_stamp = max(self.last_scored_stamp, stamp)
        scored = len(self.stats.abs_rel)
        rgb = self.rgb_by_stamp.get(stamp)
        # In --sparse runs a panel needs the model's depth type (from the node's scale status on
        # /diagnostics, 1 Hz), which may arrive after the first scored frames: the first panel is
        # then the first frame scored after it.
        depth_type_known = not self.sparse or "model_depth_type" in self.last_scale_diagnostics
        if (
            rgb is not None
            and depth_type_known
            and len(self.panels) < self.max_panels
            and (not self.panels or scored % self.panel_every == 0)
        ):
            self._write_panel(scored, rgb, depth_m, gt_m, errors, model_m, model_alone, stamp)

    def _write_panel(self, scored, rgb, depth_m, gt_m, errors, model_m, model_alone, stamp):
        caption = f"frame {scored}  AbsRel {errors.abs_rel:.3f}  d1 {errors.delta1:.3f}"
        metric_model = self.last_scale_diagnostics.get("model_depth_type") == "metric"
        if self.sparse:
            alone = (
                f"model alone AbsRel {model_alone.abs_rel:.3f} d1 {model_alone.delta1:.3f}"
                if metric_model
                else "model alone: relative, no metres"
            )
            caption = f"frame {scored}  {alone}  |  with sparse fit AbsRel " + (
                f"{errors.abs_rel:.3f} d1 {errors.delta1:.3f}"
            )
        path = self.out_dir / f"panel_{scored:05d}.png"
        panel = make_panel(
            rgb,
            depth_m,
            gt_m,
            caption,
            model_alone_m=model_m if metric_model else None,
            sparse_m=self.sparse_by_stamp.get(stamp) if self.sparse else None,
            pred_title="with sparse fit" if self.sparse else "predicted depth",
        )
        cv2.imwrite(str(path), panel)
        self.panels.append(path.name)

    def _print_live_line(self) -> None:
        now_s = time.monotonic()
        if self.first_out_s is not None:
            print(self.stats.live_line(now_s - self.first_out_s), flush=True)
        elif int((now_s - self.started_s) / self.live_every_s) % 5 == 4:  # every ~10 s
            print(
                f"[start] waiting for depth images: {now_s - self.started_s:.0f} s, camera "
                f"frames seen {self.camera_frames_seen} (the camera renders its clip first; "
                "the node builds its engine on the first image)",
                flush=True,
            )

    def _check_end(self) -> None:
        now_s = time.monotonic()
        if self.first_out_s is not None:
            over_s = now_s - self.first_out_s - self.duration_s
            # The node's engine is read from /diagnostics (1 Hz): wait a little for one.
            self.done = over_s >= 0 and ("engine" in self.last_diagnostics or over_s > 3.0)
        elif now_s - self.started_s > self.startup_timeout_s:
            self.get_logger().error(
                f"no depth image arrived within {self.startup_timeout_s:g} s; "
                "is depth_node running and subscribed to 'image'?"
            )
            self.exit_code = EXIT_NO_OUTPUT
            self.done = True

    def finish(self) -> dict:
        """Write the PLY and summary.json; return the summary."""
        window_s = time.monotonic() - (self.first_out_s or self.started_s)
        summary = self.stats.summary(window_s)
        files = {"panels": self.panels, "ply": None}
        if self.last_cloud is not None:
            cloud = deserialize_message(self.last_cloud, PointCloud2)
            count = write_ply(self.out_dir / "points.ply", cloud_to_xyz(cloud), cloud_to_rgb(cloud))
            files["ply"] = "points.ply"
            summary["ply_points"] = count
        summary["files"] = files
        # Frames the node skipped (or, with --sparse, withheld for want of a fit).
        summary["ground_truth_unmatched"] = self.frames.evicted_having("gt")
        summary["node_diagnostics"] = self.last_diagnostics
        if self.sparse:
            scale = self.last_scale_diagnostics
            # Frames the node ran the model on but published no fitted depth for.
            no_fit = frozenset(("gt", "relative"))
            withheld = self.frames.evicted_with[no_fit]
            withheld += self.frames.pending_with(no_fit, self.last_scored_stamp)
            model_type = scale.get("model_depth_type", "")
            summary["sparse"] = sparse_summary(self.stats, model_type, scale, withheld)
            summary["scale_diagnostics"] = scale
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def _at_size(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if image.shape == shape:
        return image
    # The node was configured to another output resolution.
    return cv2.resize(image, shape[::-1], interpolation=cv2.INTER_NEAREST)


def _keep_recent(by_stamp: OrderedDict[int, np.ndarray], stamp: int, image: np.ndarray) -> None:
    by_stamp[stamp] = image
    while len(by_stamp) > 60:  # > the worst latency seen at 10 Hz
        by_stamp.popitem(last=False)


def main(argv: list[str] | None = None) -> int:
    return run_node(DemoMonitor, "dav2_demo_monitor", argv)


if __name__ == "__main__":
    sys.exit(main())
