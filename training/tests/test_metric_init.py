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
