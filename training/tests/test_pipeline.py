"""The synthetic recipe at toy size (``configs/toy.yaml``): every step, every artifact.

synth → teacher → pseudo-label (image folder) → student + baseline → finetune-metric →
evaluate → export, one process. Distributed training, resume, checkpoints and rosbags
coming in from outside are the end-to-end test's job (``test_end_to_end.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dav2_train.config import load_config, split_dir, train_section
from dav2_train.evaluate import PRIOR_NAME
from dav2_train.models import load_trained
from dav2_train.shards import iter_split, read_split
from dav2_train.stream import SampleTransform
from dav2_train.train import loss_targets, section_loss, sky_mode, trim_fraction

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "training" / "configs" / "toy.yaml"
CLI = [sys.executable, "-m", "dav2_train.cli"]
TRAINED = ("teacher", "student", "baseline", "finetune_metric")


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("toy")
    _run(
        [
            *CLI,
            "pipeline",
            "--config",
            str(TOY),
            f"--set=run_dir={run_dir}",
            f"--set=export.out={run_dir}/export/default",
        ]
    )
    return run_dir


def test_synth_writes_rgb_and_nan_invalid_depth_with_intrinsics(toy_run: Path) -> None:
    split = read_split(toy_run / "data" / "a_train")
    assert split.kind == "depth_m" and split.samples == 16
    samples = [sample for _, sample in iter_split(split)]
    assert samples[0].rgb.shape == (56, 70, 3) and samples[0].rgb.dtype == np.uint8
    assert any(np.isnan(s.label).any() for s in samples)  # sky / beyond range
    assert np.array(samples[0].meta["K"]).shape == (3, 3)
    images = list((toy_run / "data" / "b_unlabelled" / "images").glob("*.png"))
    assert len(images) == 16
    annotations = json.loads(
        (toy_run / "data" / "b_test" / "da2k" / "annotations.json").read_text()
    )
    pair = next(p for pairs in annotations.values() for p in pairs)
    assert set(pair) == {"point1", "point2", "closer_point"}


def test_synth_is_deterministic_by_seed_whatever_the_sharding(
    toy_run: Path, tmp_path: Path
) -> None:
    _run(
        [
            *CLI,
            "synth",
            "--config",
            str(TOY),
            f"--set=run_dir={tmp_path}",
            "--set=synth.shard_size=5",
            "--set=synth.splits={a_train: {style: a, count: 16, seed: 11}}",
        ]
    )
    again = [s for _, s in iter_split(read_split(tmp_path / "data" / "a_train"))]
    first = [s for _, s in iter_split(read_split(toy_run / "data" / "a_train"))]
    for a, b in zip(again, first, strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.label, b.label)


def test_pseudo_labels_cover_every_unlabelled_image(toy_run: Path) -> None:
    split = read_split(toy_run / "data" / "pseudo_b")
    assert split.kind == "disparity" and split.samples == 16
    sources = sorted(sample.meta["source"] for _, sample in iter_split(split))
    assert sources == sorted(p.name for p in (toy_run / "data/b_unlabelled/images").glob("*.png"))
    for _, sample in iter_split(split):
        assert sample.label.shape == (56, 70) and np.isfinite(sample.label).all()


def _dataset_loss(model: DepthAnythingV2, config: dict, name: str) -> float:
    """Mean training loss of ``model`` over the section's split (fixed crops, no flips)."""
    cfg = train_section(config, name)
    split = read_split(split_dir(config, cfg["data"]))
    transform = SampleTransform(split.kind, cfg["input_size"], cfg["input_size"], hflip=False)
    losses = []
    with torch.no_grad():
        for index, sample in iter_split(split):
            item = transform(sample, np.random.default_rng(index))
            target, mask = loss_targets(
                split.kind,
                cfg["command"],
                item["target"][None],
                item["mask"][None],
                sky_mode(cfg),
                20.0,
            )
            pred = model(item["image"][None])
            loss = section_loss(
                cfg["command"], cfg, trim_fraction(cfg, split.kind), pred, target, mask
            )
            losses.append(float(loss))
    return float(np.mean(losses))


@pytest.mark.parametrize("name", TRAINED)
def test_every_trained_model_loads_and_its_loss_fell(toy_run: Path, name: str) -> None:
    config = load_config(TOY, [f"run_dir={toy_run}"])
    trained = load_trained(config, name)
    run = trained.loaded.meta.provenance
    expected_type = "metric" if name == "finetune_metric" else "relative"
    assert trained.loaded.meta.depth_type == expected_type
    assert run["git_revision"] and run["section"] == name  # provenance of every step
    with torch.no_grad():
        assert trained.model(torch.zeros(1, 3, 56, 70)).shape == (1, 56, 70)
    history = json.loads((toy_run / name / "history.json").read_text())
    assert [row[0] for row in history] == list(range(1, run["steps"] + 1))
    assert list((toy_run / name / "tb").glob("events.out.tfevents.*"))
    # Loss over the whole training split: below the model the section started from
    # (its `init` section's weights, or a fresh random model).
    torch.manual_seed(0)
    start = DepthAnythingV2("vitt6", expected_type, 20.0).eval()
    if run["init"]:
        start = load_trained(config, run["init"]["section"]).model
        if expected_type == "metric":
            from dav2_train.models import flip_output_for_metric

            metric = DepthAnythingV2("vitt6", "metric", 20.0).eval()
            metric.load_state_dict(start.state_dict())
            flip_output_for_metric(metric)
            start = metric
    assert _dataset_loss(trained.model, config, name) < 0.9 * _dataset_loss(start, config, name)


def test_evaluate_reports_absrel_delta1_and_da2k(toy_run: Path) -> None:
    metrics = json.loads((toy_run / "evaluate" / "metrics.json").read_text())
    assert set(metrics) == {*TRAINED, PRIOR_NAME}  # the layout prior is scored alongside
    for splits in metrics.values():
        assert {"a_test", "b_test"} <= set(splits)
        for row in splits.values():
            assert row["absrel"] >= 0 and 0 <= row["delta1"] <= 1 and row["images"] == 4
        assert 0 <= splits["b_test"]["da2k_accuracy"] <= 1 and splits["b_test"]["da2k_pairs"] > 0


def test_export_loads_through_the_nodes_loader_with_a_model_card(toy_run: Path) -> None:
    loaded = load_model(toy_run / "export" / "default.safetensors")
    assert loaded.meta.depth_type == "metric" and loaded.meta.encoder == "vitt6"
    assert loaded.meta.input_size == 56 and loaded.meta.max_depth == 20.0
    provenance = loaded.meta.provenance
    assert provenance["git_revision"] and provenance["steps"]
    assert "b_test" in loaded.meta.metrics["held_out"]
    config = load_config(TOY, [f"run_dir={toy_run}"])
    trained = load_trained(config, "finetune_metric")
    for key, value in trained.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    card = (toy_run / "export" / "MODEL_CARD.md").read_text()
    assert "git revision" in card and "AbsRel" in card
    # The card says what ran: synthetic data, the pseudo-labelled folder, the teacher section.
    assert "16 procedural synthetic frames" in card and "b_unlabelled/images" in card
    assert "`student` started from random initialisation" in card
