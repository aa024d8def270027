"""`dav2-train da2k` on bad input: one `error:` line naming the thing, exit code 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from dav2_train.da2k.cli import main


def _images(folder: Path, count: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((56, 70, 3), 40 * i, np.uint8))
    return folder


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_an_image_folder_without_images_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "photos"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    # The real entry point, as a user types it.
    result = subprocess.run(
        [sys.executable, "-m", "dav2_train.cli", "da2k", "propose", str(empty), "--out",
         str(tmp_path / "out"), "--experts", "bundled", "bundled"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"dav2-train da2k propose: error: {empty}: no " in result.stderr
    assert "images below this folder" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-made


def test_an_expert_that_fails_to_load_is_named(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 64)
    code = main(
        ["propose", str(_images(tmp_path / "in")), "--out", str(tmp_path / "out"),
         "--experts", str(broken), "bundled"]
    )  # fmt: skip
    assert code == 2
    err = _error(capsys)
    assert f"expert '{broken}' cannot be loaded" in err
    assert not (tmp_path / "out").exists()


def test_one_expert_is_not_a_vote(tmp_path: Path, capsys) -> None:
    code = main(
        ["propose", str(_images(tmp_path / "in")), "--out", str(tmp_path / "out"),
         "--experts", "bundled"]
    )  # fmt: skip
    assert code == 2
    assert "--experts needs two or more checkpoints, got 1" in _error(capsys)


def test_sam_without_segment_anything_says_why_and_what_to_do(tmp_path: Path, capsys) -> None:
    try:
        import segment_anything  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("segment-anything imports here; this test covers the case where it cannot")
    sam = tmp_path / "sam_vit_b_01ec64.pth"
    sam.write_bytes(b"")
    code = main(
        ["propose", str(_images(tmp_path / "in")), "--out", str(tmp_path / "out"),
         "--experts", "bundled", "bundled", "--sam-checkpoint", str(sam)]
    )  # fmt: skip
    assert code == 2
    err = _error(capsys)
    assert "segment-anything package cannot be imported" in err
    assert "leave out --sam-checkpoint" in err


def test_a_malformed_annotations_file_is_named_before_any_model_loads(
    tmp_path: Path, capsys
) -> None:
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"images/a.png": [{"point1": [1, 2], "closer_point": "point1"}]}))
    assert main(["evaluate", "--annotations", str(path), "--checkpoint", "missing.pth"]) == 2
    err = _error(capsys)
    assert f"{path}: image 'images/a.png', pair 0: missing point2" in err


def test_a_missing_image_and_a_point_outside_it_are_named(tmp_path: Path, capsys) -> None:
    _images(tmp_path / "images")  # images/0.png, 70×56
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"images/9.png": [{"point1": [1, 2], "point2": [3, 4],
                                                  "closer_point": "point1"}]}))  # fmt: skip
    assert main(["evaluate", "--annotations", str(path), "--input-size", "42"]) == 2
    assert "image 'images/9.png' is missing" in _error(capsys)
    path.write_text(json.dumps({"images/0.png": [{"point1": [1, 2], "point2": [56, 4],
                                                  "closer_point": "point1"}]}))  # fmt: skip
    assert main(["evaluate", "--annotations", str(path), "--input-size", "42"]) == 2
    assert "point [56, 4] lies outside the image (56 rows x 70 columns)" in _error(capsys)


def test_annotating_a_folder_without_a_proposal_says_what_to_run(tmp_path: Path, capsys) -> None:
    assert main(["annotate", str(tmp_path), "--port", "0"]) == 2
    assert "no proposal.json here; run `dav2-train da2k propose" in _error(capsys)


def test_evaluate_scores_the_official_layout_per_scene_type(tmp_path: Path, capsys) -> None:
    """Flipping every label turns accuracy a into 1 - a: the scorer reads the labels."""
    rng = np.random.default_rng(0)
    annotations = {}
    for scene in ("indoor", "outdoor"):
        folder = tmp_path / "images" / scene
        folder.mkdir(parents=True)
        rgb = np.zeros((56, 70, 3), np.uint8)
        rgb[:28] = (150, 190, 240)  # sky above ground: the model has something to see
        rgb[28:] = np.linspace(40, 160, 28)[:, None, None].astype(np.uint8)
        cv2.imwrite(str(folder / "a.png"), rgb)
        annotations[f"images/{scene}/a.png"] = [
            {"point1": [int(rng.integers(56)), int(rng.integers(70))],
             "point2": [int(rng.integers(56)), int(rng.integers(70))],
             "closer_point": str(rng.choice(["point1", "point2"]))}
            for _ in range(6)
        ]  # fmt: skip
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(annotations))
    assert main(["evaluate", "--annotations", str(path), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads((tmp_path / "r.json").read_text())
    assert out[-1] == f"pair accuracy: {result['accuracy']:.3f} (12 pairs)"
    assert set(result["per_scene"]) == {"indoor", "outdoor"}
    assert sum(row["pairs"] for row in result["per_scene"].values()) == 12
    for pairs in annotations.values():
        for pair in pairs:
            pair["closer_point"] = "point2" if pair["closer_point"] == "point1" else "point1"
    path.write_text(json.dumps(annotations))
    assert main(["evaluate", "--annotations", str(path), "--json", str(tmp_path / "f.json")]) == 0
    flipped = json.loads((tmp_path / "f.json").read_text())
    assert flipped["correct"] == 12 - result["correct"]
