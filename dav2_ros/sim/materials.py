"""Procedural surface materials: albedo patterns evaluated at 3D hit points.

Patterns are projected along the surface's dominant normal axis (tri-planar
without blending), so they stick to objects and shrink with distance, which
gives the network real perspective cues.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

# Texture families per style. "c" (held-out, test splits only) shares none with a/b.
PATTERNS_A = ("solid", "checker", "stripes", "noise", "dots", "tiles", "planks", "marble", "plaid")
PATTERNS_B = (
    "noise",
    "bricks",
    "grain",
    "stripes",
    "solid",
    "tiles",
    "planks",
    "concrete",
    "fabric",
)
PATTERNS_C = ("voronoi", "waves", "hexagons", "camo", "zigzag")


@dataclass(frozen=True)
class Material:
    colour: np.ndarray  # linear RGB albedo in [0, 1]
    colour2: np.ndarray
    pattern: str
    scale_m: float  # size of one pattern period in metres
    specular: float  # Blinn-Phong strength (0 = pure Lambertian)
    shininess: float


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value))


def random_material(rng: np.random.Generator, style: str) -> Material:
    if style == "a":  # saturated, clean paint; now and then a satin finish
        hue = rng.random()
        colour = _hsv(hue, rng.uniform(0.2, 1.0), rng.uniform(0.35, 1.0))
        colour2 = _hsv(hue + rng.uniform(0.2, 0.8), rng.uniform(0.2, 1), rng.uniform(0.2, 1))
        pattern = str(rng.choice(PATTERNS_A))
        glossy = rng.random() < 0.25
        specular = rng.uniform(0.05, 0.3) if glossy else 0.0
        shininess = rng.uniform(8, 40) if glossy else 1.0
    elif style == "b":  # earthy, desaturated, glossy materials: concrete, wood, brick, plastic
        hue = rng.uniform(0.02, 0.15) if rng.random() < 0.7 else rng.random()
        colour = _hsv(hue, rng.uniform(0.05, 0.45), rng.uniform(0.2, 0.85))
        colour2 = colour * rng.uniform(0.4, 0.8)
        pattern = str(rng.choice(PATTERNS_B))
        specular, shininess = rng.uniform(0.1, 0.6), rng.uniform(8, 64)
    else:  # "c": pastel / metallic two-tone surfaces with strong highlights
        hue = rng.random()
        colour = _hsv(hue, rng.uniform(0.1, 0.6), rng.uniform(0.5, 0.95))
        colour2 = _hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.5))
        pattern = str(rng.choice(PATTERNS_C))
        specular, shininess = rng.uniform(0.3, 0.9), rng.uniform(20, 120)
    return Material(
        colour=colour,
        colour2=colour2,
        pattern=pattern,
        scale_m=float(np.exp(rng.uniform(np.log(0.08), np.log(1.5)))),
        specular=specular,
        shininess=shininess,
    )


def _plane_coords(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Nx2 surface coordinates: drop the coordinate along the dominant normal axis."""
    axis = np.argmax(np.abs(normals), axis=1)
    keep = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    return np.take_along_axis(points, keep, axis=1)


def _hash2(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point."""
    h = (ix * 374761393 + iy * 668265263 + salt * 2147483647) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return (h ^ (h >> 16)).astype(np.float64) / 2**32


def value_noise(uv: np.ndarray, salt: int = 0, octaves: int = 3) -> np.ndarray:
    """Smooth fractal value noise in [0, 1] at Nx2 coordinates."""
    total, amplitude, norm = np.zeros(len(uv)), 1.0, 0.0
    for octave in range(octaves):
        p = uv * (2**octave)
        i = np.floor(p).astype(np.int64)
        f = p - i
        f = f * f * (3 - 2 * f)
        a = _hash2(i[:, 0], i[:, 1], salt + octave)
        b = _hash2(i[:, 0] + 1, i[:, 1], salt + octave)
        c = _hash2(i[:, 0], i[:, 1] + 1, salt + octave)
        d = _hash2(i[:, 0] + 1, i[:, 1] + 1, salt + octave)
        top = a + (b - a) * f[:, 0]
        bottom = c + (d - c) * f[:, 0]
        total += amplitude * (top + (bottom - top) * f[:, 1])
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def _cell_distance(uv: np.ndarray, salt: int) -> np.ndarray:
    """Distance to the nearest jittered lattice point (Worley / Voronoi cells)."""
    base = np.floor(uv).astype(np.int64)
    best = np.full(len(uv), np.inf)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            cx, cy = base[:, 0] + dx, base[:, 1] + dy
            px = cx + _hash2(cx, cy, salt)
            py = cy + _hash2(cx, cy, salt + 1)
            best = np.minimum(best, np.hypot(uv[:, 0] - px, uv[:, 1] - py))
    return best


def _hex_edge(uv: np.ndarray) -> np.ndarray:
    """1 on the edges of a hexagonal tiling (cells of inradius 0.5), 0 inside."""
    period = np.array([1.0, np.sqrt(3)])
    a = np.mod(uv, period) - period / 2
    b = np.mod(uv - period / 2, period) - period / 2
    nearer = np.where((np.hypot(*a.T) < np.hypot(*b.T))[:, None], a, b)  # offset to the centre
    x, y = np.abs(nearer).T
    distance = np.maximum(x, 0.5 * x + np.sqrt(3) / 2 * y)
    return (distance > 0.45).astype(np.float64)


def _mix(pattern: str, uv: np.ndarray) -> np.ndarray:
    """Per-point blend weight in [0, 1] between a material's two colours."""
    if pattern == "solid":
        return np.zeros(len(uv))
    if pattern == "checker":
        return (np.floor(uv[:, 0]) + np.floor(uv[:, 1])) % 2
    if pattern == "stripes":
        return (np.floor(2 * uv[:, 0]) % 2).astype(np.float64)
    if pattern == "dots":
        frac = uv - np.floor(uv) - 0.5
        return (np.hypot(frac[:, 0], frac[:, 1]) < 0.3).astype(np.float64)
    if pattern == "bricks":
        row = np.floor(uv[:, 1] * 3)
        shifted = uv[:, 0] * 1.5 + 0.5 * (row % 2)
        mortar = (np.abs(uv[:, 1] * 3 - row - 0.5) > 0.42) | (
            np.abs(shifted - np.floor(shifted) - 0.5) > 0.45
        )
        return np.where(mortar, 1.0, 0.3 * value_noise(uv * 4, salt=7))
    if pattern == "grain":  # wood-like rings distorted by noise
        return 0.5 + 0.5 * np.sin(12 * uv[:, 0] + 6 * value_noise(uv, salt=3))
    if pattern == "tiles":  # square tiles, grout lines, each tile a slightly other shade
        cell = np.floor(uv * 2)
        frac = uv * 2 - cell
        grout = (np.minimum(frac, 1 - frac).min(axis=1) < 0.04).astype(np.float64)
        shade = 0.25 * _hash2(cell[:, 0].astype(np.int64), cell[:, 1].astype(np.int64), 5)
        return np.maximum(grout, shade)
    if pattern == "planks":  # boards along u, staggered ends, per-board brightness
        row = np.floor(uv[:, 1] * 4)
        along = uv[:, 0] + _hash2(row.astype(np.int64), np.zeros_like(row, np.int64), 9) * 3
        board = np.floor(along / 1.5)
        seam = (np.abs(uv[:, 1] * 4 - row - 0.5) > 0.46) | (
            np.abs(along / 1.5 - board - 0.5) > 0.49
        )
        shade = 0.4 * _hash2(row.astype(np.int64), board.astype(np.int64), 13)
        return np.where(seam, 1.0, shade + 0.15 * value_noise(uv * [8, 1], salt=17))
    if pattern == "marble":  # thin dark veins through a pale stone
        vein = np.abs(np.sin(3 * uv[:, 0] + 5 * value_noise(uv, salt=19, octaves=4)))
        return np.clip(1 - vein * 6, 0, 1)
    if pattern == "plaid":
        return 0.5 * (np.floor(3 * uv[:, 0]) % 2) + 0.5 * (np.floor(3 * uv[:, 1]) % 2)
    if pattern == "concrete":  # fine speckle over slow blotches
        return 0.6 * value_noise(uv * 1.5, salt=23) + 0.4 * value_noise(uv * 40, salt=29, octaves=1)
    if pattern == "fabric":  # a fine weave
        return (
            0.5
            + 0.25 * np.sin(40 * uv[:, 0]) * np.sin(40 * uv[:, 1])
            + 0.25 * np.sin(40 * uv[:, 0])
        )
    if pattern == "voronoi":
        return np.clip(_cell_distance(uv * 2, salt=31) * 1.6, 0, 1)
    if pattern == "waves":
        return 0.5 + 0.5 * np.sin(5 * uv[:, 0] + 2.5 * np.sin(3 * uv[:, 1]))
    if pattern == "hexagons":
        return _hex_edge(uv * 1.5)
    if pattern == "camo":  # three flat levels of thresholded noise
        n = value_noise(uv, salt=37, octaves=2)
        return np.digitize(n, [0.42, 0.58]) / 2.0
    if pattern == "zigzag":
        return (np.floor(2 * uv[:, 1] + np.abs((2 * uv[:, 0]) % 2 - 1)) % 2).astype(np.float64)
    return value_noise(uv * 2, salt=11)  # "noise"


def albedo(material: Material, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Nx3 albedo of ``material`` at world ``points`` with surface ``normals``."""
    uv = _plane_coords(points, normals) / material.scale_m
    mix = np.clip(_mix(material.pattern, uv), 0, 1)[:, None]
    return material.colour[None] * (1 - mix) + material.colour2[None] * mix
