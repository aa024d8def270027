"""Training losses of Depth Anything V2 (paper §4-7; MiDaS for the relative terms).

All take ``B×H×W`` tensors plus a boolean ``mask`` of pixels that count. Relative
losses work on inverse depth (disparity) and are computed per sample, then averaged
over the samples that have valid pixels.
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


def trim_largest(residual: Tensor, mask: Tensor, trim_fraction: float) -> Tensor:
    """``mask`` without each sample's ``trim_fraction`` largest-|residual| pixels."""
    used = mask.clone()
    if trim_fraction <= 0:
        return used
    for i in range(residual.shape[0]):
        index = mask[i].flatten().nonzero().squeeze(1)
        n_drop = int(index.numel() * trim_fraction)
        if n_drop > 0:
            errors = residual[i].detach().abs().flatten()[index]
            used_i = used[i].flatten().clone()
            used_i[index[errors.topk(n_drop).indices]] = False
            used[i] = used_i.view_as(used[i])
    return used


def ssi_terms(
    pred_disparity: Tensor,
    target_disparity: Tensor,
    mask: Tensor,
    trim_fraction: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample scale-and-shift-invariant L1 on normalised disparity.

    ``trim_fraction`` > 0 drops that share of each sample's largest-residual pixels
    ("ignore the top 10 % largest-loss pixels" for pseudo labels). Returns (B losses,
    residual map, mask actually used) so the gradient term shares normalisation and mask.
    """
    residual = normalise_disparity(pred_disparity, mask) - normalise_disparity(
        target_disparity, mask
    )
    used = trim_largest(residual, mask, trim_fraction)
    per_sample = (residual.abs() * used).flatten(1).sum(1) / used.flatten(1).sum(1).clamp_min(1)
    return per_sample, residual, used


def gradient_matching_terms(residual: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """Per-sample multi-scale gradient matching (MiDaS): L1 of the residual's x/y differences.

    At scale k the residual and mask are subsampled by 2^k; a difference counts where
    both of its pixels are in the mask, and the sum is divided by the number of valid
    *pixels* at that scale (MiDaS), not by the number of valid pairs. Summed over scales.
    """
    total = residual.new_zeros(residual.shape[0])
    for k in range(scales):
        step = 2**k
        r, m = residual[:, ::step, ::step], mask[:, ::step, ::step].to(residual.dtype)
        pairs_x = m[:, :, 1:] * m[:, :, :-1]
        pairs_y = m[:, 1:, :] * m[:, :-1, :]
        grad_x = ((r[:, :, 1:] - r[:, :, :-1]).abs() * pairs_x).flatten(1).sum(1)
        grad_y = ((r[:, 1:, :] - r[:, :-1, :]).abs() * pairs_y).flatten(1).sum(1)
        pixels = m.flatten(1).sum(1)
        total = total + torch.where(pixels > 0, (grad_x + grad_y) / pixels.clamp_min(1), 0.0)
    return total


def _mean_over_valid(per_sample: Tensor, valid: Tensor) -> Tensor:
    return per_sample[valid].mean() if valid.any() else per_sample.sum() * 0


def relative_loss(
    pred_disparity: Tensor,
    target_disparity: Tensor,
    mask: Tensor,
    gradient_weight: float = 2.0,
    trim_fraction: float = 0.0,
    region: Tensor | None = None,
) -> Tensor:
    """SSI + ``gradient_weight`` × gradient matching (1:2 in the paper), batch mean.

    ``region`` (CutMix): True where a pixel came from another image, whose label has
    its own scale and shift. Each region is then normalised and scored on its own,
    and a sample's loss is the two regions' losses weighted by their valid pixels.
    """
    if region is None or not region.any():
        ssi, residual, used = ssi_terms(pred_disparity, target_disparity, mask, trim_fraction)
        per_sample = ssi + gradient_weight * gradient_matching_terms(residual, used)
        return _mean_over_valid(per_sample, used.flatten(1).any(1))
    weighted = pred_disparity.new_zeros(pred_disparity.shape[0])
    pixels = pred_disparity.new_zeros(pred_disparity.shape[0])
    for part in (mask & ~region, mask & region):
        ssi, residual, used = ssi_terms(pred_disparity, target_disparity, part, trim_fraction)
        per_sample = ssi + gradient_weight * gradient_matching_terms(residual, used)
        count = part.flatten(1).sum(1).to(per_sample.dtype)
        weighted = weighted + per_sample * count
        pixels = pixels + count
    return _mean_over_valid(weighted / pixels.clamp_min(1), pixels > 0)


def live_range_penalty(pre_activation: Tensor) -> Tensor:
    """Batch mean of ReLU(−z) over every pixel of the relative head's pre-activation ``z``
    (the input of its final ReLU), per sample in units of z's own spread.

    A pixel with z < 0 leaves the ReLU as exactly 0 and gets no gradient from the SSI or
    gradient-matching terms, so a region that falls there stays there: trained without
    this penalty, a teacher and student put 25-35 % of every frame at 0 (tied in every
    ordinal pair, learning nothing there). Those terms ignore any shift of the output, so
    lifting z above 0 costs them nothing: the penalty is 0 at every one of their
    minima whose output is live. Dividing by the spread makes it as scale-free as they are.
    """
    z = pre_activation.float().flatten(1)
    spread = z.detach().std(1, keepdim=True).clamp_min(_EPS)
    return (torch.relu(-z) / spread).mean()


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


def laplace_nll(log_error: Tensor, residual: Tensor, mask: Tensor) -> Tensor:
    """Laplace negative log-likelihood of ``residual`` under a per-pixel scale
    ``b = exp(log_error)``, mean over ``mask`` (the constant ln 2 left out): ln b + |r| / b.

    For each pixel it is smallest at b = E|r|: the confidence head learns the expected
    absolute error, the quantity AbsRel averages. Laplace rather than Gaussian: a Gaussian
    head learns E[r²], which a few gross errors (edges, sky-like far regions) dominate.
    ``residual`` is a target: no gradient flows into it, so the depth is never trained to
    make its own errors easier to predict.
    """
    if not mask.any():
        return log_error.sum() * 0
    s = log_error.float()[mask].clamp(-12.0, 12.0)
    r = residual.detach().float()[mask].abs()
    return (s + r * torch.exp(-s)).mean()


def log_depth_residual(pred_depth_m: Tensor, target_depth_m: Tensor, mask: Tensor) -> Tensor:
    """ln d - ln d* where ``mask``, 0 elsewhere: a metric model's error, scale-free as
    SiLog (a 10 % error is 0.095 at 1 m and at 10 m)."""
    log_ratio = torch.log(pred_depth_m.clamp_min(_EPS)) - torch.log(target_depth_m.clamp_min(_EPS))
    return torch.where(mask, log_ratio, torch.zeros_like(log_ratio))


def ssi_residual(
    pred_disparity: Tensor, target_disparity: Tensor, mask: Tensor, region: Tensor | None = None
) -> Tensor:
    """A relative model's error: normalised prediction minus normalised label (the SSI
    loss's residual, in units of the label's spread), each CutMix region normalised on its
    own as ``relative_loss`` does; 0 outside ``mask``."""
    parts = [mask] if region is None or not region.any() else [mask & ~region, mask & region]
    residual = torch.zeros_like(pred_disparity)
    for part in parts:
        r = normalise_disparity(pred_disparity, part) - normalise_disparity(target_disparity, part)
        residual = torch.where(part, r, residual)
    return residual
