"""Mesh primitives for the procedural scenes (legacy Open3D meshes, world z-up).

Composite objects (furniture, held-out shapes) are built from several primitives and
merged into one mesh with ``merge``, so a piece of furniture is one geometry with one
material in the ray caster.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d

Mesh = o3d.geometry.TriangleMesh


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def box(size, centre, yaw: float = 0.0) -> Mesh:
    """Axis-aligned box of ``size`` (x, y, z) centred at ``centre``, turned by ``yaw``."""
    size = np.maximum(np.asarray(size, np.float64), 1e-3)
    mesh = Mesh.create_box(*size)
    mesh.translate(-size / 2)
    mesh.rotate(yaw_matrix(yaw), center=(0, 0, 0))
    mesh.translate(np.asarray(centre, np.float64))
    return mesh


def sphere(radius: float, centre) -> Mesh:
    mesh = Mesh.create_sphere(radius, resolution=16)
    mesh.translate(np.asarray(centre, np.float64))
    return mesh


def cylinder(radius: float, height: float, base, tilt=None, sides: int = 16) -> Mesh:
    """Cylinder (``sides`` = 3..6 gives a prism) standing on ``base``, optionally tilted."""
    mesh = Mesh.create_cylinder(radius, height, resolution=sides)
    mesh.translate((0, 0, height / 2))  # base at the origin, axis +z
    if tilt is not None:
        mesh.rotate(o3d.geometry.get_rotation_matrix_from_xyz(tilt), center=(0, 0, 0))
    mesh.translate(np.asarray(base, np.float64))
    return mesh


def cone(radius: float, height: float, base, sides: int = 20) -> Mesh:
    mesh = Mesh.create_cone(radius, height, resolution=sides)
    mesh.translate(np.asarray(base, np.float64))
    return mesh


def torus(major_m: float, minor_m: float, centre, rotation=(0.0, 0.0, 0.0)) -> Mesh:
    mesh = Mesh.create_torus(major_m, minor_m, radial_resolution=24, tubular_resolution=12)
    mesh.rotate(o3d.geometry.get_rotation_matrix_from_xyz(rotation), center=(0, 0, 0))
    mesh.translate(np.asarray(centre, np.float64))
    return mesh


def polyhedron(kind: str, radius: float, centre, rotation=(0.0, 0.0, 0.0)) -> Mesh:
    """Platonic solid: ``tetrahedron`` | ``octahedron`` | ``icosahedron``."""
    maker = {
        "tetrahedron": Mesh.create_tetrahedron,
        "octahedron": Mesh.create_octahedron,
        "icosahedron": Mesh.create_icosahedron,
    }[kind]
    mesh = maker(radius)
    mesh.rotate(o3d.geometry.get_rotation_matrix_from_xyz(rotation), center=(0, 0, 0))
    mesh.translate(np.asarray(centre, np.float64))
    return mesh


def merge(parts: list[Mesh]) -> Mesh:
    merged = Mesh()
    for part in parts:
        merged += part
    return merged


def place(mesh: Mesh, position, yaw: float) -> Mesh:
    """Turn a mesh built around the origin by ``yaw`` and move it to ``position``."""
    mesh.rotate(yaw_matrix(yaw), center=(0, 0, 0))
    mesh.translate(np.asarray(position, np.float64))
    return mesh


def to_tensor(mesh: Mesh) -> o3d.t.geometry.TriangleMesh:
    return o3d.t.geometry.TriangleMesh.from_legacy(mesh)
