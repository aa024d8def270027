"""Registry of encoder sizes: the official ViT-S/B/L/G and small custom students.

Configuration as data (as in the official ``model_configs`` and timm's registry):
one ``EncoderSpec`` per name, looked up by ``get_encoder_spec``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that fixes the shapes of a DINOv2 encoder + DPT head pair."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    features: int
    out_channels: tuple[int, int, int, int]
    tapped_blocks: tuple[int, int, int, int]
    ffn: str = "mlp"  # "mlp" (GELU) or "swiglu" (ViT-G)
    mlp_ratio: float = 4.0
    patch_size: int = 14
    pos_grid: int = 37  # position embeddings are trained at 518 / 14 = 37 patches

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"encoder {self.name!r}: embed_dim {self.embed_dim} is not divisible "
                f"by num_heads {self.num_heads}"
            )
        if max(self.tapped_blocks) >= self.depth or min(self.tapped_blocks) < 0:
            raise ValueError(
                f"encoder {self.name!r}: tapped blocks {self.tapped_blocks} must lie "
                f"in [0, {self.depth - 1}]"
            )
        if self.ffn not in ("mlp", "swiglu"):
            raise ValueError(f"encoder {self.name!r}: ffn must be 'mlp' or 'swiglu'")


_REGISTRY: dict[str, EncoderSpec] = {}


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    """Add a size to the registry (idempotent for an identical spec)."""
    known = _REGISTRY.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"encoder {spec.name!r} is already registered with another shape")
    _REGISTRY[spec.name] = spec
    return spec


def get_encoder_spec(name: str) -> EncoderSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown encoder {name!r}; known encoders: {', '.join(sorted(_REGISTRY))}"
        ) from None


def encoder_names() -> list[str]:
    return sorted(_REGISTRY)


# The official sizes (dav2-reference.md, "Architecture").
register_encoder(EncoderSpec("vits", 384, 12, 6, 64, (48, 96, 192, 384), (2, 5, 8, 11)))
register_encoder(EncoderSpec("vitb", 768, 12, 12, 128, (96, 192, 384, 768), (2, 5, 8, 11)))
register_encoder(EncoderSpec("vitl", 1024, 24, 16, 256, (256, 512, 1024, 1024), (4, 11, 17, 23)))
register_encoder(EncoderSpec("vitg", 1536, 40, 24, 384, (1536,) * 4, (9, 19, 29, 39), ffn="swiglu"))

# Students for 2-core CPUs and Jetsons: ViT-Tiny-like encoders with a slim head.
register_encoder(EncoderSpec("vitt", 192, 12, 3, 32, (24, 48, 96, 192), (2, 5, 8, 11)))
register_encoder(EncoderSpec("vitt6", 192, 6, 3, 32, (24, 48, 96, 192), (1, 2, 4, 5)))
register_encoder(EncoderSpec("vitt8", 192, 8, 3, 32, (24, 48, 96, 192), (1, 3, 5, 7)))
# A CPU-trainable teacher clearly larger than those students: 1.5x vitt's width, 12 blocks,
# 14.1 M parameters (3.8x vitt6), about 3x vitt6's training step time (docs/training.md).
register_encoder(EncoderSpec("vitm", 288, 12, 6, 48, (36, 72, 144, 288), (2, 5, 8, 11)))
