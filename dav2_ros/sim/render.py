"""Render a ``Scene`` from a pinhole camera: RGB, exact metric z-depth, valid mask.

Shading is Lambertian with hard shadows (one occlusion ray per light), spotlight
cones and ambient, plus a specular lobe for glossy materials; styles "b" and "c" then
pass through their own imperfect camera (``sensor``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from dav2_ros.sim.camera import Intrinsics
from dav2_ros.sim.lighting import spot_factor
from dav2_ros.sim.materials import albedo
from dav2_ros.sim.scene import Scene
from dav2_ros.sim.sensor import ENCODERS, SENSORS

FOG_DISTANCE_M = {"a": 60.0, "b": 25.0, "c": 40.0}  # outdoor haze: e-folding distance

_SHADOW_EPS_M = 1e-3


@dataclass
class Frame:
    rgb: np.ndarray  # HxWx3 uint8
    depth_m: np.ndarray  # HxW float32 z-depth in metres, NaN where invalid (sky, too far)
    valid: np.ndarray  # HxW bool
    K: np.ndarray  # 3x3 float64


def render(
    scene: Scene,
    intrinsics: Intrinsics,
    pose_c2w: np.ndarray,
    max_depth_m: float = 20.0,
    noise_seed: int = 0,
) -> Frame:
    """Ray cast ``scene`` from ``pose_c2w`` (4x4 camera-to-world, optical frame).

    Surfaces beyond ``max_depth_m`` and sky are invalid (NaN depth).
    """
    pose_c2w = np.asarray(pose_c2w, np.float64)
    if pose_c2w.shape != (4, 4):
        raise ValueError(f"pose_c2w must be a 4x4 matrix, got shape {pose_c2w.shape}")
    H, W = intrinsics.height, intrinsics.width
    rays = scene.camera_rays(intrinsics, pose_c2w).reshape(-1, 6)
    hits = scene.raycaster.cast_rays(o3d.core.Tensor(rays))
    t_hit = hits["t_hit"].numpy()  # == z-depth, directions have camera z = 1
    geometry_ids = hits["geometry_ids"].numpy().astype(np.int64)
    normals = hits["primitive_normals"].numpy().astype(np.float64)
    hit = np.isfinite(t_hit)
    valid = hit & (t_hit <= max_depth_m) & (t_hit > 0)

    dirs = rays[:, 3:].astype(np.float64)
    view = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    colour = _sky(scene, view)
    if hit.any():
        idx = np.flatnonzero(hit)
        points = rays[idx, :3] + dirs[idx] * t_hit[idx, None]
        n = normals[idx]
        n *= np.where(
            np.sum(n * view[idx], axis=1, keepdims=True) > 0, -1.0, 1.0
        )  # face the camera
        colour[idx] = _shade(scene, points, n, view[idx], geometry_ids[idx])
        if scene.kind != "room":  # distant surfaces fade towards the horizon colour
            fog = 1 - np.exp(-t_hit[idx] / FOG_DISTANCE_M[scene.style])
            colour[idx] = colour[idx] * (1 - fog[:, None]) + scene.sky_colours[0] * fog[:, None]

    image = colour.reshape(H, W, 3)
    sensor = SENSORS.get(scene.style)
    if sensor is not None:
        image = sensor(image, np.random.default_rng([scene.seed, noise_seed]))
    rgb = (np.clip(image, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    encoder = ENCODERS.get(scene.style)
    if encoder is not None:
        rgb = encoder(rgb, np.random.default_rng([scene.seed, noise_seed, 1]))
    depth_m = np.where(valid, t_hit, np.nan).astype(np.float32).reshape(H, W)
    return Frame(rgb=rgb, depth_m=depth_m, valid=valid.reshape(H, W), K=intrinsics.K)


def _sky(scene: Scene, view: np.ndarray) -> np.ndarray:
    horizon, zenith = scene.sky_colours
    elevation = np.clip(view[:, 2], 0, 1)[:, None]
    return horizon[None] * (1 - elevation) + zenith[None] * elevation


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _shade(
    scene: Scene, points: np.ndarray, normals: np.ndarray, view: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    base = np.empty((len(points), 3))
    specular = np.zeros(len(points))
    shininess = np.ones(len(points))
    order = np.argsort(ids, kind="stable")  # one sort, then a slice per geometry
    bounds = np.flatnonzero(np.diff(ids[order])) + 1
    for sel in np.split(order, bounds):
        material = scene.materials[ids[sel[0]]]
        base[sel] = albedo(material, points[sel], normals[sel])
        specular[sel], shininess[sel] = material.specular, material.shininess
    glossy = np.flatnonzero(specular)
    light_sum = np.broadcast_to(scene.ambient, base.shape).copy()
    highlight = np.zeros_like(base)
    origins = points + normals * _SHADOW_EPS_M
    for light in scene.lights:
        if light.position is not None:
            to_light = light.position[None] - points
            dist = np.sqrt(_rowdot(to_light, to_light))
            to_light /= dist[:, None]
            falloff = spot_factor(light, -to_light) / (1.0 + 0.15 * dist**2)
        else:
            to_light = np.broadcast_to(light.direction, points.shape)
            falloff = np.ones(len(points))
        lit = np.clip(_rowdot(normals, to_light), 0, None) * falloff
        # Occlusion rays only where the light could shine at all. To a point light the
        # direction spans the whole segment, so t in (0, 1) is "between surface and
        # light"; to the sun, any hit occludes.
        facing = np.flatnonzero(lit > 1e-6)
        if light.position is not None:
            shadow_dirs, t_far = light.position[None] - origins[facing], 1.0 - 1e-4
        else:
            shadow_dirs, t_far = to_light[facing], 1e4
        shadow_rays = np.concatenate([origins[facing], shadow_dirs], axis=1).astype(np.float32)
        occluded = (
            scene.raycaster.test_occlusions(o3d.core.Tensor(shadow_rays), tnear=0.0, tfar=t_far)
            .numpy()
            .astype(bool)
        )
        lit[facing[occluded]] = 0.0
        light_sum += lit[:, None] * light.colour[None]
        if glossy.size:
            half = to_light[glossy] - view[glossy]
            half /= np.sqrt(_rowdot(half, half))[:, None] + 1e-9
            lobe = np.clip(_rowdot(normals[glossy], half), 0, None) ** shininess[glossy]
            highlight[glossy] += (specular[glossy] * lobe * lit[glossy])[:, None] * light.colour[
                None
            ]
    return base * light_sum * 0.5 + highlight * 0.5
