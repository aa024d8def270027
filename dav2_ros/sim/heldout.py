"""Object set of the held-out style "c": shapes the training styles never make.

Styles "a" and "b" build boxes, spheres, 16-sided cylinders, poles, boards and box
furniture. Style "c" builds only tori, cones, platonic solids, low-sided prisms and
combinations of them, so a model scored on "c" meets object shapes it never saw.
"""

from __future__ import annotations

import numpy as np

from dav2_ros.sim.meshes import Mesh, cone, cylinder, merge, polyhedron, torus

SOLIDS = ("tetrahedron", "octahedron", "icosahedron")


def heldout_object(rng: np.random.Generator, centre: np.ndarray, on_ground: float | None) -> Mesh:
    """One random held-out object near ``centre`` (standing on ``on_ground`` when given)."""
    kind = rng.choice(["torus", "arch", "cone", "solid", "pedestal", "prism", "cone_stack"])
    scale = float(np.exp(rng.uniform(np.log(0.12), np.log(1.6))))
    ground = on_ground if on_ground is not None else centre[2]
    x, y = centre[0], centre[1]
    spin = tuple(rng.uniform(0, np.pi, size=3))
    if kind == "torus":  # lying ring or tumbling one
        minor = scale * rng.uniform(0.08, 0.3)
        if on_ground is not None and rng.random() < 0.6:
            return torus(scale / 2, minor, (x, y, ground + minor), (0, 0, 0))
        return torus(scale / 2, minor, (x, y, max(ground, centre[2]) + scale / 2), spin)
    if kind == "arch":  # a standing ring sunk into the floor
        minor = scale * rng.uniform(0.06, 0.15)
        return torus(
            scale,
            minor,
            (x, y, ground + scale * rng.uniform(0.2, 0.7)),
            (np.pi / 2, 0, rng.uniform(0, np.pi)),
        )
    if kind == "cone":
        return cone(scale * rng.uniform(0.2, 0.6), scale * rng.uniform(0.6, 2.5), (x, y, ground))
    if kind == "solid":
        radius = scale / 2
        lift = radius if on_ground is not None else 0.0
        return polyhedron(str(rng.choice(SOLIDS)), radius, (x, y, ground + lift), spin)
    if kind == "pedestal":  # a low-sided column carrying a solid
        height, radius = rng.uniform(0.4, 1.2), scale * rng.uniform(0.2, 0.4)
        top = polyhedron(
            str(rng.choice(SOLIDS)), radius * 1.3, (x, y, ground + height + radius), spin
        )
        return merge([cylinder(radius, height, (x, y, ground), sides=int(rng.integers(3, 7))), top])
    if kind == "prism":
        radius, height = scale * rng.uniform(0.15, 0.5), scale * rng.uniform(0.5, 3.0)
        return cylinder(radius, height, (x, y, ground), sides=int(rng.integers(3, 7)))
    parts, z, radius = [], ground, scale * rng.uniform(0.3, 0.6)  # "cone_stack"
    for _ in range(int(rng.integers(2, 5))):
        height = radius * rng.uniform(0.8, 1.6)
        parts.append(cone(radius, height, (x, y, z)))
        z += height * 0.55
        radius *= rng.uniform(0.6, 0.85)
    return merge(parts)


def polygon_hall(rng: np.random.Generator, radius_m: float, height_m: float) -> list[Mesh]:
    """Floor, ceiling and ``n`` walls (5-8) of a regular polygonal hall centred at the origin."""
    sides = int(rng.integers(5, 9))
    t = 0.1
    meshes = [
        cylinder(radius_m * 1.6, t, (0, 0, -t), sides=sides),
        cylinder(radius_m * 1.6, t, (0, 0, height_m), sides=sides),
    ]
    side_len = 2 * radius_m * np.tan(np.pi / sides) + 2 * t
    apothem = radius_m
    offset = rng.uniform(0, 2 * np.pi)
    for i in range(sides):
        angle = offset + 2 * np.pi * i / sides
        wall = Mesh.create_box(side_len, t, height_m)
        wall.translate((-side_len / 2, 0, 0))
        rot = np.array(
            [
                [np.cos(angle - np.pi / 2), -np.sin(angle - np.pi / 2), 0],
                [np.sin(angle - np.pi / 2), np.cos(angle - np.pi / 2), 0],
                [0, 0, 1.0],
            ]
        )
        wall.rotate(rot, center=(0, 0, 0))
        wall.translate((apothem * np.cos(angle), apothem * np.sin(angle), 0))
        meshes.append(wall)
    return meshes
