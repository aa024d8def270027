"""``CameraInfo``: is it usable for this image, its intrinsics, and its scaled copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo

from dav2_ros.geometry import CameraIntrinsics, IntrinsicsError, PinholeRays, RaySource

FAMILY = "camera_info"  # the reporter kind family of every camera_info problem


@dataclass(frozen=True)
class CameraInfoProblem:
    """Why a camera_info cannot give points for an image (a reporter kind and text)."""

    kind: str
    text: str
    error: bool
    once: bool = False  # ROS convention: a missing calibration is said once until fixed


def camera_info_problem(
    info: CameraInfo | None, image_width: int, image_height: int
) -> CameraInfoProblem | None:
    """None if ``info`` calibrates an image of this size; else what is wrong with it."""
    if info is None:
        return CameraInfoProblem(
            f"{FAMILY}:missing",
            "no camera_info received: publishing depth without points",
            error=False,
            once=True,
        )
    if (info.width, info.height) != (image_width, image_height):
        return CameraInfoProblem(
            f"{FAMILY}:size",
            f"camera_info is for {info.width}x{info.height} but the image is "
            f"{image_width}x{image_height}: publishing depth without camera_info and "
            "points; remap camera_info to the camera that publishes this image",
            error=True,
        )
    try:
        calibrated = intrinsics_of(info).is_calibrated
    except IntrinsicsError:
        calibrated = False
    if not calibrated and not np.isfinite(info.k).all():
        return CameraInfoProblem(
            f"{FAMILY}:k_not_finite",
            f"camera_info K has NaN or Inf values ({np.asarray(info.k).tolist()}): "
            "publishing depth without camera_info and points; fix the camera's calibration",
            error=True,
        )
    if not calibrated:
        return CameraInfoProblem(
            f"{FAMILY}:uncalibrated",
            "camera_info K is zero (uncalibrated): no points",
            error=False,
            once=True,
        )
    return None


def intrinsics_of(info: Any) -> CameraIntrinsics:
    return CameraIntrinsics.from_k(info.k, info.width, info.height)


def rays_for(info: Any, stride: int) -> RaySource:
    """How the pixels of the grid ``[::stride, ::stride]`` of the image ``info`` describes
    become rays: the one place the node chooses (a pinhole of K today; a lens model of
    ``distortion_model`` and D is another ``RaySource`` here). Sources compare by value:
    equal camera_infos hit the node's ``RayCache``."""
    return PinholeRays(intrinsics_of(info), stride)


def scaled_camera_info(info: CameraInfo, header: Any, width: int, height: int) -> CameraInfo:
    """``info`` for an image ``width`` x ``height`` of the same view, stamped with ``header``.

    K, P (fx, cx, Tx and fy, cy, Ty rows) and the ROI scale like image_proc's resize.
    """
    sx, sy = intrinsics_of(info).scale_factors(width, height)
    k = np.array(info.k, dtype=np.float64).reshape(3, 3)
    k[0] *= sx
    k[1] *= sy
    p = np.array(info.p, dtype=np.float64).reshape(3, 4)
    p[0] *= sx
    p[1] *= sy
    scaled = CameraInfo(
        header=header,
        height=height,
        width=width,
        distortion_model=info.distortion_model,
        d=list(info.d),
        k=k.reshape(-1).tolist(),
        r=list(info.r),
        p=p.reshape(-1).tolist(),
        binning_x=info.binning_x,
        binning_y=info.binning_y,
    )
    roi = info.roi
    scaled.roi.x_offset = round(roi.x_offset * sx)
    scaled.roi.y_offset = round(roi.y_offset * sy)
    scaled.roi.width = round(roi.width * sx)
    scaled.roi.height = round(roi.height * sy)
    scaled.roi.do_rectify = roi.do_rectify
    return scaled
