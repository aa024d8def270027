"""Synthetic camera node ``dav2_demo_camera``: a moving camera in a procedural scene.

Renders a short clip at start-up (see ``scene``), then plays it back at ``rate_hz``,
publishing with one shared header (stamp = publication time, standing in for
acquisition): ``image`` (rgb8), ``camera_info``, ``ground_truth/depth`` (32FC1
metres along the optical axis, NaN where invalid) and, while someone subscribes,
``sparse_depth``: a low-resolution LiDAR's returns registered to the camera (32FC1 m,
NaN elsewhere; see ``lidar``). A thin ROS shell over ``scene`` and ``lidar``.
"""

from __future__ import annotations

import sys

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dav2_ros.demo.lidar import BeamPattern, beam_pixels, sparse_depth_image
from dav2_ros.demo.lifecycle import run_node
from dav2_ros.demo.scene import ping_pong_index, render_clip
from dav2_ros.ros.conversions import array_to_image
from dav2_ros.sim import Frame

# A camera driver's usual QoS (SensorDataQoS: best effort), which the depth node expects
# by default. Over Fast DDS's default UDP transport a best-effort 640×480 image (~0.9 MB,
# many fragments) was lost about half the time here (43 of 80 received); the camera
# therefore starts with the bundled shared-memory profile, as the depth node does
# (``dav2_ros.ros.transport``), and then every frame arrives.
CAMERA_QOS = qos_profile_sensor_data
# Ground truth is what the monitor scores against: it must not be lost, so it stays reliable.
GROUND_TRUTH_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def camera_info_for(frame: Frame, header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole frame (K, P, plumb_bob with zero distortion)."""
    info = CameraInfo()
    info.header = header
    info.height, info.width = frame.depth_m.shape
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [float(v) for v in frame.K.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    k = frame.K
    info.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    info.p = [float(v) for v in info.p]
    return info


# Parameters and defaults (data, so launch files can be checked against it).
PARAMETERS: dict[str, object] = {
    "width": 640,
    "height": 480,
    "rate_hz": 10.0,
    "hfov_deg": 70.0,
    "seed": 0,
    "scene": "room",  # room | street | clutter (dav2_ros.sim)
    "clip_frames": 30,
    "frame_id": "camera_optical_frame",  # what config/depth.rviz uses as fixed frame
    # sparse_depth: a VLP-16-like LiDAR at the camera (dav2_ros.demo.lidar.BeamPattern)
    "sparse_beams": 16,
    "sparse_vfov_deg": 30.0,
    "sparse_azimuth_step_deg": 0.4,
    "sparse_range_noise_m": 0.03,
    "sparse_outlier_ratio": 0.01,
}


class DemoCamera(Node):
    def __init__(self) -> None:
        super().__init__("dav2_demo_camera")
        p = {name: self.declare_parameter(name, value).value for name, value in PARAMETERS.items()}
        width, height, n_frames, kind = p["width"], p["height"], p["clip_frames"], p["scene"]
        rate_hz, hfov_deg, seed = float(p["rate_hz"]), float(p["hfov_deg"]), p["seed"]
        self.frame_id = p["frame_id"]
        if rate_hz <= 0:
            raise ValueError(f"parameter rate_hz must be > 0, got {rate_hz}")
        log = self.get_logger()
        log.info(f"rendering a {n_frames}-frame {width}x{height} clip of a '{kind}' scene")
        self.frames = render_clip(
            width, height, n_frames, hfov_deg, seed, kind, progress=self._progress
        )
        self.tick = 0
        self.pattern = BeamPattern(
            int(p["sparse_beams"]),
            float(p["sparse_vfov_deg"]),
            float(p["sparse_azimuth_step_deg"]),
            float(p["sparse_range_noise_m"]),
            float(p["sparse_outlier_ratio"]),
        )
        self.beams = beam_pixels(self.pattern, self.frames[0].K, height, width)
        self.rng = np.random.default_rng(seed)
        self.pub_image = self.create_publisher(Image, "image", CAMERA_QOS)
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", CAMERA_QOS)
        self.pub_gt = self.create_publisher(Image, "ground_truth/depth", GROUND_TRUTH_QOS)
        # A LiDAR driver's QoS too (best effort), which the node's sparse_depth expects.
        self.pub_sparse = self.create_publisher(Image, "sparse_depth", CAMERA_QOS)
        self.create_timer(1.0 / rate_hz, self._tick)
        log.info(
            f"publishing 'image', 'camera_info', 'ground_truth/depth' at {rate_hz:g} Hz and "
            f"'sparse_depth' ({len(self.beams.rows)} returns of {self.pattern.beams} beams per "
            "frame) while subscribed"
        )

    def _progress(self, done: int, total: int, elapsed_s: float) -> None:
        if done == total or done % 10 == 0:
            self.get_logger().info(f"rendered {done}/{total} frames in {elapsed_s:.1f} s")

    def _tick(self) -> None:
        frame = self.frames[ping_pong_index(self.tick, len(self.frames))]
        self.tick += 1
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        image = array_to_image(frame.rgb, "rgb8", header)  # stamp: acquisition time
        depth = array_to_image(frame.depth_m, "32FC1", header)
        self.pub_gt.publish(depth)  # first, so the monitor holds it when depth comes back
        if self.pub_sparse.get_subscription_count():  # else its cost is spared
            sparse = sparse_depth_image(frame.depth_m, self.beams, self.pattern, self.rng)
            self.pub_sparse.publish(array_to_image(sparse, "32FC1", header))
        self.pub_info.publish(camera_info_for(frame, header))
        self.pub_image.publish(image)


def main(argv: list[str] | None = None) -> int:
    return run_node(DemoCamera, "dav2_demo_camera", argv, large_data_profile=True)


if __name__ == "__main__":
    sys.exit(main())
