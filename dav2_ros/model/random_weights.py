"""Random weights that give non-trivial outputs, for tests and benchmarks.

PyTorch's default init leaves a relative model's final ReLU at zero almost
everywhere and a metric model near ``max_depth / 2``: comparisons on such outputs
prove little. These weights keep activations O(1) through every block.
"""

from __future__ import annotations

import math

import torch

from dav2_ros.model.dpt import DepthAnythingV2


@torch.no_grad()
def randomize_weights_(model: DepthAnythingV2, seed: int = 0) -> DepthAnythingV2:
    """Fill every parameter in place from ``seed`` (deterministic); return the model."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        shape = param.shape
        if param.ndim >= 2:
            # ConvTranspose2d stores (in, out, k, k): its fan-in is the first dimension.
            transposed = ".resize_layers.0." in name or ".resize_layers.1." in name
            fan_in = shape[0] if transposed else param[0].numel()
            values = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
        elif name.endswith("gamma"):  # LayerScale: keep the residual branches moderate
            values = torch.rand(shape, generator=generator) * 0.5 + 0.1
        elif "norm" in name and name.endswith("weight"):
            values = 1 + 0.2 * torch.randn(shape, generator=generator)
        else:
            values = 0.1 * torch.randn(shape, generator=generator)
        param.copy_(values.to(param.dtype))
    # A positive last bias keeps the relative head's ReLU mostly active.
    model.depth_head.scratch.output_conv2[2].bias.fill_(0.5)
    return model
