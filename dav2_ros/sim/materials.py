"""Procedural surface materials: albedo patterns evaluated at 3D hit points.

Patterns are projected along the surface's dominant normal axis (tri-planar
without blending), so they stick to objects and shrink with distance, which
gives the network real perspective cues.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

PATTERNS_A = ("solid", "checker", "stripes", "noise", "dots")
PATTERNS_B = ("noise", "bricks", "grain", "stripes", "solid")


@dataclass(frozen=True)
class Material:
    colour: np.ndarray  # linear RGB albedo in [0, 1]
    colour2: np.ndarray
    pattern: str
    scale_m: float  # size of one pattern period in metres
    specular: float  # Blinn-Phong strength (0 = pure Lambertian)
    shininess: float


def random_material(rng: np.random.Generator, style: str) -> Material:
    if style == "a":  # saturated, clean paint
        hue = rng.random()
        colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)))
        colour2 = np.array(
            colorsys.hsv_to_rgb(
                (hue + rng.uniform(0.2, 0.8)) % 1, rng.uniform(0.3, 1), rng.uniform(0.3, 1)
            )
        )
        pattern = str(rng.choice(PATTERNS_A))
        specular, shininess = 0.0, 1.0
    else:  # earthy, desaturated, glossy materials: concrete, wood, brick, plastic
        hue = rng.uniform(0.02, 0.15) if rng.random() < 0.7 else rng.random()
        colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.05, 0.45), rng.uniform(0.25, 0.8)))
        colour2 = colour * rng.uniform(0.4, 0.8)
        pattern = str(rng.choice(PATTERNS_B))
        specular, shininess = rng.uniform(0.1, 0.6), rng.uniform(8, 64)
    return Material(
        colour=colour,
        colour2=colour2,
        pattern=pattern,
        scale_m=float(np.exp(rng.uniform(np.log(0.05), np.log(1.0)))),
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


def albedo(material: Material, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Nx3 albedo of ``material`` at world ``points`` with surface ``normals``."""
    uv = _plane_coords(points, normals) / material.scale_m
    pattern = material.pattern
    if pattern == "solid":
        mix = np.zeros(len(uv))
    elif pattern == "checker":
        mix = (np.floor(uv[:, 0]) + np.floor(uv[:, 1])) % 2
    elif pattern == "stripes":
        mix = (np.floor(2 * uv[:, 0]) % 2).astype(np.float64)
    elif pattern == "dots":
        frac = uv - np.floor(uv) - 0.5
        mix = (np.hypot(frac[:, 0], frac[:, 1]) < 0.3).astype(np.float64)
    elif pattern == "bricks":
        row = np.floor(uv[:, 1] * 3)
        shifted = uv[:, 0] * 1.5 + 0.5 * (row % 2)
        mortar = (np.abs(uv[:, 1] * 3 - row - 0.5) > 0.42) | (
            np.abs(shifted - np.floor(shifted) - 0.5) > 0.45
        )
        mix = np.where(mortar, 1.0, 0.3 * value_noise(uv * 4, salt=7))
    elif pattern == "grain":  # wood-like rings distorted by noise
        mix = 0.5 + 0.5 * np.sin(12 * uv[:, 0] + 6 * value_noise(uv, salt=3))
    else:  # "noise"
        mix = value_noise(uv * 2, salt=11)
    mix = mix[:, None]
    return material.colour[None] * (1 - mix) + material.colour2[None] * mix
