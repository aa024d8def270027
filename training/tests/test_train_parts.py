"""The training loop's parts: loss targets, trimming, accumulation, checkpointing, precision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from dav2_train.config import train_section
from dav2_train.dist import DistContext
from dav2_train.shards import Sample, ShardWriter, sample_key, shard_name, write_manifest
from dav2_train.train import (
    build,
    enable_activation_checkpointing,
    loop,
    loss_targets,
    select_autocast,
)

from dav2_ros.model import DepthAnythingV2

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _write(directory: Path, kind: str, count: int = 8) -> None:
    directory.mkdir(parents=True)
    rng = np.random.default_rng(1)
    with ShardWriter(directory / shard_name(0), kind) as writer:
        for i in range(count):
            rgb = rng.integers(0, 256, (28, 42, 3), dtype=np.uint8)
            label = (rng.random((28, 42)) * 5 + 0.5).astype(np.float32)
            if kind == "depth_m":
                label[:4] = np.nan  # "sky"
            writer.write(Sample(sample_key(0, i), rgb, label))
    write_manifest(directory, kind)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parts")
    _write(root / "data" / "gt", "depth_m")
    _write(root / "data" / "pseudo", "disparity")
    return root


def _config(run_dir: Path, **section: object) -> dict:
    values = {
        "command": "student",
        "encoder": "vitt6",
        "input_size": 28,
        "data": "gt",
        "steps": 1,
        "batch_size": 4,
        "workers": 0,
        "warmup_steps": 1,
        "checkpoint_every": 99,
        **section,
    }
    return {"run_dir": str(run_dir), "max_depth_m": 20.0, "seed": 0, "s": values}


def _trainer(run_dir: Path, name: str, **section: object):
    config = _config(run_dir, **section)
    config[name] = config.pop("s")
    return build(config, name, train_section(config, name), CPU)


def test_trim_fraction_zero_is_honoured(run_dir: Path) -> None:
    assert _trainer(run_dir, "trim_default", data="pseudo").trim == 0.1  # pseudo labels
    assert _trainer(run_dir, "trim_zero", data="pseudo", trim_fraction=0).trim == 0.0
    assert _trainer(run_dir, "trim_gt", data="gt").trim == 0.0


def test_strong_augmentation_is_on_for_pseudo_labels_only(run_dir: Path) -> None:
    assert _trainer(run_dir, "aug_pseudo", data="pseudo").cutmix_p == 0.5
    assert _trainer(run_dir, "aug_gt", data="gt").cutmix_p == 0.0
    forced = _trainer(run_dir, "aug_off", data="pseudo", augment={"cutmix_p": 0.25})
    assert forced.cutmix_p == 0.25


def test_metric_targets_keep_valid_pixels_and_sky_is_an_explicit_choice() -> None:
    depth_m = torch.tensor([[2.0, float("nan"), 30.0, 4.0]])  # valid, sky, beyond 20 m, valid
    finite = torch.isfinite(depth_m)
    target, mask = loss_targets("depth_m", "finetune-metric", depth_m, finite, "ignore", 20.0)
    assert mask.tolist() == [[True, False, False, True]]  # SiLog on valid pixels only
    assert target[mask].tolist() == [2.0, 4.0]
    target, mask = loss_targets("depth_m", "finetune-metric", depth_m, finite, "far", 20.0)
    assert mask.all() and target[0].tolist() == pytest.approx([2.0, 19.6, 19.6, 4.0])  # 0.98 max
    target, mask = loss_targets("depth_m", "teacher", depth_m, finite, "far", 20.0)
    assert target.tolist() == [[0.5, 0.0, 0.0, 0.25]] and mask.all()  # disparity, sky 0
    target, mask = loss_targets("depth_m", "teacher", depth_m, finite, "ignore", 20.0)
    assert mask.tolist() == [[True, False, False, True]]


def test_metric_fine_tune_defaults_to_valid_pixels_only(run_dir: Path) -> None:
    assert _trainer(run_dir, "sky_metric", command="finetune-metric").sky == "ignore"
    assert _trainer(run_dir, "sky_relative").sky == "far"


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = DepthAnythingV2("vitt6", "relative")
    recomputed = DepthAnythingV2("vitt6", "relative")
    recomputed.load_state_dict(plain.state_dict())
    enable_activation_checkpointing(recomputed)
    assert list(recomputed.state_dict()) == list(plain.state_dict())  # names unchanged
    x = torch.randn(2, 3, 28, 42)
    for model in (plain, recomputed):
        model(x).square().mean().backward()
    for (name, a), (_, b) in zip(
        plain.named_parameters(), recomputed.named_parameters(), strict=True
    ):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=name)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Intra-op threads change the summation order; a gradient that shift invariance makes
    nearly 0 then differs beyond the tolerance. The node's torch engine sets its own count
    process-wide (an earlier test may have left 2), so pin 1 here and put it back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_torch_thread")
def test_accumulating_two_micro_batches_equals_one_batch_of_twice_the_size(run_dir: Path) -> None:
    # Ground-truth data (no CutMix), one worker-free stream: both read samples 0-3 in order.
    whole = _trainer(run_dir, "acc_whole", batch_size=4, accumulate=1)
    halves = _trainer(run_dir, "acc_halves", batch_size=2, accumulate=2)
    for trainer in (whole, halves):
        loop(trainer, CPU)
    assert whole.history[0][1] == pytest.approx(halves.history[0][1], rel=1e-5)
    # The gradients the optimizer stepped with (kept after the step) are the same.
    pairs = zip(whole.model.named_parameters(), halves.model.named_parameters(), strict=True)
    for (name, a), (_, b) in pairs:
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-7, msg=name)


def _dead_share(trainer, image: torch.Tensor) -> float:
    with torch.no_grad():
        return float((trainer.model.eval()(image) <= 0).float().mean())


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_a_relative_head_clamped_to_zero_comes_back_to_life(run_dir: Path, weight: float) -> None:
    """Relative models trained with the paper's loss alone can output exactly 0 (the head's
    ReLU) on a third of every frame, where SSI + gradient matching give no gradient. With
    that loss alone (weight 0) a fully clamped head never moves; the live-range penalty
    lifts it."""
    trainer = _trainer(
        run_dir, f"dead_{weight}", command="teacher", steps=10, live_range_weight=weight
    )
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 28, 42)))
    image = image.float()
    last_conv = trainer.model.depth_head.scratch.output_conv2[2]
    with torch.no_grad():
        last_conv.bias.zero_()
        trainer.model.eval()(image)
        last_conv.bias.fill_(-float(trainer.pre_activation.value.max()) - 0.003)
    assert _dead_share(trainer, image) == 1.0
    loop(trainer, CPU)
    if weight == 0:
        assert _dead_share(trainer, image) == 1.0
        assert not last_conv.bias.grad.any()  # no gradient at all: stuck for good
    else:
        assert _dead_share(trainer, image) < 0.5


def test_precision_auto_is_fp32_on_cpu_and_fp16_needs_cuda() -> None:
    cpu = torch.device("cpu")
    assert select_autocast("auto", cpu) is None
    assert select_autocast("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="needs CUDA"):
        select_autocast("fp16", cpu)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_autocast_on_cuda_trains_a_step(run_dir: Path) -> None:
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cuda"))
    config = _config(run_dir, steps=2)
    config["gpu"] = config.pop("s")
    trainer = build(config, "gpu", train_section(config, "gpu"), ctx)
    assert trainer.autocast_dtype == torch.bfloat16
    loop(trainer, ctx)
    assert len(trainer.history) == 2 and np.isfinite(trainer.history[-1][1])


def test_the_robot_example_config_is_a_valid_run() -> None:
    from dav2_train.cli import pipeline_steps
    from dav2_train.config import is_train_section, load_config

    config = load_config(Path(__file__).parents[1] / "configs" / "robot.yaml")
    steps = pipeline_steps(config)
    assert ("rgbd", "rgbd_test") in steps and steps[-1] == ("export", "export")
    for name in [n for n in config if is_train_section(config, n)]:
        cfg = train_section(config, name)  # refuses unknown keys
        assert cfg["encoder"] == "vits" and cfg["input_size"] % 14 == 0
