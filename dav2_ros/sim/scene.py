"""Procedural scenes (rooms, streets, clutter) as Open3D ray-casting scenes.

A ``Scene`` holds triangle meshes, one ``Material`` per mesh, lights and the
region cameras may be placed in. Everything is drawn from ``seed``, so the same
seed and style always give the same scene.

Styles "a" and "b" furnish rooms (tables, chairs, shelves, cabinets, beds, sofas,
stairs, doors, windows, pictures) and streets (kerbs, trees, benches, cars, posts)
and add clutter (boxes, spheres, cylinders, poles, boards) at many scales. The
held-out style "c" (``HELD_OUT_STYLES``; test splits only) uses other rooms
(polygonal halls), another object set (``heldout``), other textures and light.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from dav2_ros.geometry.intrinsics import CameraIntrinsics
from dav2_ros.sim import furniture, heldout, lighting
from dav2_ros.sim.lighting import Light
from dav2_ros.sim.materials import Material, random_material
from dav2_ros.sim.meshes import Mesh, box, cylinder, merge, place, sphere, to_tensor

SCENE_KINDS: tuple[str, ...] = ("room", "street", "clutter")
KIND_SHARES = (0.5, 0.25, 0.25)  # indoor robots first
STYLES: tuple[str, ...] = ("a", "b", "c")
# Styles no training split may use: they exist to measure generalisation honestly.
HELD_OUT_STYLES: tuple[str, ...] = ("c",)
CAMERA_HEIGHT_M = (0.3, 2.2)  # floor-standing robots up to a tall mast / handheld


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

    def camera_rays(self, intrinsics: CameraIntrinsics, pose_c2w: np.ndarray) -> np.ndarray:
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

    def z_depth(self, intrinsics: CameraIntrinsics, pose_c2w: np.ndarray) -> np.ndarray:
        """HxW float32 z-depth in metres, +inf where no surface is hit."""
        rays = self.camera_rays(intrinsics, pose_c2w)
        hits = self.raycaster.cast_rays(o3d.core.Tensor(rays))
        return hits["t_hit"].numpy()


class _Builder:
    def __init__(self, rng: np.random.Generator, style: str) -> None:
        self.rng, self.style = rng, style
        self.meshes: list[o3d.t.geometry.TriangleMesh] = []
        self.materials: list[Material] = []

    def add(self, mesh: Mesh, material: Material | None = None) -> None:
        self.meshes.append(to_tensor(mesh))
        self.materials.append(material or random_material(self.rng, self.style))

    def clutter(self, count: int, lo: np.ndarray, hi: np.ndarray, on_ground: float | None) -> None:
        """Loose objects at many scales inside [lo, hi]: the style's object set."""
        rng = self.rng
        for _ in range(count):
            centre = rng.uniform(lo, hi)
            if self.style in HELD_OUT_STYLES:
                self.add(heldout.heldout_object(rng, centre, on_ground))
                continue
            kind = rng.choice(
                ["box", "sphere", "cylinder", "pole", "plane"], p=[0.35, 0.2, 0.2, 0.15, 0.1]
            )
            scale = float(np.exp(rng.uniform(np.log(0.06), np.log(1.5))))
            if kind == "box":
                size = scale * rng.uniform(0.3, 1.5, size=3)
                if on_ground is not None:
                    centre[2] = on_ground + size[2] / 2
                self.add(box(size, centre, rng.uniform(0, np.pi)))
            elif kind == "sphere":
                if on_ground is not None:
                    centre[2] = on_ground + scale / 2
                self.add(sphere(scale / 2, centre))
            elif kind == "cylinder":
                height = scale * rng.uniform(0.5, 2.5)
                base = centre.copy()
                if on_ground is not None:
                    base[2] = on_ground
                self.add(cylinder(scale * rng.uniform(0.15, 0.5), height, base))
            elif kind == "pole":
                height = rng.uniform(0.8, 3.5)
                base = centre.copy()
                if on_ground is not None:
                    base[2] = on_ground
                tilt = rng.normal(0, 0.15, size=3) * np.array([1, 1, 0])
                self.add(cylinder(rng.uniform(0.01, 0.05), height, base, tilt))
            else:  # thin free-standing plane (a board, a sign)
                size = np.array([scale * rng.uniform(0.5, 2), 0.01, scale * rng.uniform(0.5, 2)])
                if on_ground is not None:
                    centre[2] = on_ground + size[2] / 2
                self.add(box(size, centre, rng.uniform(0, np.pi)))

    def piece(self, piece: furniture.Piece, position: np.ndarray, yaw: float) -> None:
        for group in piece.groups:
            self.add(place(group, position, yaw))


def _camera_region(lo_xy, hi_xy, ceiling_m: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    top = min(CAMERA_HEIGHT_M[1], ceiling_m - 0.3)
    return (
        np.array([lo_xy[0], lo_xy[1], CAMERA_HEIGHT_M[0]]),
        np.array([hi_xy[0], hi_xy[1], top]),
    )


def _furnish(b: _Builder, half_w: float, half_l: float, height: float) -> None:
    """Wall fixtures on every wall, then furniture against the walls and in the middle."""
    rng = b.rng
    walls = [  # (outward normal, half extent along the normal, wall length)
        (np.array([0.0, 1.0]), half_l, 2 * half_w),
        (np.array([0.0, -1.0]), half_l, 2 * half_w),
        (np.array([1.0, 0.0]), half_w, 2 * half_l),
        (np.array([-1.0, 0.0]), half_w, 2 * half_l),
    ]
    for normal, extent, length in walls:
        yaw = float(np.arctan2(-normal[0], normal[1]))
        tangent = np.array([normal[1], -normal[0]])
        for mesh, along in furniture.wall_fixtures(rng, length, height):
            xy = normal * extent + tangent * along
            b.add(place(mesh, (xy[0], xy[1], 0.0), yaw))
    area = 4 * half_w * half_l
    for _ in range(int(rng.integers(0, 3) + area * rng.uniform(0.02, 0.12))):
        piece = furniture.random_piece(rng)
        width, depth = piece.footprint
        if piece.against_wall:
            normal, extent, length = walls[int(rng.integers(4))]
            yaw = float(np.arctan2(-normal[0], normal[1]))
            tangent = np.array([normal[1], -normal[0]])
            along = rng.uniform(-1, 1) * max(0.0, length / 2 - width / 2)
            xy = normal * (extent - depth / 2 - 0.01) + tangent * along
        else:
            yaw = rng.uniform(0, 2 * np.pi)
            xy = rng.uniform(-1, 1, size=2) * [half_w * 0.8, half_l * 0.8]
        b.piece(piece, np.array([xy[0], xy[1], 0.0]), yaw)


def _room(b: _Builder) -> dict:
    rng = b.rng
    if b.style in HELD_OUT_STYLES:
        return _hall(b)
    width, length, height = rng.uniform(2.5, 10), rng.uniform(3, 14), rng.uniform(2.2, 4.5)
    t = 0.1  # wall thickness
    half_w, half_l = width / 2, length / 2
    b.add(box([width + 2 * t, length + 2 * t, t], [0, 0, -t / 2]))
    b.add(box([width + 2 * t, length + 2 * t, t], [0, 0, height + t / 2]))
    for sx in (-1, 1):
        b.add(box([t, length + 2 * t, height], [sx * (half_w + t / 2), 0, height / 2]))
    for sy in (-1, 1):
        b.add(box([width, t, height], [0, sy * (half_l + t / 2), height / 2]))
    _furnish(b, half_w, half_l, height)
    lo, hi = np.array([-half_w, -half_l, 0.0]), np.array([half_w, half_l, height])
    clutter = min(40, int(width * length * rng.uniform(0.02, 0.45)))
    b.clutter(clutter, lo * 0.9, hi * np.array([0.9, 0.9, 0.6]), on_ground=0.0)
    return dict(
        lights=lighting.room_lights(rng, b.style, lo, hi),
        camera_region=_camera_region(
            [-half_w * 0.7, -half_l * 0.9], [half_w * 0.7, half_l * 0.2], height
        ),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.9,
        has_sky=False,
    )


def _hall(b: _Builder) -> dict:
    """Held-out room: a polygonal hall with prism columns and held-out objects."""
    rng = b.rng
    radius, height = rng.uniform(3.0, 8.0), rng.uniform(2.6, 5.5)
    for mesh in heldout.polygon_hall(rng, radius, height):
        b.add(mesh)
    if rng.random() < 0.6:
        sides, ring = int(rng.integers(3, 7)), rng.uniform(0.4, 0.75) * radius
        for i in range(int(rng.integers(3, 9))):
            angle = 2 * np.pi * i / 8 + rng.uniform(-0.2, 0.2)
            base = (ring * np.cos(angle), ring * np.sin(angle), 0.0)
            b.add(cylinder(rng.uniform(0.1, 0.35), height, base, sides=sides))
    inner = radius * 0.75
    lo, hi = np.array([-inner, -inner, 0.0]), np.array([inner, inner, height])
    b.clutter(int(rng.integers(6, 30)), lo, hi * np.array([1, 1, 0.6]), on_ground=0.0)
    b.clutter(int(rng.integers(0, 6)), lo + [0, 0, 0.5], hi * np.array([1, 1, 0.8]), on_ground=None)
    return dict(
        lights=lighting.room_lights(rng, b.style, lo, hi),
        camera_region=_camera_region([-radius * 0.4, -radius * 0.6], [radius * 0.4, 0.0], height),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.9,
        has_sky=False,
    )


def _street(b: _Builder) -> dict:
    rng = b.rng
    road_half = rng.uniform(3, 7)
    held_out = b.style in HELD_OUT_STYLES
    b.add(box([200.0, 200.0, 0.2], [0, 0, -0.1]))
    for side in (-1, 1):
        y = -10.0
        while y < 60:
            depth_b, length_b = rng.uniform(4, 12), rng.uniform(4, 15)
            height_b = rng.uniform(3, 25)
            x = side * (road_half + rng.uniform(1.5, 4) + depth_b / 2)
            if held_out:  # towers as low-sided prisms
                b.add(cylinder(min(depth_b, length_b) / 2, height_b, [x, y + length_b / 2, 0.0],
                               sides=int(rng.integers(3, 9))))  # fmt: skip
            else:
                b.add(box([depth_b, length_b, height_b], [x, y + length_b / 2, height_b / 2]))
            y += length_b + rng.uniform(0, 3)
    if not held_out:
        _street_furniture(b, road_half)
    b.clutter(int(rng.integers(3, 14)), np.array([-road_half, 2, 0]), np.array([road_half, 30, 2]),
              on_ground=0.0)  # fmt: skip
    return dict(
        lights=[lighting.sun(rng, b.style)],
        camera_region=_camera_region([-road_half * 0.6, -5.0], [road_half * 0.6, 5.0]),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.5,
        has_sky=True,
    )


def _street_furniture(b: _Builder, road_half: float) -> None:
    """Kerbs, lamp posts, parked cars, trees and benches beside the road."""
    rng = b.rng
    if rng.random() < 0.7:
        kerb = rng.uniform(0.08, 0.2)
        for side in (-1, 1):
            b.add(box([3.0, 140.0, kerb], [side * (road_half + 1.5), 50.0, kerb / 2]))
    for _ in range(int(rng.integers(3, 12))):  # lamp posts and sign poles
        x = rng.choice([-1, 1]) * (road_half + rng.uniform(0.3, 1.2))
        b.add(cylinder(rng.uniform(0.04, 0.12), rng.uniform(2.5, 6), [x, rng.uniform(0, 50), 0]))
    for _ in range(int(rng.integers(0, 10))):  # parked "cars": body + cabin
        x = rng.choice([-1, 1]) * (road_half - 1.2)
        y, length = rng.uniform(0, 45), rng.uniform(3.5, 5)
        body_h = rng.uniform(0.6, 0.9)
        cabin_h = rng.uniform(0.4, 0.7)
        body = box([1.8, length, body_h], [x, y, 0.2 + body_h / 2])
        cabin = box([1.6, length * 0.55, cabin_h], [x, y, 0.2 + body_h + cabin_h / 2])
        b.add(merge([body, cabin]))
    for _ in range(int(rng.integers(0, 8))):  # trees: trunk + crown
        x = rng.choice([-1, 1]) * (road_half + rng.uniform(0.5, 2.5))
        y, trunk = rng.uniform(0, 50), rng.uniform(1.5, 3.5)
        b.add(cylinder(rng.uniform(0.08, 0.25), trunk, [x, y, 0]))
        b.add(sphere(rng.uniform(0.8, 2.2), [x, y, trunk + 0.8]))
    for _ in range(int(rng.integers(0, 4))):  # benches
        x = rng.choice([-1, 1]) * (road_half + rng.uniform(0.5, 2.0))
        b.piece(
            furniture.sofa(rng),
            np.array([x, rng.uniform(0, 40), 0.0]),
            rng.choice([-1, 1]) * np.pi / 2,
        )


def _clutter(b: _Builder) -> dict:
    rng = b.rng
    b.add(box([200.0, 200.0, 0.2], [0, 0, -0.1]))
    b.clutter(int(rng.integers(10, 45)), np.array([-8, 1, 0]), np.array([8, 20, 4]), on_ground=None)
    b.clutter(int(rng.integers(5, 20)), np.array([-6, 1, 0]), np.array([6, 15, 0]), on_ground=0.0)
    if b.style not in HELD_OUT_STYLES:
        for _ in range(int(rng.integers(0, 5))):
            xy = rng.uniform([-5, 2], [5, 12])
            b.piece(
                furniture.random_piece(rng),
                np.array([xy[0], xy[1], 0.0]),
                rng.uniform(0, 2 * np.pi),
            )
    if rng.random() < 0.5:  # a far backdrop wall
        b.add(box([60.0, 0.5, 20.0], [0, rng.uniform(14, 30), 10.0]))
    return dict(
        lights=[lighting.sun(rng, b.style)],
        camera_region=_camera_region([-2.0, -3.0], [2.0, 0.0]),
        view_yaw=np.pi / 2,
        view_yaw_spread=0.5,
        has_sky=True,
    )


_KIND_BUILDERS = {"room": _room, "street": _street, "clutter": _clutter}


def make_scene(seed: int, style: str = "a", kind: str | None = None) -> Scene:
    """A random scene of ``kind`` (drawn from ``seed`` when None) in visual ``style``.

    Style "a" is clean and saturated; style "b" is the second domain (other
    materials, warmer and harsher light; its camera adds noise and blur in ``render``);
    style "c" is held out from training (other rooms, objects, textures, light, camera).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = np.random.default_rng([seed, STYLES.index(style)])
    if kind is None:
        kind = str(rng.choice(SCENE_KINDS, p=KIND_SHARES))
    if kind not in _KIND_BUILDERS:
        raise ValueError(f"scene kind must be one of {SCENE_KINDS}, got {kind!r}")
    builder = _Builder(rng, style)
    layout = _KIND_BUILDERS[kind](builder)
    ambient = lighting.ambient(rng, style)
    sky = lighting.sky(rng, style)
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
