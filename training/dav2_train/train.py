"""``teacher``, ``student``, ``finetune-metric`` and ``confidence``: one training loop.

- teacher: relative model on metric ground truth (SSI + 2.0 × gradient matching on
  inverse depth).
- student: relative model on whatever its ``data`` holds: teacher pseudo labels (top
  10 % largest-loss pixels ignored, strong perturbations and CutMix) or ground truth
  (the synthetic-only baseline of the domain comparison).
- finetune-metric: metric model (Sigmoid × max_depth) initialised from a relative
  model, SiLog loss (λ 0.5) on valid depth.
- confidence: only a confidence head, on a frozen model (its ``init``: a section or any
  checkpoint), Laplace NLL of the model's own error (``losses.laplace_nll``). With
  ``confidence_head: true`` a student or metric fine-tune trains the same head beside its
  depth; the head reads its features behind a stop-gradient, its loss reaches only its
  own weights and its gradients are clipped apart, so the depth learns exactly as without.

``run`` = ``build`` (model, optimizer, streaming loader) → ``resume`` (the last
checkpoint: weights, optimizer, loader position, RNG) → ``loop`` → ``finish``
(``save_model``). Runs alone or under ``torchrun`` (DDP); rank 0 logs (tqdm,
TensorBoard, ``history.json``) and writes checkpoints.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint
from torch.utils.data import default_collate

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, save_model
from dav2_train import checkpointing, fingerprint
from dav2_train.augment import StrongAugment, cutmix_batch
from dav2_train.config import data_splits, run_dir, split_dir, train_section
from dav2_train.dist import DistContext, all_gather_objects, all_reduce_sum
from dav2_train.losses import (
    laplace_nll,
    live_range_penalty,
    log_depth_residual,
    relative_loss,
    silog_loss,
    ssi_residual,
)
from dav2_train.models import (
    calibrate_metric_logits,
    final_checkpoint,
    initialise,
    is_finished,
    load_reference,
    reference_input,
)
from dav2_train.provenance import git_revision
from dav2_train.shards import Split, read_split, refuse_held_out
from dav2_train.stream import SampleTransform, ShardStream, make_loader


@dataclass
class Trainer:
    """Everything ``build`` makes and the loop advances."""

    name: str
    cfg: dict[str, Any]
    out: Path
    model: DepthAnythingV2
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loader: Any  # StatefulDataLoader
    kind: str  # label kind of the data: "disparity" or "depth_m"
    sky: str
    trim: float
    cutmix_p: float
    autocast_dtype: torch.dtype | None
    max_depth_m: float
    seed: int
    record: dict[str, Any]  # provenance of this run (data, init, settings)
    pre_activation: HeadPreActivation | None = None  # relative models only
    input_size: int = 0  # the model's own input size (metadata); 0: the section's
    step: int = 0
    history: list = field(default_factory=list)  # [step, loss, [batch digest per rank]]

    @property
    def command(self) -> str:
        return self.cfg["command"]

    @property
    def depth_type(self) -> str:
        return self.model.depth_type

    @property
    def with_error(self) -> bool:
        """The model has a confidence head that this section trains."""
        return self.model.has_confidence_head

    @property
    def loss_command(self) -> str:
        """The command whose targets and depth loss apply (a confidence section's model is
        a metric fine-tune's or a relative student's)."""
        if self.command != "confidence":
            return self.command
        return "finetune-metric" if self.depth_type == "metric" else "student"


# Settings that do not change what is learnt: not part of the fingerprint. (The
# process and worker counts change the sample order; a resume checks them itself.)
UNFINGERPRINTED = ("checkpoint_every", "log_every", "workers")
# Optional settings: part of the fingerprint only when set, so a section that does not
# use them keeps the digest it has without them.
FINGERPRINTED_WHEN_SET = ("resize_range", "canonical_focal_px")


def train_fingerprint(config: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """The section's settings plus its inputs: data splits' and init's own fingerprints."""
    settings = {
        k: v
        for k, v in cfg.items()
        if k not in UNFINGERPRINTED and not (k in FINGERPRINTED_WHEN_SET and v is None)
    }
    settings |= {"seed": int(config.get("seed", 0)), "max_depth_m": float(config["max_depth_m"])}
    inputs: dict[str, Any] = {
        "data": {
            split: read_split(split_dir(config, split)).fingerprint.get("digest")
            for split in data_splits(cfg)
        }
    }
    if cfg["init"]:
        inputs["init"] = reference_input(config, cfg["init"], "init")
    return fingerprint.make(settings, inputs)


def run(config: dict[str, Any], name: str, ctx: DistContext) -> Path:
    """Train section ``name``; returns the stem of its final checkpoint."""
    cfg = train_section(config, name)
    out = run_dir(config) / name
    final = final_checkpoint(config, name)
    made_by = train_fingerprint(config, cfg)
    kept = fingerprint.guard_folder(out, made_by, f"[{name}]", ctx)
    if kept and is_finished(final):
        if ctx.is_main:
            print(f"[{name}] already finished with the same config and inputs: {final}")
        return final
    trainer = build(config, name, cfg, ctx)
    trainer.record["fingerprint"] = made_by
    resume(trainer, ctx)
    loop(trainer, ctx)
    return finish(trainer, ctx)


# --- build -----------------------------------------------------------------------------


def build(config: dict[str, Any], name: str, cfg: dict[str, Any], ctx: DistContext) -> Trainer:
    """Data, model (with its init), optimizer and streaming loader of a section."""
    out = run_dir(config) / name
    out.mkdir(parents=True, exist_ok=True)
    seed = int(config.get("seed", 0))
    torch.manual_seed(seed)  # the same initial weights on every rank
    max_depth_m = float(config["max_depth_m"])
    splits = read_data(name, cfg, config)
    kind = splits[0].kind
    strong_on = kind == "disparity" if cfg["strong_augment"] == "auto" else cfg["strong_augment"]
    strong = StrongAugment.from_config(cfg["augment"]) if strong_on else None
    input_size = int(cfg["input_size"])
    model, init_record = build_model(config, name, cfg, max_depth_m, ctx)
    # A confidence head learns its frozen model's own error: a canonical-camera model's
    # metres are compared with labels in its canonical camera, as it was trained.
    canonical = cfg["canonical_focal_px"] or (
        (init_record or {}).get("canonical_focal_px") if cfg["command"] == "confidence" else None
    )
    transform = SampleTransform(
        kind,
        input_size,
        int(cfg["crop_size"] or input_size),
        bool(cfg["hflip"]),
        strong,
        tuple(cfg["resize_range"]) if cfg["resize_range"] else None,
        float(canonical) if canonical else None,
    )
    if model.depth_type == "metric" and kind != "depth_m":
        raise ValueError(
            f"[{name}] a metric model's confidence is trained on metric depth (depth_m "
            f"shards), but {cfg['data']} holds {kind}; use synthetic or RGB-D splits"
        )
    if init_record and init_record.get("output_flipped"):
        # Before DDP wraps the model: DDP then gives every rank rank 0's weights.
        batch = first_batch(splits, transform, seed, int(cfg["batch_size"]))
        init_record["calibration"] = calibrate_on_batch(model, batch, max_depth_m, ctx)
        if ctx.is_main:
            print(f"[{name}] metric head calibrated: {init_record['calibration']}", flush=True)
    trains_depth = cfg["command"] != "confidence"
    pre_activation = (
        HeadPreActivation(model) if model.depth_type == "relative" and trains_depth else None
    )
    net = WithLogError(model) if model.has_confidence_head else model
    net = DistributedDataParallel(net) if ctx.distributed else net
    optimizer, scheduler = build_optimizer(model, cfg)
    autocast_dtype = select_autocast(cfg["precision"], ctx.device)
    loader = make_loader(
        ShardStream(splits, transform, seed), int(cfg["batch_size"]), int(cfg["workers"])
    )
    record = {
        "section": name,
        "command": cfg["command"],
        "data": [
            {
                "split": s.directory.name,
                "kind": s.kind,
                "samples": s.samples,
                "fingerprint": s.fingerprint.get("digest"),
                "provenance": s.provenance,
            }
            for s in splits
        ],
        "init": init_record,
        "encoder": cfg["encoder"],
        "input_size": input_size,
        "crop_size": transform.crop_size,
        "resize_range": transform.resize_range,
        "canonical_focal_px": transform.canonical_focal_px,
        "steps": int(cfg["steps"]),
        "batch_size": int(cfg["batch_size"]),
        "accumulate": int(cfg["accumulate"]),
        "world_size": ctx.world_size,
        "workers": int(cfg["workers"]),
        "precision": str(autocast_dtype or torch.float32).replace("torch.", ""),
        "trim_fraction": trim_fraction(cfg, kind),
        "sky": sky_mode(cfg),
        "strong_augment": None if strong is None else strong.__dict__,
        "confidence_head": model.has_confidence_head,
        "config": dict(cfg),
    }
    return Trainer(
        name=name,
        cfg=cfg,
        out=out,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16),
        loader=loader,
        kind=kind,
        sky=sky_mode(cfg),
        trim=trim_fraction(cfg, kind),
        cutmix_p=strong.cutmix_p if strong else 0.0,
        autocast_dtype=autocast_dtype,
        max_depth_m=max_depth_m,
        seed=seed,
        record=record,
        pre_activation=pre_activation,
        input_size=int(init_record.get("input_size", 0)) if cfg["command"] == "confidence" else 0,
    )


class WithLogError(torch.nn.Module):
    """The network as trained with a confidence head: ``forward`` returns the depth and
    the log of its expected error (a module, so that DDP sees the call)."""

    def __init__(self, model: DepthAnythingV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.depth_and_log_error(x)


def first_batch(
    splits: list[Split], transform: SampleTransform, seed: int, size: int
) -> dict[str, torch.Tensor]:
    """The first ``size`` samples of a fresh stream (the training stream is not touched),
    collated as the DataLoader collates them."""
    return default_collate(list(itertools.islice(iter(ShardStream(splits, transform, seed)), size)))


def calibrate_on_batch(
    model: DepthAnythingV2, batch: dict[str, torch.Tensor], max_depth_m: float, ctx: DistContext
) -> dict[str, float]:
    """``models.calibrate_metric_logits`` on the depths the fine-tune's loss counts."""
    image, target, mask = (batch[k].to(ctx.device) for k in ("image", "target", "mask"))
    depth_m, valid = loss_targets("depth_m", "finetune-metric", target, mask, "ignore", max_depth_m)
    return calibrate_metric_logits(model, image, depth_m, valid)


class HeadPreActivation:
    """The relative head's last pre-activation (its final ReLU's input), kept from each
    forward pass for ``losses.live_range_penalty``."""

    def __init__(self, model: DepthAnythingV2) -> None:
        self.value: torch.Tensor | None = None
        model.depth_head.scratch.output_conv2[2].register_forward_hook(self._keep)

    def _keep(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self.value = output.squeeze(1)


def read_data(name: str, cfg: dict[str, Any], config: dict[str, Any]) -> list[Split]:
    """The section's splits (manifests only), checked against what its command trains on."""
    splits = [read_split(split_dir(config, s)) for s in data_splits(cfg)]
    for split in splits:
        refuse_held_out(split)
    if cfg["command"] in ("teacher", "finetune-metric") and splits[0].kind != "depth_m":
        raise ValueError(
            f"[{name}] {cfg['command']} trains on metric ground truth (depth_m shards), but "
            f"{cfg['data']} holds {splits[0].kind}; use synthetic or RGB-D splits"
        )
    return splits


def build_model(
    config: dict[str, Any], name: str, cfg: dict[str, Any], max_depth_m: float, ctx: DistContext
) -> tuple[DepthAnythingV2, dict | None]:
    """The section's network, initialised from ``init`` (or fresh), on the device."""
    if cfg["command"] == "confidence":
        return frozen_with_head(config, name, cfg, ctx)
    depth_type = "metric" if cfg["command"] == "finetune-metric" else "relative"
    model = DepthAnythingV2(cfg["encoder"], depth_type, max_depth_m, bool(cfg["confidence_head"]))
    init_record = None
    if cfg["init"]:
        init_record = initialise(model, config, cfg["init"], f"[{name}] init")
        if ctx.is_main:
            print(f"[{name}] init: {describe_init(init_record)}", flush=True)
    elif depth_type == "relative":
        # Start the ReLU output in its positive range so no pixel begins with zero gradient.
        torch.nn.init.constant_(model.depth_head.scratch.output_conv2[2].bias, 1.0)
    # Parameters the forward pass never uses (kept only so official state dicts load);
    # DDP requires every trainable parameter to receive a gradient.
    model.pretrained.mask_token.requires_grad_(False)
    model.depth_head.scratch.refinenet4.resConfUnit1.requires_grad_(False)
    if cfg["activation_checkpointing"]:
        enable_activation_checkpointing(model)
    return model.to(ctx.device), init_record


def frozen_with_head(
    config: dict[str, Any], name: str, cfg: dict[str, Any], ctx: DistContext
) -> tuple[DepthAnythingV2, dict]:
    """``init`` (a section or any checkpoint) frozen, with a fresh confidence head (one it
    had already is replaced): the only weights a confidence section trains."""
    source = load_reference(config, cfg["init"], f"[{name}] init")
    model = source.model
    replaced = model.has_confidence_head
    model.requires_grad_(False)
    model.add_confidence_head()  # drawn from the run's seed (build seeds torch first)
    record = {
        **source.record,
        "loaded": "frozen; confidence head trained" + (" (its old head replaced)" * replaced),
        "input_size": source.loaded.meta.input_size,
        "canonical_focal_px": source.loaded.meta.canonical_focal_px,
    }
    if ctx.is_main:
        print(
            f"[{name}] init: {describe_init(record)}, frozen; a fresh confidence head "
            f"({sum(p.numel() for p in confidence_parameters(model))} weights) trains on it",
            flush=True,
        )
    return model.to(ctx.device), record


def confidence_parameters(model: DepthAnythingV2) -> list[torch.nn.Parameter]:
    head = model.depth_head.uncertainty
    return [] if head is None else list(head.parameters())


def build_optimizer(
    model: DepthAnythingV2, cfg: dict[str, Any]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with encoder / decoder / confidence-head learning rates, linear warm-up then
    poly decay. A confidence section's optimizer holds the head only."""
    head = {id(p) for p in confidence_parameters(model)}
    decoder = [p for p in model.depth_head.parameters() if id(p) not in head]
    groups = []
    if cfg["command"] != "confidence":
        groups += [
            {"params": list(model.pretrained.parameters()), "lr": float(cfg["lr_encoder"])},
            {"params": decoder, "lr": float(cfg["lr_decoder"])},
        ]
    if head:
        groups.append({"params": confidence_parameters(model), "lr": float(cfg["lr_confidence"])})
    optimizer = torch.optim.AdamW(groups, weight_decay=float(cfg["weight_decay"]))
    schedule = functools.partial(
        lr_factor,
        warmup=int(cfg["warmup_steps"]),
        total=int(cfg["steps"]),
        power=float(cfg["poly_power"]),
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def trim_fraction(cfg: dict[str, Any], kind: str) -> float:
    """Share of largest-loss pixels ignored: as configured (0 is honoured), else 0.1 on
    pseudo labels (the paper) and 0 on ground truth."""
    if cfg["trim_fraction"] is None:
        return 0.1 if kind == "disparity" else 0.0
    return float(cfg["trim_fraction"])


def sky_mode(cfg: dict[str, Any]) -> str:
    """As configured, else "far" for relative and "ignore" (valid pixels only) for metric."""
    return cfg["sky"] or ("ignore" if cfg["command"] == "finetune-metric" else "far")


def lr_factor(step: int, warmup: int, total: int, power: float) -> float:
    """Linear warm-up, then poly decay (power 0.9 in the paper)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** power


def select_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, None for plain fp32. auto: bf16 on CUDA (fp16 where bf16 is missing)."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def enable_activation_checkpointing(model: DepthAnythingV2) -> None:
    """Recompute each ViT block in the backward pass instead of storing its activations.

    The block's ``forward`` is wrapped on the instance, so parameter names (and
    checkpoints) stay those of the plain model.
    """
    for block in model.pretrained.blocks:
        block.forward = functools.partial(_checkpointed, block.forward)


def _checkpointed(forward: Any, tokens: torch.Tensor) -> torch.Tensor:
    return checkpoint(forward, tokens, use_reentrant=False)


def describe_init(record: dict) -> str:
    if record["kind"] == "dinov2-encoder":
        missing = f"; not in the file: {', '.join(record['missing'])}" if record["missing"] else ""
        ignored = f"; ignored: {', '.join(record['ignored'])}" if record["ignored"] else ""
        return (
            f"DINOv2 encoder {record['path']}: loaded {record['tensors_loaded']}/"
            f"{record['tensors_expected']} encoder tensors{missing}{ignored}; the depth head "
            "starts fresh"
        )
    if record["kind"] == "section":
        return f"section {record['section']!r} (encoder and head)"
    return f"{record['format']} checkpoint {record['path']} (encoder and head)"


# --- resume ------------------------------------------------------------------------------


def resume(trainer: Trainer, ctx: DistContext) -> None:
    """Continue from ``last/``: weights, optimizer, loader position and RNG of every rank."""
    found = checkpointing.find_checkpoint(trainer.out / "last")
    if found is None:
        return
    saved_model, state = checkpointing.load_checkpoint(found)
    if len(state["loaders"]) != ctx.world_size:
        raise ValueError(
            f"[{trainer.name}] {found} was written by {len(state['loaders'])} processes, this "
            f"run has {ctx.world_size}; the sample order depends on it. Resume with "
            f"--nproc_per_node x nodes = {len(state['loaders'])} or delete {found.parent}"
        )
    workers = int(trainer.cfg["workers"])
    if state.get("workers", workers) != workers:
        raise ValueError(
            f"[{trainer.name}] {found} was written with workers: {state['workers']} per process; "
            f"each worker's position is saved, so resume with workers: {state['workers']}"
        )
    trainer.model.load_state_dict(saved_model.state_dict())
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.loader.load_state_dict(state["loaders"][ctx.rank])
    checkpointing.restore_rng(state["rng"][ctx.rank])
    trainer.step, trainer.history = int(state["step"]), list(state["history"])
    if ctx.is_main:
        print(
            f"[{trainer.name}] resuming from {found} at step {trainer.step}/{trainer.cfg['steps']}",
            flush=True,
        )


def save(trainer: Trainer, ctx: DistContext) -> None:
    """Every rank contributes its loader position and RNG; rank 0 writes ``last/``."""
    loaders = all_gather_objects(trainer.loader.state_dict(), ctx)
    rngs = all_gather_objects(checkpointing.capture_rng(), ctx)
    if not ctx.is_main:
        return
    state = {
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "step": trainer.step,
        "history": trainer.history,
        "loaders": loaders,
        "workers": int(trainer.cfg["workers"]),
        "rng": rngs,
    }
    meta = model_meta(trainer, {**trainer.record, "checkpoint_step": trainer.step})
    checkpointing.save_checkpoint(trainer.out / "last", trainer.model, meta, state)


# --- loop --------------------------------------------------------------------------------


def loss_targets(
    kind: str,
    command: str,
    target: torch.Tensor,
    mask: torch.Tensor,
    sky: str,
    max_depth_m: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, mask) in the space ``command``'s loss works in.

    Metric ground truth: depth in [1 mm, max_depth_m] is valid. Other pixels (sky,
    beyond range) are ``sky: far`` → taught as far (disparity 0, or 0.98 × max depth
    for a metric model), or ``sky: ignore`` → left out of the loss.
    """
    if kind == "disparity":
        if command == "finetune-metric":
            raise ValueError("finetune-metric needs metric depth (depth_m shards)")
        return target, mask
    good = mask & (target >= 1e-3) & (target <= max_depth_m)
    depth_m = torch.where(good, target, torch.ones_like(target))
    if command == "finetune-metric":
        if sky == "far":
            return torch.where(good, depth_m, 0.98 * max_depth_m), torch.ones_like(good)
        return depth_m, good
    disparity = torch.where(good, 1.0 / depth_m, 0.0)
    return (disparity, torch.ones_like(good)) if sky == "far" else (disparity, good)


def section_loss(
    command: str,
    cfg: dict[str, Any],
    trim: float,
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    region: torch.Tensor | None = None,
    pre_activation: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss ``command`` trains with, on targets from ``loss_targets``; a relative
    model's ``pre_activation`` (``HeadPreActivation``) adds the live-range penalty."""
    if command == "finetune-metric":
        return silog_loss(pred, target, mask, float(cfg["silog_lambda"]))
    loss = relative_loss(pred, target, mask, float(cfg["gradient_weight"]), trim, region)
    weight = float(cfg["live_range_weight"])
    if pre_activation is not None and weight > 0:
        loss = loss + weight * live_range_penalty(pre_activation)
    return loss


def batch_digest(keys: list[str]) -> str:
    """A short fingerprint of the samples of one step (which, and in which order)."""
    return hashlib.sha1("\n".join(keys).encode()).hexdigest()[:12]


def loop(trainer: Trainer, ctx: DistContext) -> None:
    total = int(trainer.cfg["steps"])
    accumulate = int(trainer.cfg["accumulate"])
    checkpoint_every, log_every = (
        int(trainer.cfg["checkpoint_every"]),
        int(trainer.cfg["log_every"]),
    )
    writer = bar = None
    if ctx.is_main:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        writer = SummaryWriter(str(trainer.out / "tb"))
        bar = tqdm(
            total=total, initial=trainer.step, desc=f"{trainer.name} ({trainer.command})", unit="it"
        )
    started = time.time()
    batches = iter(trainer.loader)
    trainer.net.train()
    while trainer.step < total:
        trainer.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=ctx.device)
        keys: list[str] = []
        for micro in range(accumulate):
            batch = next(batches)
            keys += list(batch["key"])
            last_micro = micro == accumulate - 1
            sync = nullcontext() if last_micro or not ctx.distributed else trainer.net.no_sync()
            with sync:
                loss = micro_step(trainer, batch, micro, ctx) / accumulate
                trainer.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        if not math.isfinite(loss_sum.item()):
            raise FloatingPointError(
                f"[{trainer.name}] loss became {loss_sum.item()} at step {trainer.step}; "
                "lower the learning rates"
            )
        trainer.scaler.unscale_(trainer.optimizer)
        clip_gradients(trainer.model)
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
        trainer.scheduler.step()
        trainer.step += 1
        loss_mean = float(all_reduce_sum(loss_sum, ctx)) / ctx.world_size
        digests = all_gather_objects(batch_digest(keys), ctx)
        if ctx.is_main:
            trainer.history.append([trainer.step, loss_mean, digests])
            bar.update()
            bar.set_postfix(loss=f"{loss_mean:.4f}")
            if trainer.step % log_every == 0 or trainer.step == total:
                writer.add_scalar("loss/train", loss_mean, trainer.step)
                writer.add_scalar(
                    "lr/encoder", trainer.optimizer.param_groups[0]["lr"], trainer.step
                )
        if trainer.step % checkpoint_every == 0 or trainer.step == total:
            save(trainer, ctx)
    trainer.record["train_seconds_last_session"] = round(time.time() - started, 1)
    if ctx.is_main:
        bar.close()
        writer.close()


def clip_gradients(model: DepthAnythingV2, max_norm: float = 1.0) -> None:
    """Clip the depth's and the confidence head's gradients each on its own: one norm over
    both would let the head's gradients change how much the depth's are clipped."""
    head = {id(p) for p in confidence_parameters(model)}
    depth = [p for p in model.parameters() if id(p) not in head and p.grad is not None]
    if depth:
        torch.nn.utils.clip_grad_norm_(depth, max_norm)
    if head:
        torch.nn.utils.clip_grad_norm_(confidence_parameters(model), max_norm)


def confidence_targets(
    trainer: Trainer,
    pred: torch.Tensor,
    raw_target: torch.Tensor,
    raw_mask: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    region: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's error on this batch, the pixels where it is known) for the head.

    Metric: ln d - ln d* on valid depth only (no truth in the sky, whatever ``sky``
    teaches the depth). Relative: the SSI residual on the depth loss's own targets.
    """
    if trainer.depth_type == "metric":
        depth_m, valid = loss_targets(
            trainer.kind, "finetune-metric", raw_target, raw_mask, "ignore", trainer.max_depth_m
        )
        return log_depth_residual(pred, depth_m, valid), valid
    return ssi_residual(pred, target, mask, region), mask


def micro_step(
    trainer: Trainer, batch: dict[str, Any], micro: int, ctx: DistContext
) -> torch.Tensor:
    """Forward one micro-batch and return its loss (CutMix drawn from (seed, step, rank))."""
    image, raw_target, raw_mask = (
        batch[k].to(ctx.device, non_blocking=True) for k in ("image", "target", "mask")
    )
    region = None
    if trainer.cutmix_p > 0:  # before the per-pixel target mapping, with which it commutes
        rng = np.random.default_rng([trainer.seed, trainer.step, ctx.rank, micro])
        image, raw_target, raw_mask, region = cutmix_batch(
            image, raw_target, raw_mask, rng, trainer.cutmix_p
        )
    target, mask = loss_targets(
        trainer.kind, trainer.loss_command, raw_target, raw_mask, trainer.sky, trainer.max_depth_m
    )
    if trainer.autocast_dtype is None:
        out = trainer.net(image)
    else:
        with torch.autocast(ctx.device.type, dtype=trainer.autocast_dtype):
            out = trainer.net(image)
    pred, log_error = out if trainer.with_error else (out, None)
    pred = pred.float()
    loss = pred.new_zeros(())
    if trainer.command != "confidence":
        pre_activation = trainer.pre_activation.value if trainer.pre_activation else None
        loss = section_loss(
            trainer.command, trainer.cfg, trainer.trim, pred, target, mask, region, pre_activation
        )
    if log_error is not None:
        residual, known = confidence_targets(
            trainer, pred, raw_target, raw_mask, target, mask, region
        )
        loss = loss + laplace_nll(log_error, residual, known)
    return loss


# --- finish ------------------------------------------------------------------------------


def model_meta(trainer: Trainer, provenance: dict) -> ModelMeta:
    """A confidence section's model keeps its init's depth range, input size and canonical
    focal length (the head is trained at the section's ``input_size``, recorded in
    ``confidence_head``)."""
    head = {}
    if trainer.with_error:
        head = {
            "trained_by": f"section `{trainer.name}` ({trainer.command})",
            "trained_input_size": int(trainer.cfg["input_size"]),
            "data": [d["split"] for d in trainer.record["data"]],
            "steps": int(trainer.cfg["steps"]),
        }
    canonical = trainer.record["canonical_focal_px"]
    return ModelMeta(
        trainer.model.spec.name,
        trainer.depth_type,
        trainer.model.max_depth,
        trainer.input_size or int(trainer.cfg["input_size"]),
        canonical_focal_px=float(canonical) if canonical else None,
        provenance=provenance,
        confidence_head=head,
    )


def finish(trainer: Trainer, ctx: DistContext) -> Path:
    """Rank 0 writes ``history.json`` and the final model (``save_model``; its files mean done)."""
    final = trainer.out / "final"
    if ctx.is_main:
        history = trainer.history
        provenance = {
            **trainer.record,
            "git_revision": git_revision(),
            "first_loss": history[0][1] if history else None,
            "last_loss": history[-1][1] if history else None,
        }
        (trainer.out / "history.json").write_text(json.dumps(history))
        save_model(trainer.model, model_meta(trainer, provenance), final)
    ctx.barrier()
    return final
