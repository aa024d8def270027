"""Image sources for the training tools: an image folder (a rosbag2 comes with issue 11).

TEMPORARY folder-only stand-in with the signature issue 11 is writing; it is dropped at
merge in favour of that module (which adds rosbag2 input, ``topic`` and ``every``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class SourceImage:
    key: str  # stable name of the image inside its source (relative file path here)
    rgb: np.ndarray  # HxWx3 uint8 RGB
    stamp_ns: int | None  # capture time where the source knows it


def open_image_source(
    path: str | Path, topic: str | None = None, every: int = 1
) -> Iterator[SourceImage]:
    """Every ``every``-th image of a folder (recursive, sorted by path)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not an image folder (rosbag2 input comes later)")
    if topic is not None:
        raise ValueError(f"{folder}: --topic applies to a rosbag2, but this is an image folder")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no {'/'.join(IMAGE_SUFFIXES)} images in this folder")
    return _read(folder, files[::every])


def _read(folder: Path, files: list[Path]) -> Iterator[SourceImage]:
    for file in files:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{file}: not a readable image")
        yield SourceImage(file.relative_to(folder).as_posix(), bgr[..., ::-1].copy(), None)
