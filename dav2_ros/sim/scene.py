"""Procedural scenes (rooms, streets, clutter) as Open3D ray-casting scenes.

A ``Scene`` holds triangle meshes, one ``Material`` per mesh, lights and the
region cameras may be placed in. Everything is drawn from ``seed``, so the same
seed and style always give the same scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import open3d as o3d

from dav2_ros.sim.materials import Material, random_material

if TYPE_CHECKING:
    from dav2_ros.sim.camera import Intrinsics

SCENE_KINDS: tuple[str, ...] = ("room", "street", "clutter")
STYLES: tuple[str, ...] = ("a", "b")


@dataclass
class Light:
    """A directional (``position`` None) or point light; ``colour`` is linear RGB intensity."""

    colour: np.ndarray
    direction: np.ndarray | None = None  # unit vector *towards* the light
    position: np.ndarray | None = None


@dataclass
class Scene:
    kind: str
    style: str
    seed: int
    meshes: list[o3d.t.geometry.TriangleMesh]
    materials: list[Material]
    lights: list[Light]
    ambient: np.ndarray
    sky_colours: tuple[np.ndarray, np.ndarray]  # horizon, zenith
    camera_region: tuple[np.ndarray, np.ndarray]
    view_yaw: float
    view_yaw_spread: float
    _raycaster: o3d.t.geometry.RaycastingScene | None = field(default=None, repr=False)

    @property
    def raycaster(self) -> o3d.t.geometry.RaycastingScene:
        if self._raycaster is None:
            raycaster = o3d.t.geometry.RaycastingScene()
            for mesh in self.meshes:
                raycaster.add_triangles(mesh)  # geometry id == index in self.meshes
            self._raycaster = raycaster
        return self._raycaster

    def camera_rays(self, intrinsics: Intrinsics, pose_c2w: np.ndarray) -> np.ndarray:
        """HxWx6 float32 rays (origin, direction) with direction z = 1 in the camera frame.

        With that scaling the ray parameter of a hit *is* its z-depth.
        """
        u, v = np.meshgrid(np.arange(intrinsics.width) + 0.5, np.arange(intrinsics.height) + 0.5)
        dirs_cam = np.stack(
            [
                (u - intrinsics.cx) / intrinsics.fx,
                (v - intrinsics.cy) / intrinsics.fy,
                np.ones_like(u),
            ],
            axis=-1,
        )
        dirs_world = dirs_cam @ pose_c2w[:3, :3].T
        origins = np.broadcast_to(pose_c2w[:3, 3], dirs_world.shape)
        return np.concatenate([origins, dirs_world], axis=-1).astype(np.float32)

    def z_depth(self, intrinsics: Intrinsics, pose_c2w: np.ndarray) -> np.ndarray:
        """HxW float32 z-depth in metres, +inf where no surface is hit."""
        rays = self.camera_rays(intrinsics, pose_c2w)
        hits = self.raycaster.cast_rays(o3d.core.Tensor(rays))
        return hits["t_hit"].numpy()


def _to_tensor_mesh(mesh: o3d.geometry.TriangleMesh) -> o3d.t.geometry.TriangleMesh:
    return o3d.t.geometry.TriangleMesh.from_legacy(mesh)


def _box(size: np.ndarray, centre: np.ndarray, yaw: float = 0.0) -> o3d.t.geometry.TriangleMesh:
    mesh = o3d.geometry.TriangleMesh.create_box(*np.maximum(size, 1e-3))
    mesh.translate(-np.asarray(size) / 2)
    mesh.rotate(_yaw_matrix(yaw), center=(0, 0, 0))
    mesh.translate(centre)
    return _to_tensor_mesh(mesh)


def _sphere(radius: float, centre: np.ndarray) -> o3d.t.geometry.TriangleMesh:
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius, resolution=16)
    mesh.translate(centre)
    return _to_tensor_mesh(mesh)


def _cylinder(
    radius: float, height: float, base: np.ndarray, tilt: np.ndarray | None = None
) -> o3d.t.geometry.TriangleMesh:
    mesh = o3d.geometry.TriangleMesh.create_cylinder(radius, height, resolution=16)
    mesh.translate((0, 0, height / 2))  # base at the origin, axis +z
    if tilt is not None:
        mesh.rotate(o3d.geometry.get_rotation_matrix_from_xyz(tilt), center=(0, 0, 0))
    mesh.translate(base)
    return _to_tensor_mesh(mesh)


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


class _Builder:
    def __init__(self, rng: np.random.Generator, style: str) -> None:
        self.rng, self.style = rng, style
        self.meshes: list[o3d.t.geometry.TriangleMesh] = []
        self.materials: list[Material] = []

    def add(self, mesh: o3d.t.geometry.TriangleMesh, material: Material | None = None) -> None:
        self.meshes.append(mesh)
        self.materials.append(material or random_material(self.rng, self.style))

    def clutter(self, count: int, lo: np.ndarray, hi: np.ndarray, on_ground: float | None) -> None:
        """Boxes, spheres, cylinders and thin poles at many scales inside [lo, hi]."""
        rng = self.rng
        for _ in range(count):
            kind = rng.choice(
                ["box", "sphere", "cylinder", "pole", "plane"], p=[0.35, 0.2, 0.2, 0.15, 0.1]
            )
            scale = float(np.exp(rng.uniform(np.log(0.08), np.log(1.5))))
            centre = rng.uniform(lo, hi)
            if kind == "box":
                size = scale * rng.uniform(0.3, 1.5, size=3)
                if on_ground is not None:
                    centre[2] = on_ground + size[2] / 2
                self.add(_box(size, centre, rng.uniform(0, np.pi)))
            elif kind == "sphere":
                if on_ground is not None:
                    centre[2] = on_ground + scale / 2
                self.add(_sphere(scale / 2, centre))
            elif kind == "cylinder":
                height = scale * rng.uniform(0.5, 2.5)
                base = centre.copy()
                if on_ground is not None:
                    base[2] = on_ground
                self.add(_cylinder(scale * rng.uniform(0.15, 0.5), height, base))
            elif kind == "pole":
                height = rng.uniform(0.8, 3.5)
                base = centre.copy()
                if on_ground is not None:
                    base[2] = on_ground
                tilt = rng.normal(0, 0.15, size=3) * np.array([1, 1, 0])
                self.add(_cylinder(rng.uniform(0.01, 0.05), height, base, tilt))
            else:  # thin free-standing plane (a board, a sign)
                size = np.array([scale * rng.uniform(0.5, 2), 0.01, scale * rng.uniform(0.5, 2)])
                if on_ground is not None:
                    centre[2] = on_ground + size[2] / 2
                self.add(_box(size, centre, rng.uniform(0, np.pi)))


def _room(b: _Builder) -> dict:
    rng = b.rng
    width, length, height = rng.uniform(3, 8), rng.uniform(4, 12), rng.uniform(2.4, 4.0)
    t = 0.1  # wall thickness
    half_w, half_l = width / 2, length / 2
    b.add(_box(np.array([width + 2 * t, length + 2 * t, t]), np.array([0, 0, -t / 2])))
    b.add(_box(np.array([width + 2 * t, length + 2 * t, t]), np.array([0, 0, height + t / 2])))
    for sx in (-1, 1):
        b.add(
            _box(
                np.array([t, length + 2 * t, height]),
                np.array([sx * (half_w + t / 2), 0, height / 2]),
            )
        )
    for sy in (-1, 1):
        b.add(_box(np.array([width, t, height]), np.array([0, sy * (half_l + t / 2), height / 2])))
    lo, hi = np.array([-half_w, -half_l, 0.0]), np.array([half_w, half_l, height])
    b.clutter(int(rng.integers(6, 25)), lo * 0.9, hi * np.array([0.9, 0.9, 0.6]), on_ground=0.0)
    lights = [
        Light(
            colour=np.full(3, rng.uniform(2.0, 5.0)),
            position=rng.uniform(lo, hi) * [0.8, 0.8, 0] + [0, 0, height - 0.2],
        )
        for _ in range(int(rng.integers(1, 4)))
    ]
    return dict(
        lights=lights,
        camera_region=(
            np.array([-half_w * 0.6, -half_l * 0.9, 0.6]),
            np.array([half_w * 0.6, -half_l * 0.4, 1.9]),
        ),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.7,
        has_sky=False,
    )


def _street(b: _Builder) -> dict:
    rng = b.rng
    road_half = rng.uniform(3, 7)
    b.add(_box(np.array([200.0, 200.0, 0.2]), np.array([0, 0, -0.1])))
    for side in (-1, 1):
        y = -10.0
        while y < 60:
            depth_b, length_b = rng.uniform(4, 12), rng.uniform(4, 15)
            height_b = rng.uniform(3, 25)
            x = side * (road_half + rng.uniform(1.5, 4) + depth_b / 2)
            b.add(
                _box(
                    np.array([depth_b, length_b, height_b]),
                    np.array([x, y + length_b / 2, height_b / 2]),
                )
            )
            y += length_b + rng.uniform(0, 3)
    for _ in range(int(rng.integers(3, 12))):  # lamp posts and sign poles
        x = rng.choice([-1, 1]) * (road_half + rng.uniform(0.3, 1.2))
        b.add(
            _cylinder(
                rng.uniform(0.04, 0.12), rng.uniform(2.5, 6), np.array([x, rng.uniform(0, 50), 0])
            )
        )
    for _ in range(int(rng.integers(2, 10))):  # parked "cars"
        x = rng.choice([-1, 1]) * (road_half - 1.2)
        b.add(
            _box(
                np.array([1.8, rng.uniform(3.5, 5), rng.uniform(1.3, 1.8)]),
                np.array([x, rng.uniform(0, 45), 0.75]),
            )
        )
    b.clutter(
        int(rng.integers(3, 12)),
        np.array([-road_half, 2, 0]),
        np.array([road_half, 30, 2]),
        on_ground=0.0,
    )
    sun = rng.normal(size=3)
    sun[2] = abs(sun[2]) + 0.5
    return dict(
        lights=[
            Light(colour=np.full(3, rng.uniform(2.0, 3.5)), direction=sun / np.linalg.norm(sun))
        ],
        camera_region=(
            np.array([-road_half * 0.6, -5.0, 1.1]),
            np.array([road_half * 0.6, 5.0, 2.2]),
        ),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.4,
        has_sky=True,
    )


def _clutter(b: _Builder) -> dict:
    rng = b.rng
    b.add(_box(np.array([200.0, 200.0, 0.2]), np.array([0, 0, -0.1])))
    b.clutter(int(rng.integers(15, 45)), np.array([-8, 1, 0]), np.array([8, 20, 4]), on_ground=None)
    b.clutter(int(rng.integers(5, 15)), np.array([-6, 1, 0]), np.array([6, 15, 0]), on_ground=0.0)
    if rng.random() < 0.5:  # a far backdrop wall
        b.add(_box(np.array([60.0, 0.5, 20.0]), np.array([0, rng.uniform(14, 30), 10.0])))
    sun = rng.normal(size=3)
    sun[2] = abs(sun[2]) + 0.3
    return dict(
        lights=[
            Light(colour=np.full(3, rng.uniform(2.0, 3.5)), direction=sun / np.linalg.norm(sun))
        ],
        camera_region=(np.array([-2.0, -3.0, 0.4]), np.array([2.0, 0.0, 2.5])),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.5,
        has_sky=True,
    )


_KIND_BUILDERS = {"room": _room, "street": _street, "clutter": _clutter}


def make_scene(seed: int, style: str = "a", kind: str | None = None) -> Scene:
    """A random scene of ``kind`` (drawn from ``seed`` when None) in visual ``style``.

    Style "a" is clean and saturated; style "b" is the second domain (other
    materials, warmer and harsher light; its camera adds noise and blur in ``render``).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = np.random.default_rng([seed, STYLES.index(style)])
    if kind is None:
        kind = str(rng.choice(SCENE_KINDS))
    if kind not in _KIND_BUILDERS:
        raise ValueError(f"scene kind must be one of {SCENE_KINDS}, got {kind!r}")
    builder = _Builder(rng, style)
    layout = _KIND_BUILDERS[kind](builder)
    if style == "a":
        ambient = np.full(3, rng.uniform(0.25, 0.45))
        sky = (np.array([0.75, 0.85, 0.95]), np.array([0.35, 0.55, 0.9]))
        tint = np.ones(3)
    else:
        ambient = np.array([0.22, 0.18, 0.14]) * rng.uniform(0.6, 1.2)
        sky = (np.array([0.85, 0.8, 0.7]), np.array([0.6, 0.62, 0.65]))  # hazy, overcast
        tint = np.array([1.15, 0.95, 0.75])  # warm tungsten-like light
    for light in layout["lights"]:
        light.colour = light.colour * tint
    return Scene(
        kind=kind,
        style=style,
        seed=seed,
        meshes=builder.meshes,
        materials=builder.materials,
        lights=layout["lights"],
        ambient=ambient,
        sky_colours=sky if layout["has_sky"] else (np.zeros(3), np.zeros(3)),
        camera_region=layout["camera_region"],
        view_yaw=layout["view_yaw"],
        view_yaw_spread=layout["view_yaw_spread"],
    )
