"""Checkpoints going in: teachers and inits from files a user brings, not only sections."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from bag_tools import frames
from dav2_train.cli import main
from dav2_train.config import train_section
from dav2_train.dist import DistContext
from dav2_train.pseudo_label import predict_batch
from dav2_train.shards import (
    Sample,
    ShardWriter,
    iter_split,
    read_split,
    sample_key,
    shard_name,
    write_manifest,
)
from dav2_train.train import build

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import CheckpointError
from dav2_ros.model.random_weights import randomize_weights_

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("teachers")
    images = root / "images"
    images.mkdir()
    for i, frame in enumerate(frames(3, 42, 56, seed=2) + frames(2, 56, 42, seed=3)):
        cv2.imwrite(str(images / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    # Official-layout files: a plain state dict with the release's key names. The name
    # says "metric_hypersim", which is how load_model knows: metric, 20 m.
    metric = randomize_weights_(DepthAnythingV2("vitt6", "metric", 20.0), seed=5)
    torch.save(metric.state_dict(), root / "depth_anything_v2_metric_hypersim_vitt6.pth")
    relative = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=6)
    torch.save(relative.state_dict(), root / "depth_anything_v2_vitt6.pth")
    return root


def _config(work: Path, **pseudo: object) -> Path:
    import yaml

    config = {"run_dir": str(work / "run"), "max_depth_m": 20.0, "device": "cpu", "threads": 1,
              "pseudo_label": {"images": str(work / "images"), "input_size": 28,
                               "shard_size": 3, "batch_size": 2, **pseudo}}  # fmt: skip
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_metric_teacher_file_gives_labels_that_grow_with_nearness(
    work: Path, capsys: pytest.CaptureFixture
) -> None:
    teacher_file = work / "depth_anything_v2_metric_hypersim_vitt6.pth"
    config = _config(work, teacher=str(teacher_file), out="metric_labels")
    assert main(["pseudo-label", "--config", str(config)]) == 0
    assert "stored as the relative label 1/d" in capsys.readouterr().out
    split = read_split(work / "run" / "data" / "metric_labels")
    assert split.kind == "disparity" and split.samples == 5
    assert split.provenance["teacher"]["depth_type"] == "metric"
    teacher = DepthAnythingV2("vitt6", "metric", 20.0).eval()
    teacher.load_state_dict(torch.load(teacher_file, weights_only=True))
    for _, sample in iter_split(split):
        (depth_m,) = predict_batch(teacher, [sample.rgb], 28, torch.device("cpu"))
        assert depth_m.min() > 0 and depth_m.max() < 20.0  # metres from the Sigmoid head
        label = sample.label  # stored in fp16
        np.testing.assert_allclose(label, 1.0 / depth_m, rtol=2e-3)
        nearer = depth_m.ravel()[:, None] < depth_m.ravel()[None, :] * 0.99
        larger = label.ravel()[:, None] > label.ravel()[None, :]
        assert np.all(larger[nearer])  # every clearly nearer pixel has the larger label


def test_a_relative_teacher_files_labels_are_its_output_scaled_to_a_maximum_of_one(
    work: Path, capsys: pytest.CaptureFixture
) -> None:
    teacher_file = work / "depth_anything_v2_vitt6.pth"
    config = _config(work, teacher=str(teacher_file), out="relative_labels")
    assert main(["pseudo-label", "--config", str(config)]) == 0
    assert "1/d" not in capsys.readouterr().out
    teacher = DepthAnythingV2("vitt6", "relative").eval()
    teacher.load_state_dict(torch.load(teacher_file, weights_only=True))
    split = read_split(work / "run" / "data" / "relative_labels")
    rgbs = [sample.rgb for _, sample in iter_split(split)]
    batched = predict_batch(teacher, rgbs[:3], 28, torch.device("cpu"))  # one shape: a batch
    for rgb, label, (_, sample) in zip(rgbs, batched, iter_split(split), strict=False):
        (alone,) = predict_batch(teacher, [rgb], 28, torch.device("cpu"))
        np.testing.assert_allclose(label, alone, rtol=1e-4, atol=1e-5)  # batching changes nothing
        # The loss is scale-invariant; scaled, labels cannot overflow float16 storage.
        np.testing.assert_allclose(sample.label, alone / alone.max(), rtol=2e-3, atol=1e-3)
        assert sample.label.max() == pytest.approx(1.0, rel=1e-3)


def test_a_label_that_would_overflow_float16_storage_is_refused(tmp_path: Path) -> None:
    # A relative teacher's raw output can exceed 65504: stored as inf it would poison
    # the student's loss, so the writer refuses it with what to do.
    (rgb,) = frames(1, 28, 28)
    label = np.full((28, 28), 1.0, np.float32)
    label[0, 0] = 1e5
    with (
        ShardWriter(tmp_path / shard_name(0), "disparity") as writer,
        pytest.raises(ValueError, match="overflow float16.*as_relative_label"),
    ):
        writer.write(Sample(sample_key(0, 0), rgb, label))


def _gt_split(root: Path) -> None:
    directory = root / "data" / "gt"
    directory.mkdir(parents=True, exist_ok=True)
    with ShardWriter(directory / shard_name(0), "depth_m") as writer:
        for i, frame in enumerate(frames(2, 28, 28)):
            writer.write(Sample(sample_key(0, i), frame, np.full((28, 28), 2.0, np.float32)))
    write_manifest(directory, "depth_m")


def _build_with_init(root: Path, init: object):
    config = {"run_dir": str(root), "max_depth_m": 20.0, "seed": 0,
              "s": {"command": "student", "encoder": "vitt6", "input_size": 28, "data": "gt",
                    "init": init, "workers": 0}}  # fmt: skip
    return build(config, "s", train_section(config, "s"), CPU)


def test_a_dinov2_encoder_file_initialises_the_encoder_and_reports_what_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _gt_split(tmp_path)
    source = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=9)
    encoder = {k[len("pretrained.") :]: v for k, v in source.state_dict().items()
               if k.startswith("pretrained.")}  # fmt: skip
    del encoder["mask_token"]  # as in some exports: reported, not fatal
    torch.save(encoder, tmp_path / "dinov2_vitt6_pretrain.pth")
    trainer = _build_with_init(tmp_path, str(tmp_path / "dinov2_vitt6_pretrain.pth"))
    log = capsys.readouterr().out
    record = trainer.record["init"]
    assert record["kind"] == "dinov2-encoder" and record["loaded"] == "encoder only"
    assert record["tensors_loaded"] == len(encoder) == record["tensors_expected"] - 1
    assert record["missing"] == ["pretrained.mask_token"]
    assert f"loaded {len(encoder)}/{len(encoder) + 1} encoder tensors" in log
    assert "not in the file: pretrained.mask_token" in log and "head starts fresh" in log
    state = trainer.model.state_dict()
    for name, value in encoder.items():
        torch.testing.assert_close(state[f"pretrained.{name}"], value)
    head = "depth_head.scratch.output_conv1.weight"
    assert not torch.equal(state[head], source.state_dict()[head])  # the head stays fresh


def test_an_init_of_another_size_is_refused_with_the_shapes(tmp_path: Path) -> None:
    _gt_split(tmp_path)
    vitt = DepthAnythingV2("vitt", "relative").state_dict()
    encoder = {k[len("pretrained.") :]: v for k, v in vitt.items() if k.startswith("pretrained.")}
    encoder = {k: v for k, v in encoder.items() if not k.startswith("blocks.")}
    encoder["pos_embed"] = torch.zeros(1, 1370, 384)  # a ViT-S grid in a vitt6 run
    torch.save(encoder, tmp_path / "dinov2_vits14_pretrain.pth")
    with pytest.raises(CheckpointError, match="another size.*pos_embed"):
        _build_with_init(tmp_path, str(tmp_path / "dinov2_vits14_pretrain.pth"))
    torch.save(vitt, tmp_path / "depth_anything_v2_vitt.pth")
    with pytest.raises(CheckpointError, match="is a vitt model, this section trains a vitt6"):
        _build_with_init(tmp_path, str(tmp_path / "depth_anything_v2_vitt.pth"))


def test_a_full_checkpoint_file_initialises_encoder_and_head(tmp_path: Path) -> None:
    _gt_split(tmp_path)
    source = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=4)
    torch.save(source.state_dict(), tmp_path / "student_start.pth")
    trainer = _build_with_init(tmp_path, {"path": str(tmp_path / "student_start.pth")})
    assert trainer.record["init"]["kind"] == "file"
    for key, value in source.state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[key], value)
