"""DPT head and the full Depth Anything V2 network (tensor in, tensor out).

Module and parameter names follow the official ``dpt.py`` so that official state
dicts load without renaming. A model may carry a confidence head
(``depth_head.uncertainty``, not in the official release): the expected error of each
pixel's depth, read from the DPT head's finest fused features behind a stop-gradient, so
training it never moves the depth.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from dav2_ros.model.dinov2 import DinoVisionTransformer, check_input_size
from dav2_ros.model.sizes import EncoderSpec, get_encoder_spec

DepthType = Literal["relative", "metric"]
DEPTH_TYPES: tuple[str, ...] = ("relative", "metric")


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(x))
        return self.conv2(F.relu(out)) + x


class FeatureFusionBlock(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size=None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """Holds the official ``scratch.*`` submodules (names are part of the checkpoint)."""

    def __init__(self, out_channels: tuple[int, ...], features: int, metric: bool) -> None:
        super().__init__()
        self.layer1_rn = nn.Conv2d(out_channels[0], features, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(out_channels[1], features, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(out_channels[2], features, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(out_channels[3], features, 3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features)
        self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, 1),
            nn.Sigmoid() if metric else nn.ReLU(),
            nn.Identity(),
        )


class UncertaintyHead(nn.Module):
    """Expected error of each pixel: two 3x3 convs and a 1x1 to the log of the error, on the
    finest fused features (``refinenet1``'s output, at 8/14 of the network resolution),
    upsampled like the depth.

    The first conv's output is shifted per image by a projection of the encoder's last
    tapped tokens, averaged over the image: most of a metric model's error is one scale
    error for the whole frame, which only a view of the whole frame can estimate.

    What the error measures is fixed by the loss it was trained with
    (``dav2_train.losses.laplace_nll``): metric models, |ln d - ln d*|; relative models,
    the absolute residual of median/MAD-normalised disparity.
    """

    HIDDEN = 32

    def __init__(self, features: int, embed_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, self.HIDDEN, 3, padding=1)
        self.image_context = nn.Linear(embed_dim, self.HIDDEN)
        self.conv2 = nn.Conv2d(self.HIDDEN, self.HIDDEN, 3, padding=1)
        self.out_conv = nn.Conv2d(self.HIDDEN, 1, 1)

    def forward(self, fused: Tensor, tokens: Tensor, out_hw: tuple[int, int]) -> Tensor:
        """``B×F×h×w`` fused features and ``B×N×D`` last tapped tokens → ``B×1×H×W`` log
        expected error. No gradient flows back into either: the depth path is never
        trained by this head's loss."""
        context = self.image_context(tokens.detach().mean(dim=1))[:, :, None, None]
        x = F.relu(self.conv1(fused.detach()) + context)
        x = F.relu(self.conv2(x))
        return F.interpolate(self.out_conv(x), out_hw, mode="bilinear", align_corners=True)


class DPTHead(nn.Module):
    def __init__(self, spec: EncoderSpec, metric: bool, confidence: bool = False) -> None:
        super().__init__()
        oc = spec.out_channels
        self.projects = nn.ModuleList(nn.Conv2d(spec.embed_dim, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.scratch = Scratch(oc, spec.features, metric)
        # Created last: a model with the head draws the same initial depth weights from
        # the same seed as one without it.
        self.uncertainty = UncertaintyHead(spec.features, spec.embed_dim) if confidence else None

    def forward(self, tapped: list[Tensor], grid_h: int, grid_w: int) -> Tensor:
        """The depth logits (before ``max_depth`` scaling or the final ReLU)."""
        return self.depth(self.fuse(tapped, grid_h, grid_w), grid_h, grid_w)

    def fuse(self, tapped: list[Tensor], grid_h: int, grid_w: int) -> Tensor:
        """The four tapped token maps → the finest fused features (``refinenet1``)."""
        layers = []
        for tokens, project, resize in zip(tapped, self.projects, self.resize_layers, strict=True):
            x = tokens.permute(0, 2, 1).reshape(tokens.shape[0], -1, grid_h, grid_w)
            layers.append(resize(project(x)))
        s = self.scratch
        l1, l2, l3, l4 = (
            s.layer1_rn(layers[0]),
            s.layer2_rn(layers[1]),
            s.layer3_rn(layers[2]),
            s.layer4_rn(layers[3]),
        )
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        return s.refinenet1(path, l1)

    def depth(self, fused: Tensor, grid_h: int, grid_w: int) -> Tensor:
        s = self.scratch
        out = s.output_conv1(fused)
        out = F.interpolate(out, (grid_h * 14, grid_w * 14), mode="bilinear", align_corners=True)
        return s.output_conv2(out)


class DepthAnythingV2(nn.Module):
    """Normalised RGB batch ``B×3×H×W`` (H, W multiples of 14) → ``B×H×W``.

    Relative models return affine-invariant inverse depth (ReLU); metric models
    return metres in ``(0, max_depth)`` (Sigmoid × ``max_depth``). ``confidence_head``
    adds ``depth_head.uncertainty``; ``forward`` still returns the depth alone (as the
    official model), ``depth_and_log_error`` both.
    """

    def __init__(
        self,
        encoder: str | EncoderSpec = "vits",
        depth_type: DepthType = "relative",
        max_depth: float = 20.0,
        confidence_head: bool = False,
    ) -> None:
        super().__init__()
        spec = get_encoder_spec(encoder) if isinstance(encoder, str) else encoder
        if depth_type not in DEPTH_TYPES:
            raise ValueError(f"depth_type must be one of {DEPTH_TYPES}, got {depth_type!r}")
        if depth_type == "metric" and not max_depth > 0:
            raise ValueError(f"metric models need max_depth > 0, got {max_depth}")
        self.spec = spec
        self.depth_type = depth_type
        self.max_depth = float(max_depth)
        self.pretrained = DinoVisionTransformer(spec)
        self.depth_head = DPTHead(spec, depth_type == "metric", confidence_head)

    @property
    def encoder_name(self) -> str:
        return self.spec.name

    @property
    def has_confidence_head(self) -> bool:
        return self.depth_head.uncertainty is not None

    def add_confidence_head(self) -> None:
        """A fresh confidence head on this model (its depth is untouched)."""
        self.depth_head.uncertainty = UncertaintyHead(self.spec.features, self.spec.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self._depth_of(*self._fused(x))

    def depth_and_log_error(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``B×H×W`` depth (as ``forward``) and ``B×H×W`` log of its expected error."""
        if self.depth_head.uncertainty is None:
            raise ValueError(
                f"this {self.encoder_name} model has no confidence head; train one with "
                "`dav2-train confidence` (docs/training.md)"
            )
        tapped, grid_h, grid_w = self._tapped(x)
        fused = self.depth_head.fuse(tapped, grid_h, grid_w)
        out_hw = (grid_h * self.spec.patch_size, grid_w * self.spec.patch_size)
        log_error = self.depth_head.uncertainty(fused, tapped[-1], out_hw)
        return self._depth_of(fused, grid_h, grid_w), log_error.squeeze(1)

    def _fused(self, x: Tensor) -> tuple[Tensor, int, int]:
        tapped, grid_h, grid_w = self._tapped(x)
        return self.depth_head.fuse(tapped, grid_h, grid_w), grid_h, grid_w

    def _tapped(self, x: Tensor) -> tuple[list[Tensor], int, int]:
        height, width = x.shape[-2:]
        check_input_size(int(height), int(width), self.spec.patch_size)
        grid_h, grid_w = height // self.spec.patch_size, width // self.spec.patch_size
        return self.pretrained.tapped_features(x, self.spec.tapped_blocks), grid_h, grid_w

    def _depth_of(self, fused: Tensor, grid_h: int, grid_w: int) -> Tensor:
        out = self.depth_head.depth(fused, grid_h, grid_w)
        if self.depth_type == "metric":
            out = out * self.max_depth
        else:
            out = F.relu(out)
        return out.squeeze(1)


class DepthAndError(nn.Module):
    """What engines run for a model with a confidence head: ``2×H×W`` for a ``1×3×H×W``
    batch, the depth then its expected error (``exp`` of the head's log), stacked as
    ``Engine.infer`` returns them. Export graphs name them ``depth`` and ``expected_error``."""

    def __init__(self, model: DepthAnythingV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        depth, log_error = self.model.depth_and_log_error(x)
        return depth, log_error.exp()
