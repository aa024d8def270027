"""The synthetic recipe at toy size (``configs/toy.yaml``): every step, every artifact.

synth → teacher → pseudo-label (image folder) → student + baseline → finetune-metric
(also with a confidence head beside it) → a confidence head on the frozen fine-tune →
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
from dav2_train import sparsification
from dav2_train.config import load_config, split_dir, train_section
from dav2_train.evaluate import PRIOR_NAME
from dav2_train.losses import laplace_nll, log_depth_residual
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
    assert set(metrics) == {*TRAINED, "confidence", PRIOR_NAME}  # and the layout prior
    for splits in metrics.values():
        assert {"a_test", "b_test"} <= set(splits)
        for row in splits.values():
            assert row["absrel"] >= 0 and 0 <= row["delta1"] <= 1 and row["images"] == 4
        assert 0 <= splits["b_test"]["da2k_accuracy"] <= 1 and splits["b_test"]["da2k_pairs"] > 0


def test_export_loads_through_the_nodes_loader_with_a_model_card(toy_run: Path) -> None:
    loaded = load_model(toy_run / "export" / "default.safetensors")
    assert loaded.meta.depth_type == "metric" and loaded.meta.encoder == "vitt6"
    assert loaded.meta.has_confidence_head  # the exported section is the head on the fine-tune
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


def _head_nll(model: DepthAnythingV2, config: dict) -> float:
    """Mean Laplace NLL of ``model``'s head for its own log-depth error over a_train (fixed
    crops, no flips, valid depth only)."""
    split = read_split(split_dir(config, "a_train"))
    transform = SampleTransform(split.kind, 56, 56, hflip=False)
    losses = []
    with torch.no_grad():
        for index, sample in iter_split(split):
            item = transform(sample, np.random.default_rng(index))
            depth_m, valid = loss_targets(
                "depth_m",
                "finetune-metric",
                item["target"][None],
                item["mask"][None],
                "ignore",
                20.0,
            )
            pred, log_error = model.depth_and_log_error(item["image"][None])
            losses.append(
                float(laplace_nll(log_error, log_depth_residual(pred, depth_m, valid), valid))
            )
    return float(np.mean(losses))


def _fresh_head(model: DepthAnythingV2) -> DepthAnythingV2:
    """The same model with the head a section starts from (the run's seed)."""
    torch.manual_seed(0)
    model.add_confidence_head()
    return model.eval()


@pytest.mark.parametrize(
    ("plain_name", "joint_name"),
    [("student", "student_confident"), ("finetune_metric", "finetune_confident")],
)
def test_a_head_trained_with_the_model_leaves_its_depth_weights_as_without(
    toy_run: Path, plain_name: str, joint_name: str
) -> None:
    config = load_config(TOY, [f"run_dir={toy_run}"])
    plain = load_trained(config, plain_name).model.state_dict()
    joint = load_trained(config, joint_name)
    assert joint.model.has_confidence_head and joint.loaded.meta.has_confidence_head
    # Stop-gradient and separate clipping: bit for bit, CutMix and trimming included.
    for key, value in plain.items():
        torch.testing.assert_close(joint.model.state_dict()[key], value, rtol=0, atol=0)
    if joint.model.depth_type == "metric":
        fresh = _fresh_head(load_trained(config, plain_name).model)
        assert _head_nll(joint.model, config) < _head_nll(fresh, config)
    else:
        assert "normalised disparity" in joint.loaded.meta.confidence_head["measures"]


def test_a_confidence_section_trains_a_head_on_its_frozen_init(toy_run: Path) -> None:
    config = load_config(TOY, [f"run_dir={toy_run}"])
    base = load_trained(config, "finetune_metric")
    trained = load_trained(config, "confidence")
    meta = trained.loaded.meta
    assert meta.depth_type == "metric" and meta.input_size == base.loaded.meta.input_size
    assert "section `confidence`" in meta.confidence_head["trained_by"]
    assert "ln d" in meta.confidence_head["measures"]
    for key, value in base.model.state_dict().items():
        torch.testing.assert_close(trained.model.state_dict()[key], value, rtol=0, atol=0)
    fresh = _fresh_head(base.model)
    assert _head_nll(trained.model, config) < 0.9 * _head_nll(fresh, config)


def test_evaluate_ranks_pixels_by_the_head_and_by_the_heuristics(toy_run: Path) -> None:
    metrics = json.loads((toy_run / "evaluate" / "metrics.json").read_text())
    for model_name, splits in metrics.items():
        for row in splits.values():
            ranked = row.get("confidence", {})
            if model_name == PRIOR_NAME:
                assert not ranked  # a layout prior has nothing to rank
                continue
            expected = {sparsification.ORACLE, *sparsification.HEURISTICS}
            if model_name == "confidence":
                expected.add(sparsification.HEAD)
            assert set(ranked) == expected
            oracle = ranked[sparsification.ORACLE]
            for figures in ranked.values():
                assert len(figures["curve"]) == len(sparsification.FRACTIONS)
                assert figures["absrel_all"] == pytest.approx(row["absrel"], rel=1e-6)
                assert figures["ause"] >= -1e-9  # nothing ranks better than the true error
                assert figures["absrel_confident50"] >= oracle["absrel_confident50"] - 1e-9
    table = (toy_run / "evaluate" / "metrics.md").read_text()
    assert "| b_test | confidence head |" in table
