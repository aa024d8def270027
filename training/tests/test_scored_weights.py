"""Scores belong to weights: a section retrained with the same config keeps its
fingerprint, so ``evaluate`` and ``deploy-eval`` score its new weights again, and
``export`` refuses a model card whose scores were made from other weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from dav2_train.cli import main
from dav2_train.models import file_digest

from dav2_ros.model.checkpoints import load_model, save_model
from dav2_ros.model.random_weights import randomize_weights_

TEACHER = {"command": "teacher", "encoder": "vitt6", "input_size": 28, "data": "a_train",
           "steps": 1, "batch_size": 1, "workers": 0, "warmup_steps": 1}  # fmt: skip


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    """A trained toy section (one step on two rendered frames) and a two-frame test split."""
    config = {
        "run_dir": str(tmp_path / "run"),
        "max_depth_m": 20.0,
        "device": "cpu",
        "threads": 1,
        "image": {"width": 56, "height": 42},
        "synth": {
            "shard_size": 2,
            "workers": 1,
            "splits": {
                "a_train": {"style": "a", "count": 2, "seed": 1},
                "a_test": {"style": "a", "count": 2, "seed": 2},
            },
        },
        "teacher": TEACHER,
        "evaluate": {"models": ["teacher"], "splits": ["a_test"], "prior": False},
        "deploy_eval": {
            "models": {"t": "teacher"},
            "splits": ["a_test"],
            "bench": False,
            "threads": 1,
        },  # fmt: skip
        "export": {"model": "teacher", "out": str(tmp_path / "export" / "model")},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert _dav2_train(tmp_path, "synth") == 0
    assert _dav2_train(tmp_path, "teacher") == 0
    return tmp_path


def _dav2_train(run: Path, *args: str) -> int:
    return main([*args, "--config", str(run / "config.yaml")])


def _retrain_with_the_same_config(run: Path) -> str:
    """New weights under the teacher's final checkpoint, its record (and so its
    fingerprint) unchanged, as a retrain after a code fix leaves it; their digest."""
    final = run / "run" / "teacher" / "final.safetensors"
    loaded = load_model(final)
    save_model(randomize_weights_(loaded.model, seed=7), loaded.meta, final)
    assert load_model(final).meta.provenance == loaded.meta.provenance
    return file_digest(final)


def _scored_weights(folder: Path) -> dict:
    return json.loads((folder / "scored_weights.json").read_text())


# step: its folder, its scores, the model's label there, an AbsRel of it on a_test, and
# what the step says when its earlier scores stand.
STEPS = {
    "evaluate": ("evaluate", "metrics.json", "teacher",
                 lambda scores: scores["teacher"]["a_test"]["absrel"], "already evaluated"),
    "deploy-eval": ("deploy_eval", "table.json", "t",
                    lambda scores: scores["t"]["splits"]["a_test"]["absrel_aligned"],
                    "already scored"),
}  # fmt: skip


@pytest.mark.parametrize("step", STEPS)
def test_a_section_whose_weights_change_under_the_same_config_is_scored_again(
    run: Path, capsys: pytest.CaptureFixture, step: str
) -> None:
    folder, scores_file, label, absrel, stands = STEPS[step]
    out = run / "run" / folder

    def scores() -> dict:
        return json.loads((out / scores_file).read_text())

    assert _dav2_train(run, step) == 0
    first = scores()
    assert _dav2_train(run, step) == 0
    assert stands in capsys.readouterr().out

    before = _scored_weights(out)[label]
    sha256 = _retrain_with_the_same_config(run)
    assert _dav2_train(run, step) == 0
    said = capsys.readouterr().out
    assert stands not in said
    assert (
        f"the weights of {label} changed since they were scored (sha256 {before[:12]}… -> "
        f"{sha256[:12]}…): scoring again" in said
    )
    assert absrel(scores()) != absrel(first)
    assert _scored_weights(out) == {label: sha256}
    assert _dav2_train(run, step) == 0
    assert stands in capsys.readouterr().out

    # Scores without a record of their weights (an older run folder) are scored again too.
    (out / "scored_weights.json").unlink()
    assert _dav2_train(run, step) == 0
    said = capsys.readouterr().out
    assert "no record of the weights scored" in said and stands not in said
    assert _scored_weights(out) == {label: sha256}


def test_export_refuses_scores_of_other_weights_until_evaluated_again(
    run: Path, capsys: pytest.CaptureFixture
) -> None:
    exported = run / "export" / "model.safetensors"
    assert _dav2_train(run, "evaluate") == 0
    assert _dav2_train(run, "export") == 0
    scored_before = load_model(exported).meta.metrics["held_out"]
    exported.unlink()

    _retrain_with_the_same_config(run)
    capsys.readouterr()
    assert _dav2_train(run, "export") == 2
    error = capsys.readouterr().err
    assert "the scores of teacher in" in error and "are not of the weights exported" in error
    assert "the weights of teacher changed since they were scored" in error
    assert "Run `dav2-train evaluate` again" in error
    assert not exported.exists()

    assert _dav2_train(run, "evaluate") == 0
    assert _dav2_train(run, "export") == 0
    metrics = json.loads((run / "run" / "evaluate" / "metrics.json").read_text())
    held_out = load_model(exported).meta.metrics["held_out"]
    depth_figures = {split: (row["absrel"], row["delta1"]) for split, row in held_out.items()}
    scored = {split: (row["absrel"], row["delta1"]) for split, row in metrics["teacher"].items()}
    assert depth_figures == scored and held_out != scored_before
    assert "MODEL_CARD.md" in {p.name for p in exported.parent.iterdir()}
