"""Parameter counts of the official sizes and the shape rules of the network."""

from __future__ import annotations

import pytest
import torch

from dav2_ros.model import DepthAnythingV2, EncoderSpec, get_encoder_spec, register_encoder


@pytest.mark.parametrize(("encoder", "millions"), [("vits", 24.8), ("vitb", 97.5), ("vitl", 335.3)])
def test_parameter_count_matches_the_release(encoder, millions):
    # The meta device allocates nothing, so even ViT-L costs no memory here.
    with torch.device("meta"):
        model = DepthAnythingV2(encoder)
    count = sum(p.numel() for p in model.parameters())
    assert round(count / 1e6, 1) == millions


def test_metric_and_relative_heads_share_every_tensor_name_and_shape():
    with torch.device("meta"):
        relative = DepthAnythingV2("vitb", "relative").state_dict()
        metric = DepthAnythingV2("vitb", "metric", 80.0).state_dict()
    assert {k: v.shape for k, v in relative.items()} == {k: v.shape for k, v in metric.items()}


@pytest.mark.parametrize(("height", "width"), [(126, 168), (140, 126)])
def test_output_has_the_input_resolution(height, width):
    model = DepthAnythingV2("vitt6", "metric", 10.0).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, height, width))
    assert out.shape == (2, height, width)
    assert float(out.min()) >= 0 and float(out.max()) <= 10.0


def test_input_not_multiple_of_14_is_refused_with_advice():
    model = DepthAnythingV2("vitt6")
    with pytest.raises(ValueError, match="multiple of 14.*transforms"):
        model(torch.zeros(1, 3, 130, 140))


def test_student_sizes_can_be_registered():
    spec = EncoderSpec("test-tiny4", 96, 4, 3, 16, (12, 24, 48, 96), (0, 1, 2, 3))
    assert register_encoder(spec) is spec
    assert get_encoder_spec("test-tiny4") == spec
    with pytest.raises(ValueError, match="already registered"):
        register_encoder(EncoderSpec("test-tiny4", 192, 4, 3, 16, (12, 24, 48, 96), (0, 1, 2, 3)))
