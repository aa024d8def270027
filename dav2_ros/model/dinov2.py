"""DINOv2 ViT encoder, state-dict compatible with the official Depth Anything V2 release.

Attention uses ``scaled_dot_product_attention`` (no xformers); position embeddings
are interpolated exactly as the official code does (``scale_factor`` with a 0.1
offset, bicubic, no antialias), which is what makes outputs match at any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dav2_ros.model.sizes import EncoderSpec

# The official interpolation adds this to the patch grid before dividing, to avoid
# floating-point truncation of the output size (github.com/facebookresearch/dino/issues/8).
_INTERPOLATE_OFFSET = 0.1


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """ViT-G's feed-forward layer (official ``SwiGLUFFNFused``: keys ``w12``, ``w3``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))  # LayerScale init 1.0

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        hidden = int(dim * spec.mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, spec.num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = SwiGLUFFN(dim, hidden) if spec.ffn == "swiglu" else Mlp(dim, hidden)
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """The encoder; ``tapped_features`` returns normed patch tokens of the tapped blocks."""

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        self.patch_size = spec.patch_size
        self.pos_grid = spec.pos_grid
        self.embed_dim = dim
        self.patch_embed = PatchEmbed(spec.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.pos_grid**2 + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # unused; kept for state dicts
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def interpolate_pos_encoding(self, height: int, width: int) -> Tensor:
        """Position embeddings for an input of ``height`` × ``width`` pixels."""
        grid_h, grid_w = height // self.patch_size, width // self.patch_size
        if grid_h == grid_w == self.pos_grid:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        class_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
        patch_pos = patch_pos.reshape(1, self.pos_grid, self.pos_grid, -1).permute(0, 3, 1, 2)
        scale = (
            (grid_h + _INTERPOLATE_OFFSET) / self.pos_grid,
            (grid_w + _INTERPOLATE_OFFSET) / self.pos_grid,
        )
        patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic", antialias=False)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
        return torch.cat((class_pos, patch_pos), dim=1).to(self.pos_embed.dtype)

    def tapped_features(self, x: Tensor, tapped_blocks: tuple[int, ...]) -> list[Tensor]:
        """Run the blocks; return ``norm(tokens)[:, 1:]`` of each tapped block in order."""
        height, width = x.shape[-2:]
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolate_pos_encoding(height, width)
        wanted = set(tapped_blocks)
        outputs = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in wanted:
                outputs.append(self.norm(tokens)[:, 1:])
            if index >= max(tapped_blocks):
                break
        return outputs


def check_input_size(height: int, width: int, patch_size: int = 14) -> None:
    if height <= 0 or width <= 0 or height % patch_size or width % patch_size:
        raise ValueError(
            f"model input must be a positive multiple of {patch_size} on both sides, "
            f"got {height}x{width}; resize with dav2_ros.model.transforms first"
        )
