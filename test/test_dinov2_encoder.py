"""DINOv2 encoder checkpoints (``dinov2_vit*14_pretrain.pth`` layout): adapter and reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoint_readers import read_encoder_checkpoint
from dav2_ros.model.checkpoints import CheckpointError, load_model
from dav2_ros.model.formats import FormatError, detect_layout, dinov2_to_official


def _dinov2_state(encoder: str = "vitt6") -> dict[str, torch.Tensor]:
    """The encoder of a model under DINOv2's own names (no ``pretrained.`` prefix)."""
    model = DepthAnythingV2(encoder, "relative")
    return {
        k[len("pretrained.") :]: v.clone()
        for k, v in model.state_dict().items()
        if k.startswith("pretrained.")
    }


def test_dinov2_keys_are_detected_and_prefixed() -> None:
    state = _dinov2_state()
    assert {"cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "norm.bias"} <= set(
        state
    )
    assert detect_layout(state) == "dinov2"
    official = dinov2_to_official(state)
    assert set(official) == {f"pretrained.{k}" for k in state}
    assert official["pretrained.blocks.3.attn.qkv.weight"] is state["blocks.3.attn.qkv.weight"]


def test_chunked_blocks_are_flattened_and_registers_refused() -> None:
    chunked = {"cls_token": torch.zeros(1, 1, 4), "blocks.1.5.norm1.weight": torch.ones(4)}
    assert set(dinov2_to_official(chunked)) == {
        "pretrained.cls_token",
        "pretrained.blocks.5.norm1.weight",
    }
    with pytest.raises(FormatError, match="register tokens"):
        dinov2_to_official({"cls_token": torch.zeros(1), "register_tokens": torch.zeros(1)})


def test_reader_returns_encoder_tensors_and_none_for_full_models(tmp_path: Path) -> None:
    torch.save(_dinov2_state(), tmp_path / "dinov2_vitt6_pretrain.pth")
    encoder = read_encoder_checkpoint(tmp_path / "dinov2_vitt6_pretrain.pth")
    assert encoder is not None and all(k.startswith("pretrained.") for k in encoder)
    full = DepthAnythingV2("vitt6", "relative").state_dict()
    torch.save(full, tmp_path / "depth_anything_v2_vitt6.pth")
    assert read_encoder_checkpoint(tmp_path / "depth_anything_v2_vitt6.pth") is None


def test_load_model_explains_that_an_encoder_file_cannot_predict(tmp_path: Path) -> None:
    torch.save(_dinov2_state(), tmp_path / "dinov2.pth")
    with pytest.raises(CheckpointError, match="DINOv2 encoder checkpoint.*initialise"):
        load_model(tmp_path / "dinov2.pth")
