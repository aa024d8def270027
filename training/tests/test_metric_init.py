"""A metric fine-tune initialised from a relative model starts with depth ordered right."""

from __future__ import annotations

import torch
from dav2_train.models import flip_output_for_metric

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_


def test_metric_head_from_relative_model_puts_near_pixels_nearer() -> None:
    torch.manual_seed(0)
    relative = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=3).eval()
    metric = DepthAnythingV2("vitt6", "metric", max_depth=20.0)
    metric.load_state_dict(relative.state_dict())
    flip_output_for_metric(metric)
    x = torch.randn(1, 3, 84, 112)
    with torch.no_grad():
        disparity = relative(x).flatten()
        depth_m = metric.eval()(x).flatten()
    seen = disparity > 0  # where the relative ReLU passes its logit through
    assert seen.sum() > 100
    # Same logit, negated inside the Sigmoid: larger disparity must mean smaller depth.
    order = torch.argsort(disparity[seen])
    assert torch.all(torch.diff(depth_m[seen][order]) <= 1e-6)
    assert torch.corrcoef(torch.stack([disparity[seen], depth_m[seen]]))[0, 1] < -0.5


def test_a_drifted_relative_init_starts_the_metric_fine_tune_in_the_sigmoids_live_range(
    tmp_path,
) -> None:
    # Relative outputs drift to logits of hundreds or thousands in long runs; flipped as
    # they are into Sigmoid x 20 m every pixel sits at 0 or 20 m with no gradient.
    import numpy as np
    from bag_tools import frames
    from dav2_train.config import train_section
    from dav2_train.dist import DistContext
    from dav2_train.shards import Sample, ShardWriter, sample_key, shard_name, write_manifest
    from dav2_train.train import build

    relative = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=4)
    with torch.no_grad():
        relative.depth_head.scratch.output_conv2[2].weight.mul_(1000.0)
    torch.save(relative.state_dict(), tmp_path / "depth_anything_v2_vitt6.pth")
    split = tmp_path / "data" / "gt"
    split.mkdir(parents=True)
    depth = np.repeat(np.linspace(8.0, 1.0, 28, dtype=np.float32)[:, None], 28, axis=1)
    with ShardWriter(split / shard_name(0), "depth_m") as writer:
        for i, frame in enumerate(frames(4, 28, 28)):
            writer.write(Sample(sample_key(0, i), frame, depth))
    write_manifest(split, "depth_m")
    config = {"run_dir": str(tmp_path), "max_depth_m": 20.0, "seed": 0,
              "m": {"command": "finetune-metric", "encoder": "vitt6", "input_size": 28,
                    "data": "gt", "batch_size": 4, "workers": 0,
                    "init": str(tmp_path / "depth_anything_v2_vitt6.pth")}}  # fmt: skip
    cpu = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    trainer = build(config, "m", train_section(config, "m"), cpu)
    images = torch.stack([torch.from_numpy(_input(f)) for f in frames(4, 28, 28)])

    def saturated(model: DepthAnythingV2) -> float:
        with torch.no_grad():
            depth_m = model.eval()(images)
        return float(((depth_m < 0.2) | (depth_m > 19.8)).float().mean())

    uncalibrated = DepthAnythingV2("vitt6", "metric", max_depth=20.0)
    uncalibrated.load_state_dict(relative.state_dict())
    flip_output_for_metric(uncalibrated)
    assert saturated(uncalibrated) > 0.9  # what the fine-tune used to start from
    assert saturated(trainer.model) < 0.1
    calibration = trainer.record["init"]["calibration"]
    assert 0 < calibration["scale"] < 0.1 and calibration["pixels"] == 4 * 28 * 28
    with torch.no_grad():
        median_m = float(trainer.model.eval()(images).median())
    assert 2.0 < median_m < 8.0  # the targets' median is 4.5 m


def _input(rgb):
    from dav2_ros.model.transforms import prepare_input

    return prepare_input(rgb, 28)[0]
