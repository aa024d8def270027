"""Honest runs: a finished step whose config or inputs changed is refused, not skipped."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from bag_tools import frames
from dav2_train.cli import main
from dav2_train.shards import iter_split, read_split

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.random_weights import randomize_weights_

STUDENT = {"command": "student", "encoder": "vitt6", "input_size": 28, "data": "pseudo",
           "steps": 2, "batch_size": 2, "workers": 0, "warmup_steps": 1}  # fmt: skip


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i, frame in enumerate(frames(4, 28, 42, seed=5)):
        cv2.imwrite(str(images / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    _save_teacher(tmp_path / "teacher.pth", seed=1)
    config = {"run_dir": str(tmp_path / "run"), "max_depth_m": 20.0, "device": "cpu",
              "threads": 1, "student": STUDENT,
              "pseudo_label": {"teacher": str(tmp_path / "teacher.pth"), "images": str(images),
                               "out": "pseudo", "input_size": 28, "shard_size": 2}}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def _save_teacher(path: Path, seed: int) -> None:
    torch.save(
        randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=seed).state_dict(), path
    )


def _dav2_train(run: Path, *args: str) -> int:
    return main([*args, "--config", str(run / "config.yaml")])


def _labels(run: Path) -> list:
    return [s.label for _, s in iter_split(read_split(run / "run" / "data" / "pseudo"))]


def test_a_changed_teacher_is_refused_and_force_relabels(
    run: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _dav2_train(run, "pseudo-label") == 0
    first = _labels(run)
    assert _dav2_train(run, "pseudo-label") == 0
    assert "already labelled with the same teacher and sources" in capsys.readouterr().out

    _save_teacher(run / "teacher.pth", seed=2)  # same file name, other weights
    assert _dav2_train(run, "pseudo-label") == 2
    error = capsys.readouterr().err
    assert "changed: inputs.teacher.sha256:" in error and "--force" in error
    assert all((a == b).all() for a, b in zip(first, _labels(run), strict=True))  # kept as was

    assert _dav2_train(run, "pseudo-label", "--force") == 0
    assert "--force: discarding" in capsys.readouterr().out
    assert not any((a == b).all() for a, b in zip(first, _labels(run), strict=True))


def test_a_changed_train_config_is_refused_and_force_retrains(
    run: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _dav2_train(run, "pseudo-label") == 0
    assert _dav2_train(run, "student") == 0
    final = run / "run" / "student" / "final.safetensors"
    before = final.stat().st_mtime_ns
    assert _dav2_train(run, "student") == 0
    assert "already finished with the same config and inputs" in capsys.readouterr().out

    assert _dav2_train(run, "student", "--set", "student.lr_encoder=3.0e-4") == 2
    assert "config.lr_encoder: 0.0002 -> 0.0003" in capsys.readouterr().err
    assert final.stat().st_mtime_ns == before  # not skipped silently, not overwritten

    assert _dav2_train(run, "student", "--set", "student.lr_encoder=3.0e-4", "--force") == 0
    assert load_model(final).meta.provenance["config"]["lr_encoder"] == 3.0e-4


def test_relabelled_data_makes_the_student_that_used_it_refuse(
    run: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _dav2_train(run, "pseudo-label") == 0
    assert _dav2_train(run, "student") == 0
    _save_teacher(run / "teacher.pth", seed=3)
    assert _dav2_train(run, "pseudo-label", "--force") == 0
    capsys.readouterr()
    assert _dav2_train(run, "student") == 2
    error = capsys.readouterr().err
    assert "[student]" in error and "changed: inputs.data.pseudo:" in error
    stored = json.loads((run / "run" / "student" / "fingerprint.json").read_text())
    assert (
        stored["inputs"]["data"]["pseudo"]
        != read_split(run / "run/data/pseudo").fingerprint["digest"]
    )


def test_outputs_without_a_fingerprint_are_refused_unless_adopted(
    run: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _dav2_train(run, "pseudo-label") == 0
    fingerprint_file = run / "run" / "data" / "pseudo" / "fingerprint.json"
    fingerprint_file.unlink()  # as a run of the first streaming commit left it
    labels = _labels(run)
    assert _dav2_train(run, "pseudo-label") == 2
    assert "no fingerprint.json (made by an older dav2-train); --adopt" in capsys.readouterr().err
    assert _dav2_train(run, "pseudo-label", "--adopt") == 0
    assert "--adopt: recording the current fingerprint" in capsys.readouterr().out
    assert json.loads(fingerprint_file.read_text())["adopted"] is True
    assert all((a == b).all() for a, b in zip(labels, _labels(run), strict=True))  # kept
    assert _dav2_train(run, "pseudo-label") == 0  # adopted: now an ordinary finished step
