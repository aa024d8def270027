"""Pair accuracy of one model on a DA-2K ``annotations.json``, overall and per scene type.

A pair counts as right when the model's disparity is larger at the closer point
(``dav2_train.metrics.da2k_correct``, the same scorer as ``dav2-train evaluate``).
Image paths are relative to the annotation file's folder, as in the official release.
"""

from __future__ import annotations

from pathlib import Path

from dav2_train.da2k.annotations import (
    AnnotationError,
    check_points_inside,
    read_annotations,
    read_scene_types,
)
from dav2_train.da2k.experts import Expert
from dav2_train.metrics import da2k_correct
from dav2_train.sources import read_image_file


def evaluate_annotations(
    annotations_path: str | Path, model: Expert, scene_types_path: str | Path | None = None
) -> dict:
    """``{"pairs", "correct", "accuracy", "images", "per_scene": {scene: {...}}}``."""
    path = Path(annotations_path)
    annotations = read_annotations(path)
    scene_types = read_scene_types(annotations, scene_types_path)
    counts: dict[str, list[int]] = {}
    images = 0
    for image, pairs in annotations.items():
        if not pairs:
            continue
        file = path.parent / image
        if not file.is_file():
            raise AnnotationError(f"{path}: image {image!r} is missing (looked for {file})")
        rgb = read_image_file(file)
        check_points_inside(path, image, pairs, *rgb.shape[:2])
        correct, total = da2k_correct(model.disparity(rgb), [p.to_official() for p in pairs])
        tally = counts.setdefault(scene_types[image], [0, 0])
        tally[0], tally[1] = tally[0] + correct, tally[1] + total
        images += 1
    correct = sum(c for c, _ in counts.values())
    total = sum(n for _, n in counts.values())
    if total == 0:
        raise AnnotationError(f"{path}: holds no pairs to score")
    return {
        "pairs": total,
        "correct": correct,
        "accuracy": correct / total,
        "images": images,
        "per_scene": {
            scene: {"pairs": n, "correct": c, "accuracy": c / n}
            for scene, (c, n) in sorted(counts.items())
        },
    }


def format_report(result: dict, model_name: str) -> str:
    """A table per scene type; the last line is ``pair accuracy: 0.xxx (N pairs)``."""
    lines = [
        f"model {model_name}, {result['images']} images",
        f"{'scene type':<24} pairs  accuracy",
    ]
    for scene, row in result["per_scene"].items():
        lines.append(f"{scene:<24} {row['pairs']:>5}  {row['accuracy']:.3f}")
    lines.append(f"pair accuracy: {result['accuracy']:.3f} ({result['pairs']} pairs)")
    return "\n".join(lines)
