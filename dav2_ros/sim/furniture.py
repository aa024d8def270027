"""Furniture-like composite objects for rooms (styles "a" and "b").

Each maker builds one piece around the origin: footprint centred on (0, 0), standing on
z = 0, its back towards +y (so it can be pushed against a wall) and returns a list of
part groups; every group becomes one mesh with its own material (a bed's frame and
its mattress differ). ``footprint`` is the piece's (width x, depth y) in metres.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dav2_ros.sim.meshes import Mesh, box, cylinder, merge


@dataclass
class Piece:
    groups: list[Mesh]  # one material each
    footprint: tuple[float, float]
    against_wall: bool


def _legs(rng, width: float, depth: float, height: float, inset: float) -> list[Mesh]:
    """Four legs under a rectangle: square posts or round ones."""
    round_legs = rng.random() < 0.5
    thick = rng.uniform(0.03, 0.07)
    inset = max(inset, thick / 2)  # legs stay under the top
    legs = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (width / 2 - inset), sy * (depth / 2 - inset)
            if round_legs:
                legs.append(cylinder(thick / 2, height, (x, y, 0.0), sides=10))
            else:
                legs.append(box((thick, thick, height), (x, y, height / 2)))
    return legs


def table(rng: np.random.Generator) -> Piece:
    width, depth = rng.uniform(0.6, 2.2), rng.uniform(0.5, 1.1)
    height, top = rng.uniform(0.4, 1.1), rng.uniform(0.025, 0.07)
    parts = [box((width, depth, top), (0, 0, height - top / 2))]
    parts += _legs(rng, width, depth, height - top, rng.uniform(0.03, 0.12))
    return Piece([merge(parts)], (width, depth), against_wall=rng.random() < 0.3)


def chair(rng: np.random.Generator) -> Piece:
    size, seat_h = rng.uniform(0.38, 0.55), rng.uniform(0.4, 0.5)
    back_h = rng.uniform(0.3, 0.55)
    parts = [box((size, size, 0.04), (0, 0, seat_h - 0.02))]
    parts += _legs(rng, size, size, seat_h - 0.04, 0.03)
    parts.append(box((size, 0.04, back_h), (0, size / 2 - 0.02, seat_h + back_h / 2)))
    return Piece([merge(parts)], (size, size), against_wall=False)


def shelf(rng: np.random.Generator) -> Piece:
    width, depth, height = rng.uniform(0.6, 2.0), rng.uniform(0.25, 0.45), rng.uniform(0.8, 2.2)
    board = rng.uniform(0.018, 0.04)
    levels = int(rng.integers(2, 7))
    frame = [
        box((board, depth, height), (sx * (width - board) / 2, 0, height / 2)) for sx in (-1, 1)
    ]
    if rng.random() < 0.7:
        frame.append(box((width, board, height), (0, (depth - board) / 2, height / 2)))
    items = []
    for level in range(levels + 1):
        z = board / 2 + level * (height - board) / levels
        frame.append(box((width, depth, board), (0, 0, z)))
        if level < levels and rng.random() < 0.75:  # books / boxes on the board
            x = -width / 2 + board
            while x < width / 2 - board - 0.05:
                w = rng.uniform(0.02, 0.25)
                h = rng.uniform(0.3, 0.9) * (height - board) / levels
                d = rng.uniform(0.5, 0.95) * depth
                if rng.random() < 0.8 and x + w < width / 2 - board:
                    items.append(
                        box((w, d, h), (x + w / 2, (depth - d) / 2, z + board / 2 + h / 2))
                    )
                x += w + rng.uniform(0.0, 0.1)
    groups = [merge(frame)] + ([merge(items)] if items else [])
    return Piece(groups, (width, depth), against_wall=True)


def cabinet(rng: np.random.Generator) -> Piece:
    width, depth, height = rng.uniform(0.4, 1.8), rng.uniform(0.35, 0.65), rng.uniform(0.5, 2.1)
    body = [box((width, depth, height), (0, 0, height / 2))]
    doors = int(rng.integers(1, 4))
    fronts = []
    gap = 0.01
    for i in range(doors):
        w = width / doors - 2 * gap
        x = -width / 2 + (i + 0.5) * width / doors
        fronts.append(box((w, 0.02, height - 0.06), (x, -depth / 2 - 0.01, height / 2)))
        hx = x + (w / 2 - 0.06) * (1 if i % 2 else -1)
        fronts.append(box((0.02, 0.03, 0.12), (hx, -depth / 2 - 0.035, height * 0.55)))
    return Piece([merge(body), merge(fronts)], (width, depth + 0.05), against_wall=True)


def bed(rng: np.random.Generator) -> Piece:
    width, length = rng.uniform(0.9, 1.9), rng.uniform(1.9, 2.2)
    base_h, mattress_h = rng.uniform(0.2, 0.45), rng.uniform(0.15, 0.3)
    head_h = base_h + rng.uniform(0.4, 0.9)
    frame = [
        box((width, length, base_h), (0, 0, base_h / 2)),
        box((width, 0.06, head_h), (0, length / 2, head_h / 2)),
    ]
    soft = [box((width - 0.04, length - 0.1, mattress_h), (0, -0.03, base_h + mattress_h / 2))]
    if rng.random() < 0.7:  # pillows
        soft.append(
            box((width * 0.8, 0.35, 0.12), (0, length / 2 - 0.3, base_h + mattress_h + 0.06))
        )
    return Piece([merge(frame), merge(soft)], (width, length), against_wall=True)


def sofa(rng: np.random.Generator) -> Piece:
    width, depth = rng.uniform(1.2, 2.6), rng.uniform(0.75, 1.0)
    seat_h, back_h, arm_w = rng.uniform(0.35, 0.48), rng.uniform(0.35, 0.55), rng.uniform(0.1, 0.25)
    parts = [
        box((width, depth, seat_h), (0, 0, seat_h / 2)),
        box((width, 0.2, seat_h + back_h), (0, depth / 2 - 0.1, (seat_h + back_h) / 2)),
    ]
    arm_h = seat_h + rng.uniform(0.1, 0.25)
    parts += [
        box((arm_w, depth, arm_h), (sx * (width - arm_w) / 2, 0, arm_h / 2)) for sx in (-1, 1)
    ]
    return Piece([merge(parts)], (width, depth), against_wall=True)


def stairs(rng: np.random.Generator) -> Piece:
    steps, width = int(rng.integers(4, 15)), rng.uniform(0.8, 1.6)
    rise, run = rng.uniform(0.15, 0.2), rng.uniform(0.24, 0.32)
    depth = steps * run
    parts = [
        box((width, run, rise * (i + 1)), (0, -depth / 2 + (i + 0.5) * run, rise * (i + 1) / 2))
        for i in range(steps)
    ]
    return Piece([merge(parts)], (width, depth), against_wall=True)


def floor_lamp(rng: np.random.Generator) -> Piece:
    height, shade_r = rng.uniform(1.2, 1.9), rng.uniform(0.12, 0.25)
    stand = [
        cylinder(0.15, 0.03, (0, 0, 0)),
        cylinder(0.015, height, (0, 0, 0), sides=8),
    ]
    shade = [cylinder(shade_r, rng.uniform(0.15, 0.3), (0, 0, height - 0.1))]
    return Piece([merge(stand), merge(shade)], (2 * shade_r, 2 * shade_r), against_wall=False)


def box_stack(rng: np.random.Generator) -> Piece:
    """Cardboard-like boxes stacked, each a little smaller and turned."""
    parts, z, size = [], 0.0, rng.uniform(0.3, 0.7)
    reach = size * np.sqrt(2)  # a turned box stays inside its diagonal
    for _ in range(int(rng.integers(1, 5))):
        h = size * rng.uniform(0.5, 1.0)
        parts.append(
            box((size, size * rng.uniform(0.7, 1.0), h), (0, 0, z + h / 2), rng.normal(0, 0.2))
        )
        z += h
        size *= rng.uniform(0.7, 1.0)
    return Piece([merge(parts)], (reach, reach), against_wall=False)


MAKERS: dict[str, Callable[[np.random.Generator], Piece]] = {
    "table": table,
    "chair": chair,
    "shelf": shelf,
    "cabinet": cabinet,
    "bed": bed,
    "sofa": sofa,
    "stairs": stairs,
    "floor_lamp": floor_lamp,
    "box_stack": box_stack,
}
WEIGHTS = np.array([0.18, 0.16, 0.14, 0.14, 0.07, 0.08, 0.05, 0.06, 0.12])


def random_piece(rng: np.random.Generator) -> Piece:
    name = str(rng.choice(list(MAKERS), p=WEIGHTS / WEIGHTS.sum()))
    return MAKERS[name](rng)


def wall_fixtures(
    rng: np.random.Generator, width: float, height: float
) -> list[tuple[Mesh, float]]:
    """Doors, pictures, windows and skirting on a wall ``width`` long (local x), face at y = 0.

    Returns ``(mesh, along_x)`` pairs, meshes built at x = 0 and protruding towards -y;
    ``along_x`` is where the caller should move them along the wall.
    """
    fixtures = []
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.choice(["door", "picture", "window"], p=[0.35, 0.4, 0.25])
        if kind == "door":
            w, h = rng.uniform(0.75, 1.0), min(rng.uniform(1.95, 2.3), height - 0.05)
            frame_w = rng.uniform(0.04, 0.1)
            parts = [box((w, rng.uniform(0.02, 0.05), h), (0, -0.01, h / 2))]
            parts += [
                box((frame_w, 0.03, h), (sx * (w + frame_w) / 2, -0.015, h / 2)) for sx in (-1, 1)
            ]
            parts.append(box((w + 2 * frame_w, 0.03, frame_w), (0, -0.015, h + frame_w / 2)))
            parts.append(box((0.12, 0.05, 0.03), (w / 2 - 0.1, -0.05, 1.0)))  # handle
        elif kind == "picture":
            w, h = rng.uniform(0.2, 1.4), rng.uniform(0.2, 1.0)
            z = rng.uniform(1.0, max(1.1, height - h / 2 - 0.2))
            parts = [box((w, rng.uniform(0.01, 0.05), h), (0, -0.02, z))]
        else:
            w, h = rng.uniform(0.6, 2.0), rng.uniform(0.6, min(1.6, height - 1.0))
            z = rng.uniform(0.8 + h / 2, max(0.9 + h / 2, height - h / 2 - 0.1))
            sill = box((w + 0.1, 0.15, 0.04), (0, -0.07, z - h / 2 - 0.02))
            pane = box((w, 0.02, h), (0, -0.01, z))
            parts = [pane, sill] + [box((0.04, 0.05, h), (0, -0.025, z))]
        along = rng.uniform(-width / 2 + 0.6, width / 2 - 0.6) if width > 1.5 else 0.0
        fixtures.append((merge(parts), float(along)))
    if rng.random() < 0.5:  # skirting board along the whole wall
        fixtures.append((box((width, 0.02, rng.uniform(0.05, 0.12)), (0, -0.01, 0.05)), 0.0))
    return fixtures
