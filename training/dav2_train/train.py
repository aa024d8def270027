"""``teacher``, ``student`` and ``finetune-metric``: one training loop, three targets.

- teacher: relative model on synthetic ground truth (SSI + 2.0 × gradient matching
  on inverse depth).
- student: relative model on whatever its ``data`` split holds: teacher pseudo
  labels (top 10 % largest-loss pixels ignored) or synthetic ground truth (the
  synthetic-only baseline of the domain comparison).
- finetune-metric: metric model (Sigmoid × max_depth) initialised from a relative
  run, SiLog loss (λ 0.5) on valid synthetic depth.

Runs alone or under ``torchrun`` (DDP + DistributedSampler); rank 0 logs
(tqdm, TensorBoard, ``history.json``) and writes checkpoints atomically;
``last.pt`` is picked up again after a kill.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from dav2_ros.model import DepthAnythingV2
from dav2_train.config import run_dir, train_section
from dav2_train.data import DepthShards
from dav2_train.dist import DistContext, all_reduce_mean
from dav2_train.losses import relative_loss, silog_loss
from dav2_train.provenance import git_revision

COMMANDS = ("teacher", "student", "finetune-metric")


def final_weights_path(config: dict[str, Any], name: str) -> Path:
    return run_dir(config) / name / "final.pt"


def load_trained(
    config: dict[str, Any], name: str, map_location: str = "cpu"
) -> tuple[DepthAnythingV2, dict]:
    """The model a finished train section produced, and its metadata."""
    path = final_weights_path(config, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the {name!r} training section first")
    meta = json.loads(path.with_suffix(".json").read_text())
    model = DepthAnythingV2(meta["encoder"], meta["depth_type"], meta["max_depth"])
    model.load_state_dict(torch.load(path, map_location=map_location, weights_only=True))
    return model.eval(), meta


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _lr_factor(step: int, warmup: int, total: int, power: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** power


def flip_output_for_metric(model: DepthAnythingV2) -> None:
    """Negate the last 1×1 conv of a head initialised from a relative model.

    The relative head's logit grows with *disparity* (near = large); the metric head's
    Sigmoid × max_depth must grow with *depth*. Without the flip the fine-tune starts
    with the ordering inverted and SiLog settles on a near-constant depth.
    """
    last = model.depth_head.scratch.output_conv2[2]
    with torch.no_grad():
        last.weight.neg_()
        last.bias.neg_()


def loss_targets(
    kind: str, command: str, target: torch.Tensor, mask: torch.Tensor, cfg: dict, max_depth_m: float
):
    """(target tensor, mask) in the space the loss works in."""
    if command == "finetune-metric":
        if kind != "depth_m":
            raise ValueError("finetune-metric needs synthetic shards with metric depth_m")
        good = mask & torch.isfinite(target) & (target >= 1e-3) & (target <= max_depth_m)
        depth_m = torch.nan_to_num(target, nan=1.0)
        if cfg.get("invalid_as_max_depth", True):
            # sky / beyond range: teach "as far as the model can say", not arbitrary values
            far = ~good
            return torch.where(far, 0.98 * max_depth_m, depth_m), torch.ones_like(good)
        return depth_m, good
    if kind == "disparity":
        return target, mask
    disparity = torch.where(mask, 1.0 / torch.nan_to_num(target, nan=1.0).clamp_min(1e-3), 0.0)
    if cfg.get("invalid_as_zero_disparity", True):
        # sky / beyond max depth: disparity 0 (as Depth Anything V1 does for sky)
        return disparity, torch.ones_like(mask)
    return disparity, mask


def section_loss(
    command: str,
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    cfg: dict,
    trim: float,
) -> torch.Tensor:
    """The loss ``command`` trains with, on targets from ``loss_targets``."""
    if command == "finetune-metric":
        return silog_loss(pred, target, mask, float(cfg["silog_lambda"]))
    return relative_loss(pred, target, mask, float(cfg["gradient_weight"]), trim)


def run(config: dict[str, Any], name: str, command: str, ctx: DistContext) -> Path:
    """Train section ``name`` with ``command``'s target; returns the final weights path."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {COMMANDS}, got {command!r}")
    cfg = train_section(config, name)
    out = run_dir(config) / name
    final = final_weights_path(config, name)
    if final.exists():
        if ctx.is_main:
            print(f"[{name}] already finished: {final}")
        return final
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(config.get("seed", 0)) * 1000 + ctx.rank)
    max_depth_m = float(config["max_depth_m"])
    depth_type = "metric" if command == "finetune-metric" else "relative"

    dataset = DepthShards(
        run_dir(config) / "data" / cfg["data"], bool(cfg["hflip"]), int(cfg["input_size"])
    )
    if command == "teacher" and dataset.target_kind != "depth_m":
        raise ValueError(
            f"[{name}] the teacher trains on synthetic ground truth, got pseudo labels"
        )
    trim = float(cfg["trim_fraction"] or (0.1 if dataset.target_kind == "disparity" else 0.0))

    model = DepthAnythingV2(cfg["encoder"], depth_type, max_depth_m)
    if cfg["init"]:
        init_model, _ = load_trained(config, cfg["init"])
        model.load_state_dict(init_model.state_dict())  # same keys for relative and metric heads
        if init_model.depth_type == "relative" and depth_type == "metric":
            flip_output_for_metric(model)
    elif depth_type == "relative":
        # Start the ReLU output in its positive range so no pixel begins with zero gradient.
        torch.nn.init.constant_(model.depth_head.scratch.output_conv2[2].bias, 1.0)
    # Parameters the forward pass never uses (kept only so official state dicts load);
    # DDP requires every trainable parameter to receive a gradient.
    model.pretrained.mask_token.requires_grad_(False)
    model.depth_head.scratch.refinenet4.resConfUnit1.requires_grad_(False)
    model.to(ctx.device)
    net = DistributedDataParallel(model) if ctx.distributed else model

    optimizer = torch.optim.AdamW(
        [
            {"params": model.pretrained.parameters(), "lr": float(cfg["lr_encoder"])},
            {"params": model.depth_head.parameters(), "lr": float(cfg["lr_decoder"])},
        ],
        weight_decay=float(cfg["weight_decay"]),
    )
    total_steps = int(cfg["steps"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: _lr_factor(s, int(cfg["warmup_steps"]), total_steps, float(cfg["poly_power"])),
    )
    use_amp = bool(cfg["amp"]) and ctx.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    step, history = 0, []
    last = out / "last.pt"
    if last.exists():
        state = torch.load(last, map_location=ctx.device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, history = int(state["step"]), list(state["history"])
        if ctx.is_main:
            print(f"[{name}] resuming from {last} at step {step}/{total_steps}")

    sampler = DistributedSampler(
        dataset,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=int(config.get("seed", 0)),
        drop_last=True,
    )
    batch_size = int(cfg["batch_size"])
    if len(sampler) < batch_size:
        raise ValueError(
            f"[{name}] {len(dataset)} samples over {ctx.world_size} ranks cannot fill a batch "
            f"of {batch_size}; render more data or lower batch_size"
        )
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)

    writer = bar = None
    if ctx.is_main:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        writer = SummaryWriter(str(out / "tb"))
        bar = tqdm(total=total_steps, initial=step, desc=f"{name} ({command})", unit="it")
    checkpoint_every, log_every = int(cfg["checkpoint_every"]), int(cfg["log_every"])
    started = time.time()
    net.train()
    while step < total_steps:
        epoch, skip = divmod(step, len(loader))
        sampler.set_epoch(epoch)
        for index, (image, target, mask) in enumerate(loader):
            if index < skip:
                continue  # resuming mid-epoch: same order as before the kill
            image, target, mask = (
                t.to(ctx.device, non_blocking=True) for t in (image, target, mask)
            )
            target, mask = loss_targets(
                dataset.target_kind, command, target, mask, cfg, max_depth_m
            )
            with torch.autocast("cuda", enabled=use_amp):
                pred = net(image)
            pred = pred.float()
            loss = section_loss(command, pred, target, mask, cfg, trim)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"[{name}] loss became {loss.item()} at step {step}; lower the lr"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            loss_mean = float(all_reduce_mean(loss.detach(), ctx))
            if ctx.is_main:
                history.append([step, loss_mean])
                bar.update()
                bar.set_postfix(loss=f"{loss_mean:.4f}")
                if step % log_every == 0 or step == total_steps:
                    writer.add_scalar("loss/train", loss_mean, step)
                    writer.add_scalar("lr/encoder", optimizer.param_groups[0]["lr"], step)
                if step % checkpoint_every == 0 or step == total_steps:
                    _atomic_save(
                        {
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "scaler": scaler.state_dict(),
                            "step": step,
                            "history": history,
                        },
                        last,
                    )
            if step >= total_steps:
                break
    if ctx.is_main:
        bar.close()
        writer.close()
        meta = {
            "encoder": cfg["encoder"],
            "depth_type": depth_type,
            "max_depth": max_depth_m,
            "input_size": int(cfg["input_size"]),
            "section": name,
            "command": command,
            "data": cfg["data"],
            "init": cfg["init"],
            "steps": total_steps,
            "batch_size": batch_size,
            "world_size": ctx.world_size,
            "train_seconds_last_session": round(time.time() - started, 1),
            "git_revision": git_revision(),
            "first_loss": history[0][1] if history else None,
            "last_loss": history[-1][1] if history else None,
        }
        (out / "history.json").write_text(json.dumps(history))
        final.with_suffix(".json").write_text(json.dumps(meta, indent=1))
        _atomic_save(model.state_dict(), final)  # written last: its existence means "done"
    ctx.barrier()
    return final
