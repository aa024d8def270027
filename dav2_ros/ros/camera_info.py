"""``CameraInfo``: is it usable for this image, its intrinsics, and its scaled copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo

from dav2_ros.geometry import CameraIntrinsics, IntrinsicsError
from dav2_ros.geometry.lens import LensChoice, lens_from_camera_info

FAMILY = "camera_info"  # the reporter kind family of every camera_info problem


@dataclass(frozen=True)
class CameraInfoProblem:
    """Why a camera_info cannot give points for an image (a reporter kind and text)."""

    kind: str
    text: str
    error: bool
    once: bool = False  # ROS convention: a missing calibration is said once until fixed
    cause: str = ""  # the problem alone, without what the node does about it

    @property
    def detail(self) -> str:
        """The kind without its family: ``missing``, ``size``, ..."""
        return self.kind.removeprefix(f"{FAMILY}:")


def camera_info_problem(
    info: CameraInfo | None, image_width: int, image_height: int, rectified: bool = False
) -> CameraInfoProblem | None:
    """None if ``info`` calibrates an image of this size; else what is wrong with it.

    ``rectified`` (``camera.rectified``): the geometry comes from P, which must be set.
    """
    if info is None:
        return CameraInfoProblem(
            f"{FAMILY}:missing",
            "no camera_info received: publishing depth without points",
            error=False,
            once=True,
            cause="no camera_info received",
        )
    if (info.width, info.height) != (image_width, image_height):
        cause = (
            f"camera_info is for {info.width}x{info.height} but the image is "
            f"{image_width}x{image_height}"
        )
        return CameraInfoProblem(
            f"{FAMILY}:size",
            f"{cause}: publishing depth without camera_info and points; remap camera_info "
            "to the camera that publishes this image",
            error=True,
            cause=cause,
        )
    try:
        calibrated = intrinsics_of(info).is_calibrated
    except IntrinsicsError:
        calibrated = False
    if not calibrated and not np.isfinite(info.k).all():
        cause = f"camera_info K has NaN or Inf values ({np.asarray(info.k).tolist()})"
        return CameraInfoProblem(
            f"{FAMILY}:k_not_finite",
            f"{cause}: publishing depth without camera_info and points; fix the camera's "
            "calibration",
            error=True,
            cause=cause,
        )
    if not calibrated:
        return CameraInfoProblem(
            f"{FAMILY}:uncalibrated",
            "camera_info K is zero (uncalibrated): no points",
            error=False,
            once=True,
            cause="camera_info K is zero (uncalibrated)",
        )
    p = np.asarray(info.p, dtype=np.float64)
    if rectified and not (np.isfinite(p).all() and p[0] > 0 and p[5] > 0):
        cause = f"camera.rectified is true but camera_info P has no focal lengths ({p.tolist()})"
        return CameraInfoProblem(
            f"{FAMILY}:p_not_set",
            f"{cause}: publishing depth without camera_info, points and scan; publish the "
            "rectified camera's P, or set camera.rectified false",
            error=True,
            cause=cause,
        )
    return None


def focal_px(info: Any, rectified: bool = False) -> tuple[float, float]:
    """(fx, fy) of the image ``info`` describes: K's, or P's for a rectified image (the
    pinhole ``lens_of`` gives points and scan)."""
    if rectified:
        return float(info.p[0]), float(info.p[5])
    return float(info.k[0]), float(info.k[4])


def intrinsics_of(info: Any) -> CameraIntrinsics:
    return CameraIntrinsics.from_k(info.k, info.width, info.height)


def lens_of(info: Any, rectified: bool = False) -> LensChoice:
    """The lens ``points`` and ``scan`` use for the image ``info`` describes: K and D
    (``distortion_model``) of a raw camera, or P's pinhole when ``rectified``; an unknown
    model gives a pinhole and a warning (``LensChoice.warning``) to say once."""
    return lens_from_camera_info(
        info.k, info.d, info.distortion_model, info.width, info.height, info.p, rectified
    )


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
