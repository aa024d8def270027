"""Organised back-projection of a metric depth image with Open3D tensor geometry.

X = (u - cx) * Z / fx, Y = (v - cy) * Z / fy, Z = depth (REP 118: along the optical
axis). NaN depth stays NaN; 0.0 is a valid depth (depth_image_proc convention).
"""

from __future__ import annotations

import numpy as np
import open3d as o3d

from dav2_ros.geometry.intrinsics import CameraIntrinsics, IntrinsicsError


def limit_range(depth_m: np.ndarray, max_range_m: float) -> np.ndarray:
    """Copy of ``depth_m`` with depths beyond ``max_range_m`` set to NaN (0 = no limit)."""
    limited = np.array(depth_m, dtype=np.float32, copy=True)
    if max_range_m > 0:
        with np.errstate(invalid="ignore"):
            limited[limited > max_range_m] = np.nan
    return limited


def backproject_organised(
    depth_m: np.ndarray, intrinsics: CameraIntrinsics, stride: int = 1
) -> np.ndarray:
    """HxW float32 metres → (ceil(H/stride))x(ceil(W/stride))x3 float32 XYZ, NaN kept.

    ``intrinsics`` must describe ``depth_m``'s resolution (scale them first).
    """
    if depth_m.ndim != 2:
        raise ValueError(f"expected an HxW depth image, got shape {depth_m.shape}")
    height, width = depth_m.shape
    if (intrinsics.width, intrinsics.height) != (width, height):
        raise IntrinsicsError(
            f"intrinsics are for {intrinsics.width}x{intrinsics.height} but the depth image "
            f"is {width}x{height}; scale them with CameraIntrinsics.scaled_to first"
        )
    if not intrinsics.is_calibrated:
        raise IntrinsicsError(f"camera is not calibrated (fx={intrinsics.fx}, fy={intrinsics.fy})")
    grid = np.ascontiguousarray(depth_m[::stride, ::stride], dtype=np.float32)
    k_grid = intrinsics.subsampled(stride).k_matrix()
    image = o3d.t.geometry.Image(o3d.core.Tensor(grid[:, :, None]))
    vertex_map = image.create_vertex_map(o3d.core.Tensor(k_grid), invalid_fill=float("nan"))
    return vertex_map.as_tensor().numpy().astype(np.float32, copy=False)
