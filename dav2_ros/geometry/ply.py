"""Point clouds to PLY files (Open3D): the one writer of ``dav2 predict --ply`` and the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open3d as o3d


def write_ply(path: str | Path, xyz_m: np.ndarray, rgb: np.ndarray | None = None) -> int:
    """The finite points of ``xyz_m`` (N×3 or H×W×3 metres), coloured by ``rgb`` (uint8,
    same layout) if given, as a binary PLY; returns how many points were written."""
    xyz_m = np.asarray(xyz_m, dtype=np.float32).reshape(-1, 3)
    valid = np.isfinite(xyz_m).all(axis=1)
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.ascontiguousarray(xyz_m[valid])))
    if rgb is not None:  # uint8 colours are written as uchar red/green/blue, as readers expect
        colours = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)[valid]
        cloud.point.colors = o3d.core.Tensor(np.ascontiguousarray(colours))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise RuntimeError(f"Open3D could not write {path}")
    return int(valid.sum())
