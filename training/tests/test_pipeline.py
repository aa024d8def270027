"""Every dav2-train step end to end at toy size, under torchrun, and resumed after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from dav2_train.config import load_config, run_dir, train_section
from dav2_train.data import DepthShards, image_paths, load_shards
from dav2_train.evaluate import PRIOR_NAME
from dav2_train.train import load_trained, loss_targets, section_loss
from torch.utils.data import DataLoader

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
    _run([*CLI, "pipeline", "--config", str(TOY), f"--set=run_dir={run_dir}",
          f"--set=export.out={run_dir}/export/default"])  # fmt: skip
    return run_dir


def test_synth_writes_rgb_depth_mask_and_intrinsics(toy_run: Path) -> None:
    shards = load_shards(toy_run / "data" / "a_train")
    assert shards["rgb"].shape == (16, 56, 70, 3) and shards["rgb"].dtype == np.uint8
    assert shards["depth_m"].dtype == np.float32 and shards["K"].shape == (16, 3, 3)
    np.testing.assert_array_equal(shards["valid"], np.isfinite(shards["depth_m"]))
    assert len(image_paths(toy_run / "data" / "b_unlabelled" / "images")) == 16
    annotations = json.loads(
        (toy_run / "data" / "b_test" / "da2k" / "annotations.json").read_text()
    )
    pair = next(p for pairs in annotations.values() for p in pairs)
    assert set(pair) == {"point1", "point2", "closer_point"}


def test_synth_is_deterministic_by_seed_whatever_the_sharding(
    toy_run: Path, tmp_path: Path
) -> None:
    _run([*CLI, "synth", "--config", str(TOY), f"--set=run_dir={tmp_path}",
          "--set=synth.shard_size=5",
          "--set=synth.splits={a_train: {style: a, count: 16, seed: 11}}"])  # fmt: skip
    again = load_shards(tmp_path / "data" / "a_train")
    first = load_shards(toy_run / "data" / "a_train")
    np.testing.assert_array_equal(again["rgb"], first["rgb"])
    np.testing.assert_array_equal(again["depth_m"], first["depth_m"])


def test_pseudo_labels_cover_every_unlabelled_image(toy_run: Path) -> None:
    pseudo = load_shards(toy_run / "data" / "pseudo_b")
    assert pseudo["rgb"].shape[0] == 16 and pseudo["disparity"].shape == (16, 56, 70)
    assert np.isfinite(pseudo["disparity"]).all()


def _dataset_loss(model: DepthAnythingV2, config: dict, name: str) -> float:
    """Mean training loss of ``model`` over the section's whole training split (no flips)."""
    cfg = train_section(config, name)
    command = cfg["command"]
    dataset = DepthShards(run_dir(config) / "data" / cfg["data"], False, cfg["input_size"])
    trim = 0.1 if dataset.target_kind == "disparity" else 0.0
    losses = []
    with torch.no_grad():
        for image, target, mask in DataLoader(dataset, batch_size=4):
            target, mask = loss_targets(dataset.target_kind, command, target, mask, cfg, 20.0)
            losses.append(float(section_loss(command, model(image), target, mask, cfg, trim)))
    return float(np.mean(losses))


@pytest.mark.parametrize("name", TRAINED)
def test_every_trained_model_loads_and_its_loss_fell(toy_run: Path, name: str) -> None:
    config = load_config(TOY, [f"run_dir={toy_run}"])
    model, meta = load_trained(config, name)
    expected_type = "metric" if name == "finetune_metric" else "relative"
    assert meta["depth_type"] == model.depth_type == expected_type
    assert meta["git_revision"]  # provenance of every step
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 56, 70)).shape == (1, 56, 70)
    history = json.loads((toy_run / name / "history.json").read_text())
    assert [step for step, _ in history] == list(range(1, meta["steps"] + 1))
    assert list((toy_run / name / "tb").glob("events.out.tfevents.*"))
    # Loss over the whole training split: below the model the section started from
    # (its `init` section's weights, or a fresh random model).
    torch.manual_seed(0)
    start = DepthAnythingV2(meta["encoder"], meta["depth_type"], meta["max_depth"]).eval()
    if meta["init"]:
        start.load_state_dict(load_trained(config, meta["init"])[0].state_dict())
    assert _dataset_loss(model, config, name) < 0.9 * _dataset_loss(start, config, name)


def test_evaluate_reports_absrel_delta1_and_da2k(toy_run: Path) -> None:
    metrics = json.loads((toy_run / "evaluate" / "metrics.json").read_text())
    assert set(metrics) == {*TRAINED, PRIOR_NAME}  # the layout prior is scored alongside
    for splits in metrics.values():
        assert {"a_test", "b_test"} <= set(splits)
        for row in splits.values():
            assert row["absrel"] >= 0 and 0 <= row["delta1"] <= 1
        assert 0 <= splits["b_test"]["da2k_accuracy"] <= 1 and splits["b_test"]["da2k_pairs"] > 0


def test_export_loads_through_the_nodes_loader_with_a_model_card(toy_run: Path) -> None:
    loaded = load_model(toy_run / "export" / "default.safetensors")
    assert loaded.meta.depth_type == "metric" and loaded.meta.encoder == "vitt6"
    assert loaded.meta.input_size == 56 and loaded.meta.max_depth == 20.0
    assert loaded.meta.provenance["git_revision"] and loaded.meta.provenance["steps"]
    assert "b_test" in loaded.meta.metrics["held_out"]
    config = load_config(TOY, [f"run_dir={toy_run}"])
    trained, _ = load_trained(config, "finetune_metric")
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    card = (toy_run / "export" / "MODEL_CARD.md").read_text()
    assert "git revision" in card and "AbsRel" in card


def test_torchrun_two_processes_train_one_section(toy_run: Path) -> None:
    section = (
        "{command: teacher, encoder: vitt6, input_size: 56, data: a_train, steps: 3, "
        "batch_size: 2, warmup_steps: 1}"
    )
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "dav2_train.cli", "teacher", "--config", str(TOY), "--section", "teacher_ddp",
          f"--set=run_dir={toy_run}", f"--set=teacher_ddp={section}"])  # fmt: skip
    meta = json.loads((toy_run / "teacher_ddp" / "final.json").read_text())
    assert meta["world_size"] == 2
    state = torch.load(toy_run / "teacher_ddp" / "last.pt", weights_only=True)
    assert state["step"] == 3 and len(state["history"]) == 3


def test_training_resumes_from_the_last_checkpoint_after_a_kill(toy_run: Path) -> None:
    section = (
        "{command: student, encoder: vitt6, input_size: 56, data: a_train, steps: 40, "
        "batch_size: 2, checkpoint_every: 2}"
    )
    args = [*CLI, "student", "--config", str(TOY), "--section", "resume",
            f"--set=run_dir={toy_run}", f"--set=resume={section}"]  # fmt: skip
    last = toy_run / "resume" / "last.pt"
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    saved = torch.load(last, weights_only=True)
    assert 0 < saved["step"] < 40, "the run finished before it could be killed; raise steps"
    assert not (toy_run / "resume" / "final.pt").exists()
    result = _run(args)
    assert f"resuming from {last} at step {saved['step']}/40" in result.stdout
    history = json.loads((toy_run / "resume" / "history.json").read_text())
    assert [s for s, _ in history] == list(range(1, 41))
    assert history[: saved["step"]] == saved["history"]
