"""Which lens ``points`` and ``scan`` use for a CameraInfo: K + D of a raw camera, P's
pinhole with ``camera.rectified``, a pinhole (and one warning) for an unknown model; and
the scan output's message (stamp, frame, geometry kept per lens)."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dav2_ros.geometry.laserscan import ScanSettings
from dav2_ros.geometry.lens import LensRays, rays_for
from dav2_ros.geometry.rays import PinholeRays
from dav2_ros.ros.camera_info import camera_info_problem, lens_of
from dav2_ros.ros.outputs import ScanOutput

WIDTH, HEIGHT = 160, 120
K = [150.0, 0.0, 80.0, 0.0, 140.0, 60.0, 0.0, 0.0, 1.0]
P_RECT = [120.0, 0.0, 78.0, 0.0, 0.0, 121.0, 61.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def info(model: str = "plumb_bob", d: list[float] | None = None, p: list[float] = P_RECT):
    msg = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model=model)
    msg.k, msg.p = K, p
    msg.d = [-0.29, 0.085, 0.0012, -0.0007, -0.011] if d is None else d
    return msg


def test_raw_camera_uses_k_and_d_and_undistorted_rays() -> None:
    choice = lens_of(info())
    assert choice.warning is None and choice.lens.model == "plumb_bob"
    assert (choice.lens.intrinsics.fx, choice.lens.intrinsics.cx) == (150.0, 80.0)
    assert isinstance(rays_for(choice.lens, 2), LensRays)
    # No distortion: the pinhole rays, Open3D's arithmetic (the points tests' reference).
    plain = lens_of(info(d=[0.0] * 5)).lens
    assert plain.is_pinhole and isinstance(rays_for(plain, 1), PinholeRays)


def test_rectified_image_uses_p_and_ignores_d() -> None:
    lens = lens_of(info(), rectified=True).lens
    assert lens.is_pinhole
    k = lens.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == (120.0, 121.0, 78.0, 61.0)
    assert camera_info_problem(info(), WIDTH, HEIGHT, rectified=True) is None
    problem = camera_info_problem(info(p=[0.0] * 12), WIDTH, HEIGHT, rectified=True)
    assert problem is not None and problem.error and "camera.rectified" in problem.text
    assert camera_info_problem(info(p=[0.0] * 12), WIDTH, HEIGHT) is None  # raw: K is enough


def test_unknown_model_is_a_pinhole_with_a_warning() -> None:
    choice = lens_of(info("kannala_brandt_wide", [0.1, 0.01, 0.0, 0.0]))
    assert choice.lens.is_pinhole and "kannala_brandt_wide" in choice.warning


def test_scan_output_stamps_like_depth_in_the_body_frame() -> None:
    scan = ScanOutput(ScanSettings(height_px=3, output_frame=""))
    header = Header(frame_id="front_camera_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    depth_m = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    lens = lens_of(info(d=[0.0] * 5)).lens
    msg = scan.fill(depth_m, lens, header)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    assert msg.header.frame_id == "front_camera_frame"
    ranges = np.array(msg.ranges, dtype=np.float32)
    assert ranges.shape == (WIDTH,) and np.nanmin(ranges) == pytest.approx(2.0, rel=1e-3)
    geometry = scan._geometry
    scan.fill(depth_m, lens, header)
    assert scan._geometry is geometry  # computed once per lens
    other = ScanOutput(ScanSettings(output_frame="base_scan")).fill(depth_m, lens, header)
    assert other.header.frame_id == "base_scan"
    with pytest.raises(ValueError, match="lower the scan height"):
        ScanOutput(ScanSettings(height_px=HEIGHT + 10)).fill(depth_m, lens, header)
