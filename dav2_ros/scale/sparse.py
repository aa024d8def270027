"""Sparse metric depth sources → samples (row, col, depth_m) in the camera image.

Two sources: a depth image in metres registered to the camera (an RGB-D camera, a
LiDAR already projected into it), possibly at another resolution, and a point cloud
in any frame with the extrinsic that maps it into the camera optical frame.
Pure numpy, no ROS: the node converts messages (``dav2_ros.ros.conversions``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseSamples:
    """Metric depth at integer pixels of a ``height`` × ``width`` image."""

    rows: np.ndarray  # int64
    cols: np.ndarray  # int64
    depth_m: np.ndarray  # float64, > 0 and finite
    height: int
    width: int

    def __len__(self) -> int:
        return int(self.depth_m.size)

    def lookup(self, image: np.ndarray) -> np.ndarray:
        """Values of an image of the same size at the sample pixels (e.g. disparity)."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"samples were made for a {self.width}x{self.height} image, got "
                f"{image.shape[1]}x{image.shape[0]}; project the sparse source at the "
                "prediction's resolution"
            )
        return image[self.rows, self.cols]


def samples_from_depth_image(
    depth_m: np.ndarray, height: int, width: int, max_samples: int = 0
) -> SparseSamples:
    """Valid pixels (finite, > 0 m) of a registered depth image in metres, mapped to a
    ``height``×``width`` image.

    The depth image must cover the same field of view as the camera (registered,
    as depth_image_proc's ``register`` produces); only its resolution may differ.
    Pixel centres are mapped, (u + 0.5)·W'/W − 0.5, then rounded. A dense source
    (an RGB-D camera) is thinned to ``max_samples`` random valid pixels (0 = keep
    all): a few thousand pin a and b down, and 300 k would cost ~1 s per frame.
    """
    if depth_m.ndim != 2:
        raise ValueError(f"a depth image must be 2-D (H×W), got shape {depth_m.shape}")
    with np.errstate(invalid="ignore"):
        src_rows, src_cols = np.nonzero(np.isfinite(depth_m) & (depth_m > 0))
    if 0 < max_samples < src_rows.size:
        keep = np.random.default_rng(0).choice(src_rows.size, max_samples, replace=False)
        src_rows, src_cols = src_rows[keep], src_cols[keep]
    values = depth_m[src_rows, src_cols]
    src_h, src_w = depth_m.shape
    rows = np.rint((src_rows + 0.5) * (height / src_h) - 0.5).astype(np.int64)
    cols = np.rint((src_cols + 0.5) * (width / src_w) - 0.5).astype(np.int64)
    rows = np.clip(rows, 0, height - 1)
    cols = np.clip(cols, 0, width - 1)
    return _nearest_per_pixel(rows, cols, values, height, width)


def samples_from_points(
    points_xyz: np.ndarray,
    T_camera_from_source: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    min_depth_m: float = 1e-3,
) -> SparseSamples:
    """Project an N×3 point cloud into the camera: depth = optical Z (REP 118).

    ``T_camera_from_source`` (4×4) maps the cloud's frame into the camera optical
    frame (z forward, x right, y down); ``K`` (3×3) is for a ``height``×``width``
    image. Points behind or at the camera (z < ``min_depth_m``), outside the
    image or non-finite are dropped; where several land on one pixel the nearest
    wins, since the camera sees the nearest surface.
    """
    points_xyz = np.asarray(points_xyz, dtype=np.float64)
    if points_xyz.ndim != 2 or points_xyz.shape[1] != 3:
        raise ValueError(f"points must be an N×3 array, got shape {points_xyz.shape}")
    T = np.asarray(T_camera_from_source, dtype=np.float64)
    if T.shape != (4, 4) or not np.allclose(T[3], [0, 0, 0, 1]):
        raise ValueError(
            f"T_camera_from_source must be a 4×4 rigid transform with last row 0 0 0 1, got {T}"
        )
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"K must be a 3×3 camera matrix with fx, fy > 0 (CameraInfo.k), got {K.ravel()}; "
            "an uncalibrated camera (K[0] == 0) cannot project points"
        )
    camera = points_xyz @ T[:3, :3].T + T[:3, 3]
    z = camera[:, 2]
    keep = np.isfinite(camera).all(axis=1) & (z >= min_depth_m)
    camera, z = camera[keep], z[keep]
    u = K[0, 0] * camera[:, 0] / z + K[0, 1] * camera[:, 1] / z + K[0, 2]
    v = K[1, 1] * camera[:, 1] / z + K[1, 2]
    cols, rows = np.rint(u), np.rint(v)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    return _nearest_per_pixel(
        rows[inside].astype(np.int64), cols[inside].astype(np.int64), z[inside], height, width
    )


def _nearest_per_pixel(
    rows: np.ndarray, cols: np.ndarray, depth_m: np.ndarray, height: int, width: int
) -> SparseSamples:
    order = np.argsort(depth_m, kind="stable")
    flat = rows[order] * width + cols[order]
    _, first = np.unique(flat, return_index=True)
    pick = order[first]
    return SparseSamples(rows[pick], cols[pick], depth_m[pick].astype(np.float64), height, width)


def transform_from_xyz_rpy(xyz: list[float], rpy: list[float]) -> np.ndarray:
    """4×4 transform from a translation (m) and roll, pitch, yaw (rad, fixed axes X, Y, Z).

    The convention of URDF and ``static_transform_publisher``: R = Rz(yaw)·Ry(pitch)·Rx(roll).
    """
    if len(xyz) != 3 or len(rpy) != 3:
        raise ValueError(f"expected xyz and rpy of 3 numbers each, got {xyz} and {rpy}")
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = (
        np.cos(roll),
        np.sin(roll),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(yaw),
        np.sin(yaw),
    )
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = Rz @ Ry @ Rx
    T[:3, 3] = xyz
    return T


def transform_from_quaternion(xyz: list[float], quat_xyzw: list[float]) -> np.ndarray:
    """4×4 transform from a translation and a unit quaternion (x, y, z, w), as in TF2."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    T = np.eye(4)
    T[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    T[:3, 3] = xyz
    return T
