"""Position-embedding interpolation pinned to the official DINOv2 formula at every size.

The official code interpolates with ``scale_factor=((H/14+0.1)/37, (W/14+0.1)/37)``;
transformers 5.x uses ``size=``, which gives other numbers off 518×518. The formula
below is an independent transcription of the official method, not a call into ours.
"""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)
from transformers import DepthAnythingForDepthEstimation

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import save_hf_model
from dav2_ros.model.random_weights import randomize_weights_

PARITY_TOLERANCE = 1e-4  # relative L2, as in test_model_parity
SIZES = [(266, 266), (392, 518), (518, 686), (518, 924), (532, 532), (126, 168)]


def official_interpolate_pos_encoding(pos_embed: torch.Tensor, x_shape, patch_size=14):
    """dinov2/models/vision_transformer.py as vendored by Depth-Anything-V2."""
    interpolate_offset = 0.1
    _, _, w, h = x_shape  # the official code names the height "w"
    npatch = (w // patch_size) * (h // patch_size)
    N = pos_embed.shape[1] - 1
    if npatch == N and w == h:
        return pos_embed
    previous_dtype = pos_embed.dtype
    pos_embed = pos_embed.float()
    class_pos_embed = pos_embed[:, 0]
    patch_pos_embed = pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    w0 = w // patch_size
    h0 = h // patch_size
    w0, h0 = w0 + interpolate_offset, h0 + interpolate_offset
    sqrt_N = math.sqrt(N)
    sx, sy = float(w0) / sqrt_N, float(h0) / sqrt_N
    patch_pos_embed = F.interpolate(
        patch_pos_embed.reshape(1, int(sqrt_N), int(sqrt_N), dim).permute(0, 3, 1, 2),
        scale_factor=(sx, sy),
        mode="bicubic",
        antialias=False,
    )
    assert int(w0) == patch_pos_embed.shape[-2]
    assert int(h0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)


def size_variant(pos_embed: torch.Tensor, height: int, width: int, patch_size=14):
    """transformers' call: the same bicubic resampling, but with ``size=``."""
    grid = int(math.sqrt(pos_embed.shape[1] - 1))
    patch = pos_embed[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(
        patch, size=(height // patch_size, width // patch_size), mode="bicubic", align_corners=False
    )
    return torch.cat((pos_embed[:, :1], patch.permute(0, 2, 3, 1).flatten(1, 2)), dim=1)


@pytest.fixture(scope="module")
def encoder():
    return randomize_weights_(DepthAnythingV2("vitt", "relative"), seed=11).pretrained


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_pos_embed_equals_official_formula(encoder, height, width):
    with torch.no_grad():
        ours = encoder.interpolate_pos_encoding(height, width)
        official = official_interpolate_pos_encoding(encoder.pos_embed, (1, 3, height, width))
    assert ours.shape == (1, (height // 14) * (width // 14) + 1, encoder.embed_dim)
    torch.testing.assert_close(ours, official, rtol=0, atol=0)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_size_variant_gives_other_numbers(encoder, height, width):
    with torch.no_grad():
        ours = encoder.interpolate_pos_encoding(height, width)
        by_size = size_variant(encoder.pos_embed, height, width)
    assert by_size.shape == ours.shape
    relative_difference = float((by_size - ours).norm() / ours.norm())
    assert relative_difference > 1e-3, relative_difference


def test_pos_embed_is_untouched_at_the_training_grid(encoder):
    assert encoder.interpolate_pos_encoding(518, 518) is encoder.pos_embed


def test_whole_model_matches_transformers_with_the_official_interpolation(tmp_path):
    """Off 518², transformers differs from us; given the official formula, it agrees.

    This pins that the only difference between the two models at other sizes is the
    interpolation call, and that ours is the official one.
    """
    height, width = 266, 392
    source = randomize_weights_(DepthAnythingV2("vitt", "relative"), seed=5).eval()
    save_hf_model(source, tmp_path / "hf")
    reference = DepthAnythingForDepthEstimation.from_pretrained(tmp_path / "hf").eval()
    batch = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = source(batch)
        as_released = reference(pixel_values=batch).predicted_depth
        embeddings = reference.backbone.embeddings

        def official(self, tokens, h, w):
            return official_interpolate_pos_encoding(self.position_embeddings, (1, 3, h, w))

        embeddings.interpolate_pos_encoding = types.MethodType(official, embeddings)
        with_official = reference(pixel_values=batch).predicted_depth

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    agreement, disagreement = rel(ours, with_official), rel(ours, as_released)
    print(
        f"relative L2 vs transformers: official formula {agreement:.2e}, size= {disagreement:.2e}"
    )
    assert agreement < PARITY_TOLERANCE
    assert disagreement > 3 * PARITY_TOLERANCE  # size= would fail the parity test
