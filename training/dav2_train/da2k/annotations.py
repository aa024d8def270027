"""The official DA-2K annotation format: read strictly, written atomically.

``annotations.json`` maps an image path (relative to the file's folder) to its pairs::

    {"images/indoor/0001.jpg": [{"point1": [row, col], "point2": [row, col],
                                 "closer_point": "point1"}, ...]}

Files we write always have the closer point as ``point1``; files we read may say
``"point2"`` too. The scene type of an image is the folder it sits in
(``images/<scene type>/<file>``, as the official release lays out its eight
scenarios), so the file itself stays exactly the official schema. A sidecar JSON
``{"<image path>": "<scene type>"}`` can override that for other layouts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

CLOSER_CHOICES = ("point1", "point2")
NO_SCENE_TYPE = "(none)"
IMAGES_FOLDER = "images"


class AnnotationError(ValueError):
    """An annotations (or sidecar) file that does not follow the format; says where."""


@dataclass(frozen=True)
class PairLabel:
    """Two pixels of one image, ``(row, col)`` each, the first one closer to the camera."""

    closer: tuple[int, int]
    farther: tuple[int, int]

    def to_official(self) -> dict[str, Any]:
        return {
            "point1": list(self.closer),
            "point2": list(self.farther),
            "closer_point": "point1",
        }


Annotations = dict[str, list[PairLabel]]


def read_annotations(path: str | Path) -> Annotations:
    """``annotations.json`` → image path → pairs; every mistake is named with its place."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AnnotationError(f"{path}: no such annotations file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise AnnotationError(
            f"{path}: expected a JSON object mapping image paths to lists of pairs, "
            f"found a {type(data).__name__}"
        )
    return {image: _read_pairs(path, image, pairs) for image, pairs in data.items()}


def _read_pairs(path: Path, image: str, pairs: Any) -> list[PairLabel]:
    where = f"{path}: image {image!r}"
    if not isinstance(pairs, list):
        raise AnnotationError(f"{where}: expected a list of pairs, found {type(pairs).__name__}")
    labels = []
    for index, pair in enumerate(pairs):
        here = f"{where}, pair {index}"
        if not isinstance(pair, dict):
            raise AnnotationError(f"{here}: expected an object, found {type(pair).__name__}")
        missing = [key for key in ("point1", "point2", "closer_point") if key not in pair]
        if missing:
            raise AnnotationError(
                f"{here}: missing {', '.join(missing)} (each pair needs point1, point2 and "
                "closer_point)"
            )
        point1 = _read_point(here, "point1", pair["point1"])
        point2 = _read_point(here, "point2", pair["point2"])
        closer = pair["closer_point"]
        if closer not in CLOSER_CHOICES:
            raise AnnotationError(
                f"{here}: closer_point must be 'point1' or 'point2', found {closer!r}"
            )
        labels.append(
            PairLabel(point1, point2) if closer == "point1" else PairLabel(point2, point1)
        )
    return labels


def _read_point(where: str, name: str, value: Any) -> tuple[int, int]:
    valid = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    )
    if not valid:
        raise AnnotationError(
            f"{where}: {name} must be [row, col] as two non-negative integers, found {value!r}"
        )
    return int(value[0]), int(value[1])


def write_annotations(path: str | Path, annotations: Annotations) -> None:
    """Write the official layout (closer point first), atomically."""
    data = {image: [p.to_official() for p in pairs] for image, pairs in annotations.items()}
    write_json_atomic(Path(path), data)


def check_points_inside(path: Path, image: str, pairs: list[PairLabel], height: int, width: int):
    """Every point lies inside an image of ``height`` × ``width`` pixels."""
    for index, pair in enumerate(pairs):
        for row, col in (pair.closer, pair.farther):
            if row >= height or col >= width:
                raise AnnotationError(
                    f"{path}: image {image!r}, pair {index}: point [{row}, {col}] lies outside "
                    f"the image ({height} rows x {width} columns)"
                )


def scene_type_of(image: str) -> str:
    """The folder an image sits in, as the official ``images/<scene type>/`` layout."""
    parent = PurePosixPath(image).parent.name
    return parent if parent not in ("", IMAGES_FOLDER) else NO_SCENE_TYPE


def read_scene_types(annotations: Annotations, sidecar: str | Path | None = None) -> dict[str, str]:
    """Image path → scene type: the sidecar's entry if given, else the image's folder."""
    explicit: dict[str, str] = {}
    if sidecar is not None:
        sidecar = Path(sidecar)
        try:
            explicit = json.loads(sidecar.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AnnotationError(f"{sidecar}: not a readable JSON file ({exc})") from None
        if not isinstance(explicit, dict) or not all(isinstance(v, str) for v in explicit.values()):
            raise AnnotationError(
                f"{sidecar}: expected a JSON object mapping image paths to scene-type strings"
            )
    return {image: explicit.get(image) or scene_type_of(image) for image in annotations}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file beside ``path`` and rename it over (readers never see half)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
