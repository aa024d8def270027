"""Training losses of Depth Anything V2 (paper §4-7; MiDaS for the relative terms).

All take ``B×H×W`` tensors plus a boolean ``mask`` of pixels that count and
return a scalar. Relative losses work on inverse depth (disparity).
"""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-6


def normalise_disparity(disparity: Tensor, mask: Tensor) -> Tensor:
    """Per sample: subtract the masked median, divide by the mean absolute deviation.

    This is the MiDaS/Depth Anything scale-and-shift normalisation: afterwards two
    disparity maps that differ only by scale and shift are identical.
    """
    out = torch.zeros_like(disparity)
    for i in range(disparity.shape[0]):
        values = disparity[i][mask[i]]
        if values.numel() == 0:
            continue
        shift = values.median()
        scale = (values - shift).abs().mean().clamp_min(_EPS)
        out[i] = (disparity[i] - shift) / scale
    return out


def ssi_loss(
    pred_disparity: Tensor,
    target_disparity: Tensor,
    mask: Tensor,
    trim_fraction: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Scale-and-shift-invariant L1 loss on normalised disparity.

    ``trim_fraction`` > 0 drops that share of each sample's largest-residual pixels
    from the loss (0.1 for pseudo labels: "ignore the top 10 % largest-loss pixels").
    Returns (loss, residual map, mask actually used) so the gradient term can use
    the same normalisation and mask.
    """
    pred_n = normalise_disparity(pred_disparity, mask)
    target_n = normalise_disparity(target_disparity, mask)
    residual = pred_n - target_n
    used = mask.clone()
    if trim_fraction > 0:
        for i in range(residual.shape[0]):
            index = mask[i].flatten().nonzero().squeeze(1)
            n_drop = int(index.numel() * trim_fraction)
            if n_drop > 0:
                errors = residual[i].detach().abs().flatten()[index]
                dropped = index[errors.topk(n_drop).indices]
                used_i = used[i].flatten().clone()
                used_i[dropped] = False
                used[i] = used_i.view_as(used[i])
    per_sample = (residual.abs() * used).flatten(1).sum(1) / used.flatten(1).sum(1).clamp_min(1)
    valid_samples = used.flatten(1).any(1)
    loss = per_sample[valid_samples].mean() if valid_samples.any() else residual.sum() * 0
    return loss, residual, used


def gradient_matching_loss(residual: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """Multi-scale gradient matching (MiDaS): L1 of the residual's x/y differences.

    At scale k the residual is subsampled by 2^k; a difference counts only where
    both of its pixels are in ``mask``. Sum over scales of (sum |grad|) / (count).
    """
    total = residual.new_zeros(())
    for k in range(scales):
        step = 2**k
        r, m = residual[:, ::step, ::step], mask[:, ::step, ::step].to(residual.dtype)
        mx = m[:, :, 1:] * m[:, :, :-1]
        my = m[:, 1:, :] * m[:, :-1, :]
        grad_x = (r[:, :, 1:] - r[:, :, :-1]).abs() * mx
        grad_y = (r[:, 1:, :] - r[:, :-1, :]).abs() * my
        count = mx.sum() + my.sum()
        if count > 0:
            total = total + (grad_x.sum() + grad_y.sum()) / count
    return total


def relative_loss(
    pred_disparity: Tensor,
    target_disparity: Tensor,
    mask: Tensor,
    gradient_weight: float = 2.0,
    trim_fraction: float = 0.0,
) -> Tensor:
    """SSI + ``gradient_weight`` × gradient matching (1:2 in the paper)."""
    loss, residual, used = ssi_loss(pred_disparity, target_disparity, mask, trim_fraction)
    if gradient_weight:
        loss = loss + gradient_weight * gradient_matching_loss(residual, used)
    return loss


def silog_loss(
    pred_depth_m: Tensor, target_depth_m: Tensor, mask: Tensor, lam: float = 0.5
) -> Tensor:
    """Scale-invariant log loss: sqrt(mean(g²) − λ·mean(g)²), g = log d − log d*.

    Over all masked pixels of the batch, as in the Depth Anything metric fine-tune.
    """
    g = torch.log(pred_depth_m[mask].clamp_min(_EPS)) - torch.log(target_depth_m[mask])
    if g.numel() == 0:
        return pred_depth_m.sum() * 0
    return torch.sqrt((g.pow(2).mean() - lam * g.mean().pow(2)).clamp_min(_EPS))
