"""The format adapters (pure state_dict -> state_dict) against transformers' own names.

Built on the meta device: names and shapes of even ViT-G cost no memory.
"""

from __future__ import annotations

import pytest
import torch
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

from dav2_ros.model import DepthAnythingV2, get_encoder_spec
from dav2_ros.model.formats import (
    FormatError,
    detect_layout,
    hf_config,
    hf_to_official,
    official_to_hf,
    spec_from_hf_config,
)


def shapes(state):
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("encoder", ["vitt", "vits", "vitg"])
def test_official_names_map_onto_transformers_5x_model(encoder):
    spec = get_encoder_spec(encoder)
    with torch.device("meta"):
        ours = DepthAnythingV2(encoder, "metric", 20.0).state_dict()
        reference = DepthAnythingForDepthEstimation(
            DepthAnythingConfig(**hf_config(spec, "metric", 20.0))
        ).state_dict()
    assert shapes(official_to_hf(ours, "5.x")) == shapes(reference)
    assert spec_from_hf_config(hf_config(spec, "metric", 20.0), name=encoder) == spec


@pytest.mark.parametrize("spelling", ["4.x", "5.x"])
@pytest.mark.parametrize("encoder", ["vitt6", "vitg"])
def test_hf_round_trip_is_exact(encoder, spelling):
    model = DepthAnythingV2(encoder) if encoder == "vitt6" else None
    if model is None:  # ViT-G: names and shapes only
        with torch.device("meta"):
            state = DepthAnythingV2(encoder).state_dict()
    else:
        state = model.state_dict()
    hf = official_to_hf(state, spelling)
    assert detect_layout(hf) == "hf" and detect_layout(state) == "official"
    back = hf_to_official(hf)
    assert shapes(back) == shapes(state)
    if model is not None:
        assert all(torch.equal(back[k], v) for k, v in state.items())


def test_hub_4x_names_are_what_the_reference_doc_lists():
    with torch.device("meta"):
        hf = official_to_hf(DepthAnythingV2("vitt").state_dict(), "4.x")
    for name in (
        "backbone.encoder.layer.3.attention.attention.query.weight",
        "backbone.encoder.layer.3.attention.output.dense.bias",
        "backbone.encoder.layer.3.layer_scale1.lambda1",
        "neck.reassemble_stage.layers.0.projection.weight",
        "neck.reassemble_stage.layers.3.resize.weight",
        "neck.convs.2.weight",
        "neck.fusion_stage.layers.0.residual_layer1.convolution1.weight",
        "head.conv3.bias",
    ):
        assert name in hf, name


def test_refinenet_order_is_reversed_in_the_fusion_stage():
    state = {"depth_head.scratch.refinenet1.out_conv.weight": torch.zeros(1)}
    assert list(official_to_hf(state)) == ["neck.fusion_stage.layers.3.projection.weight"]


def test_incomplete_qkv_is_refused():
    with torch.device("meta"):
        hf = official_to_hf(DepthAnythingV2("vitt6").state_dict(), "5.x")
    del hf["backbone.encoder.layer.2.attention.k_proj.weight"]
    with pytest.raises(FormatError, match=r"block 2.*lacks \['k'\]"):
        hf_to_official(hf)
