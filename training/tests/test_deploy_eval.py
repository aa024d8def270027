"""The deployment table: ordinal pairs, metrics by hand, held-out guards, a real run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dav2_train import deploy_eval, sparsification, synth, train
from dav2_train.config import load_config
from dav2_train.dist import DistContext
from dav2_train.shards import read_split, refuse_held_out

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, save_model
from dav2_ros.model.random_weights import randomize_weights_


def _ramp_depth() -> tuple[np.ndarray, np.ndarray]:
    """8×6 depth: near at the bottom rows, plus one near box high up (top-left corner)."""
    depth = np.repeat(np.linspace(8.0, 1.0, 6)[:, None], 8, axis=1).astype(np.float32)
    depth[0:2, 0:2] = 0.5  # closer than everything, yet at the top of the image
    return depth, np.ones_like(depth, dtype=bool)


def test_balanced_pairs_give_the_layout_prior_exactly_one_half() -> None:
    depth, valid = _ramp_depth()
    pairs = deploy_eval.ordinal_pairs(depth, valid, np.random.default_rng(0), pairs=300)
    closer, farther = pairs
    assert closer.size == 300
    ratio = depth.ravel()[farther] / depth.ravel()[closer]
    assert ratio.min() >= 1.25  # only clearly ordered pairs, closer listed first
    balanced = deploy_eval.balanced_pairs(closer, farther, width=8)
    rows_c, rows_f = balanced[0] // 8, balanced[1] // 8
    assert np.sum(rows_c > rows_f) == np.sum(rows_c < rows_f) > 0
    prior = deploy_eval.lower_is_closer(6, 8)
    assert deploy_eval.ordinal_accuracy(prior, *balanced) == 0.5
    assert deploy_eval.ordinal_accuracy(depth, *balanced) == 1.0  # the truth orders all
    assert deploy_eval.ordinal_accuracy(-depth, *balanced) == 0.0
    # Uniform pairs favour the prior here (most of the image is a floor-like ramp).
    assert deploy_eval.ordinal_accuracy(prior, *pairs) > 0.8


def test_frame_metrics_by_hand() -> None:
    depth, valid = _ramp_depth()
    pairs = deploy_eval.ordinal_pairs(depth, valid, np.random.default_rng(1))
    # A metric prediction 10 % too far everywhere: AbsRel 0.1, δ1 1, and an affine
    # map in inverse depth (scale 1/1.1) that the alignment undoes exactly.
    row = deploy_eval.frame_metrics(1.1 * depth, "metric", depth, valid, 20.0, pairs)
    assert row["absrel"] == pytest.approx(0.1) and row["delta1"] == 1.0
    assert row["absrel_aligned"] == pytest.approx(0.0, abs=1e-6)
    assert row["ordinal"] == row["ordinal_uniform"] == 1.0 and row["ordinal_prior"] == 0.5
    # A relative model's disparity 3/d + 2: no metric numbers, perfect after alignment.
    row = deploy_eval.frame_metrics(3.0 / depth + 2.0, "relative", depth, valid, 20.0, pairs)
    assert "absrel" not in row and row["absrel_aligned"] == pytest.approx(0.0, abs=1e-6)
    assert row["ordinal"] == 1.0 and row["ordinal_ties"] == 0.0


def test_a_region_clamped_to_zero_disparity_is_reported_as_ties() -> None:
    """The cut run's relative models set a third of every frame to exactly 0 (the head's
    ReLU): their balanced ordinal accuracy was chance, and the table must say why."""
    depth, valid = _ramp_depth()
    pairs = deploy_eval.ordinal_pairs(depth, valid, np.random.default_rng(2))
    clamped = 1.0 / depth
    clamped[:3] = 0.0  # the upper half dead, as the relative students' output
    row = deploy_eval.frame_metrics(clamped, "relative", depth, valid, 20.0, pairs)
    assert 0.1 < row["ordinal_ties"] < 1.0
    assert row["ordinal"] <= 1.0 - row["ordinal_ties"]  # a tie is never a right answer
    flat = deploy_eval.frame_metrics(np.zeros_like(depth), "relative", depth, valid, 20.0, pairs)
    assert flat["ordinal"] == 0.0 and flat["ordinal_ties"] == 1.0


def _config(tmp_path, splits: dict) -> dict:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        json.dumps(
            {
                "run_dir": str(tmp_path / "run"),
                "max_depth_m": 20.0,
                "image": {"width": 56, "height": 42},
                "synth": {"shard_size": 2, "workers": 1, "splits": splits},
            }
        )
    )
    return load_config(path)


def test_held_out_style_renders_only_into_marked_test_splits(tmp_path) -> None:
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    for split in (
        {"style": "c", "count": 1, "seed": 1},
        {"style": "c", "count": 1, "seed": 1, "held_out": True, "format": "images"},
    ):
        with pytest.raises(ValueError, match="held out from training"):
            synth.run(_config(tmp_path, {"c_train": split}), "synth", ctx)
    config = _config(tmp_path, {"c_test": {"style": "c", "count": 1, "seed": 1, "held_out": True}})
    synth.run(config, "synth", ctx)
    split = read_split(tmp_path / "run" / "data" / "c_test")
    assert split.provenance["held_out"] is True and split.provenance["style"] == "c"
    with pytest.raises(ValueError, match="held-out test split"):
        refuse_held_out(split)
    # A train section pointed at it is refused before any step.
    config["teacher"] = {
        "command": "teacher",
        "data": "c_test",
        "encoder": "vitt6",
        "input_size": 28,
        "steps": 1,
        "batch_size": 1,
    }
    with pytest.raises(ValueError, match="held-out test split"):
        train.run(config, "teacher", ctx)


def test_table_from_a_real_model_on_rendered_splits(tmp_path) -> None:
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    splits = {
        "a_test": {"style": "a", "count": 3, "seed": 2, "width": 84, "height": 56},
        "c_test": {
            "style": "c",
            "count": 2,
            "seed": 3,
            "held_out": True,
            "width": 84,
            "height": 56,
        },
    }
    synth.run(_config(tmp_path, splits), "synth", ctx)
    model = DepthAnythingV2("vitt6", "metric", 20.0, confidence_head=True)
    randomize_weights_(model, seed=0)
    checkpoint = save_model(
        model, ModelMeta("vitt6", "metric", 20.0, input_size=28), tmp_path / "m"
    )
    config = _config(tmp_path, splits)
    config["deploy_eval"] = {
        "models": {"metric": str(checkpoint)},
        "splits": ["a_test", "c_test"],
        "bench": False,
        "threads": 1,
    }
    results = deploy_eval.run(config, "deploy_eval", ctx)
    rows = results["metric"]["splits"]
    assert rows["a_test"]["frames"] == 3 and rows["c_test"]["frames"] == 2
    assert rows["a_test"]["image_size"] == "84x56" and rows["c_test"]["held_out"] is True
    for row in rows.values():
        assert row["absrel"] > 0 and 0 <= row["delta1"] <= 1 and 0 <= row["ordinal"] <= 1
        assert row["ordinal_prior"] == 0.5
        # The head and every heuristic ranked against the same metric AbsRel.
        ranked = row["confidence"]
        assert set(ranked) == {
            sparsification.ORACLE,
            sparsification.HEAD,
            *sparsification.HEURISTICS,
        }
        for figures in ranked.values():
            assert figures["absrel_all"] == pytest.approx(row["absrel"], rel=1e-5)
            assert figures["ause"] >= -1e-9
        pooled = row["confidence_pooled"]  # every frame's pixels ranked together
        assert set(pooled) == set(ranked) and pooled[sparsification.HEAD]["ause"] >= -1e-9
    out = tmp_path / "run" / "deploy_eval"
    table = (out / "table.md").read_text()
    assert "c_test (held-out style)" in table and "| metric AbsRel ↓ |" in table
    assert "| c_test | confidence head |" in table and "| a_test | flip disagreement |" in table
    assert "(all frames' pixels ranked together)" in table
    assert json.loads((out / "table.json").read_text()) == results
    # Same models and splits: the table stands; another model is a changed step.
    assert deploy_eval.run(config, "deploy_eval", ctx) == results
    config["deploy_eval"]["models"] = {"missing": "no_such_section_or_file"}
    with pytest.raises(FileNotFoundError, match="neither a section nor a file"):
        deploy_eval.run(config, "deploy_eval", ctx)

    # The command line runs the models at another network size, as the node's
    # engine.input_size would: a different engine, so different scores, and it says so.
    other = tmp_path / "at42"
    argv = ["--model", f"m={checkpoint}", "--split", str(out.parent / "data" / "a_test")]
    deploy_eval.main(
        [*argv, "--out", str(other), "--no-bench", "--threads", "1", "--input-size", "42"]
        + ["--no-confidence"]
    )
    at42 = json.loads((other / "table.json").read_text())["m"]
    assert "confidence" not in at42["splits"]["a_test"]
    assert at42["input_size"] == 42 and results["metric"]["input_size"] == 28
    assert at42["splits"]["a_test"]["absrel"] != rows["a_test"]["absrel"]
