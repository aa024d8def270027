"""Lights, ambient level and sky of a scene, per style.

Styles "a" and "b" light with white-ish sources (warm tungsten to cool daylight) of
widely varying count and power; "b" is warmer and hazier. The held-out style "c" is
low-key: little ambient light, saturated coloured sources and spotlights.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

WARM_WHITE = np.array([1.0, 0.78, 0.55])  # ~2700 K, relative linear RGB
COOL_WHITE = np.array([0.88, 0.94, 1.0])  # ~6500 K


@dataclass
class Light:
    """A directional (``position`` None) or point light; ``colour`` is linear RGB intensity.

    A point light with ``spot_axis`` set is a spotlight: full power inside the cone
    whose half-angle cosine is ``spot_cos``, fading to nothing at 0.8 × that angle's cosine.
    """

    colour: np.ndarray
    direction: np.ndarray | None = None  # unit vector *towards* the light
    position: np.ndarray | None = None
    spot_axis: np.ndarray | None = None  # unit vector from the light along its beam
    spot_cos: float = 0.0


def _white(rng: np.random.Generator, style: str) -> np.ndarray:
    warmth = rng.uniform(0.3, 1.0) if style == "b" else rng.uniform(0.0, 1.0)
    return WARM_WHITE * warmth + COOL_WHITE * (1 - warmth)


def _coloured(rng: np.random.Generator) -> np.ndarray:
    rgb = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.5, 1.0), 1.0))
    return rgb / rgb.max()


def room_lights(
    rng: np.random.Generator, style: str, lo: np.ndarray, hi: np.ndarray
) -> list[Light]:
    """Ceiling lights (and, for "c", spotlights) inside the box [lo, hi]."""
    height = hi[2]
    area = float(np.prod(hi[:2] - lo[:2]))
    if style == "c":
        lights = []
        for _ in range(int(rng.integers(1, 4))):
            position = rng.uniform(lo, hi) * [0.8, 0.8, 0] + [0, 0, height - 0.2]
            target = rng.uniform(lo, hi) * [0.8, 0.8, 0]
            axis = target - position
            lights.append(
                Light(
                    colour=_coloured(rng) * rng.uniform(4.0, 10.0),
                    position=position,
                    spot_axis=axis / np.linalg.norm(axis),
                    spot_cos=float(np.cos(np.radians(rng.uniform(20, 45)))),
                )
            )
        return lights
    count = int(rng.integers(1, 3 + min(4, int(area / 15))))
    power = rng.uniform(1.5, 6.0) * (1.3 if count == 1 else 1.0)
    return [
        Light(
            colour=_white(rng, style) * power * rng.uniform(0.7, 1.3),
            position=rng.uniform(lo, hi) * [0.85, 0.85, 0]
            + [0, 0, height - rng.uniform(0.05, 0.6)],
        )
        for _ in range(count)
    ]


def sun(rng: np.random.Generator, style: str) -> Light:
    """Directional light; "c" gets a low, coloured (dusk / stage) sun."""
    direction = rng.normal(size=3)
    if style == "c":
        direction[2] = abs(direction[2]) * 0.3 + 0.1
        colour = _coloured(rng) * rng.uniform(1.5, 3.0)
    else:
        direction[2] = abs(direction[2]) + rng.uniform(0.15, 0.6)
        colour = _white(rng, style) * rng.uniform(1.5, 4.0)
    return Light(colour=colour, direction=direction / np.linalg.norm(direction))


def ambient(rng: np.random.Generator, style: str) -> np.ndarray:
    if style == "a":
        return np.full(3, rng.uniform(0.12, 0.5))
    if style == "b":
        return np.array([0.22, 0.18, 0.14]) * rng.uniform(0.5, 1.4)
    return _coloured(rng) * rng.uniform(0.05, 0.12)


def sky(rng: np.random.Generator, style: str) -> tuple[np.ndarray, np.ndarray]:
    """(horizon, zenith) colours."""
    if style == "a":  # clear to lightly overcast
        overcast = rng.uniform(0.0, 0.7)
        horizon = np.array([0.75, 0.85, 0.95]) * (1 - overcast) + 0.85 * overcast
        zenith = np.array([0.35, 0.55, 0.9]) * (1 - overcast) + 0.7 * overcast
        return horizon, zenith
    if style == "b":
        return np.array([0.85, 0.8, 0.7]), np.array([0.6, 0.62, 0.65])  # hazy, overcast
    return _coloured(rng) * rng.uniform(0.3, 0.6), np.array([0.05, 0.05, 0.15])  # dusk


def spot_factor(light: Light, from_light: np.ndarray) -> np.ndarray:
    """Spotlight attenuation for unit vectors ``from_light`` (N×3) leaving the light."""
    if light.spot_axis is None:
        return np.ones(len(from_light))
    cos = from_light @ light.spot_axis
    edge = light.spot_cos * 0.8
    return np.clip((cos - edge) / max(light.spot_cos - edge, 1e-6), 0.0, 1.0)
