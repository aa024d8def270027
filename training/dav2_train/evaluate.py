"""``dav2-train evaluate``: AbsRel / δ1 on held-out shards and DA-2K pair accuracy.

Relative models are scored after least-squares scale and shift in inverse depth;
metric models directly (and, for comparison, aligned too). Unless the section says
``confidence: false``, each split also gets the confidence rankings
(``sparsification``: AUSE, AbsRel of the most confident 80 % and 50 %) of the model's
confidence head and of the cheap heuristics, one mirrored pass more per image. Every rank scores its
share of the images and the sums are all-reduced, so no rank idles behind a barrier
while another evaluates. Results go to ``<run_dir>/<section>/metrics.json`` and a
Markdown table ``metrics.md``. ``models`` entries are train sections or checkpoints.
Earlier metrics stand while the step's fingerprint holds and every model's weights are
the ones scored (``scored_weights``); a model retrained with the same config is scored
again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dav2_ros.model.confidence import flip_disagreement
from dav2_ros.model.transforms import model_input_size
from dav2_train import fingerprint, scored_weights, sparsification
from dav2_train.config import run_dir, section, split_dir
from dav2_train.dist import DistContext, all_gather_objects, all_reduce_sum
from dav2_train.infer import predict, predict_with_confidence, read_rgb
from dav2_train.metrics import aligned_depth, da2k_correct, depth_metrics, relative_metrics
from dav2_train.models import load_reference, reference_input, reference_label, weights_sha256
from dav2_train.shards import Split, iter_split, meta_focal_px, read_split

PRIOR_NAME = "prior: lower is closer"


class LowerIsCloser(nn.Module):
    """Reference "model": disparity grows linearly down the image (a ground-plane guess).

    Scored like any relative model, it shows how much of a metric a model earns
    beyond this trivial layout prior.
    """

    depth_type = "relative"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        ramp = torch.linspace(0.0, 1.0, height, device=x.device)[:, None].expand(height, width)
        return ramp.expand(batch, height, width)


def _as_disparity(prediction: np.ndarray, depth_type: str) -> np.ndarray:
    return prediction if depth_type == "relative" else 1.0 / np.maximum(prediction, 1e-3)


def _reduce_means(rows: list[dict], keys: list[str], ctx: DistContext) -> dict:
    """Means over every rank's rows (sums and counts reduced, no rank waits on another)."""
    sums = torch.tensor(
        [[sum(r[k] for r in rows) for k in keys] + [len(rows)]], dtype=torch.float64
    )
    total = all_reduce_sum(sums.to(ctx.device), ctx).cpu()[0].tolist()
    count = int(total[-1])
    if count == 0:
        raise ValueError("no evaluable image (each needs two valid depth pixels)")
    return {k: total[i] / count for i, k in enumerate(keys)} | {"images": count}


def confidence_row(
    model, meta: dict, rgb: np.ndarray, pred: np.ndarray, confidence: np.ndarray | None,
    gt_m: np.ndarray, valid: np.ndarray, max_depth_m: float, ctx: DistContext, seed: int,
    pool: sparsification.Pool, focal_px: tuple[float, float] | None = None,
) -> dict[str, float]:  # fmt: skip
    """``sparsification.frame_rows`` of one image (its pixels also into ``pool``): the
    head's map and the heuristics. The mirrored pass is corrected to ``focal_px`` as
    ``pred`` was (mirroring keeps the focal length)."""
    mirrored = predict(
        model, np.ascontiguousarray(rgb[:, ::-1]), meta["input_size"], ctx.device,
        meta.get("canonical_focal_px"), focal_px,
    )  # fmt: skip
    flip_error = flip_disagreement(pred, mirrored, meta["depth_type"])
    depth = pred
    if meta["depth_type"] == "relative":
        depth = aligned_depth(pred, gt_m, valid, max_depth_m)
    network_hw = model_input_size(*rgb.shape[:2], meta["input_size"])
    maps = sparsification.uncertainty_maps(rgb, depth, network_hw, confidence, flip_error)
    errors = sparsification.absrel_per_pixel(np.maximum(depth[valid], 1e-6), gt_m[valid])
    ranked = {k: m[valid] for k, m in maps.items()}
    pool.add(errors, ranked, seed)
    return sparsification.frame_rows(errors, ranked, seed)


def evaluate_split(
    model, meta: dict, split: Split, max_depth_m: float, ctx: DistContext,
    limit: int | None = None, confidence: bool = True,
) -> dict:  # fmt: skip
    """AbsRel/δ1 over a split (and the confidence rankings when ``confidence``); rank r
    scores samples r, r + world, … (streamed)."""
    rows, pool = [], sparsification.Pool()
    for index, sample in iter_split(split, ctx.rank, ctx.world_size):
        if limit is not None and index >= limit:
            break
        valid = np.isfinite(sample.label) & (sample.label > 0)
        if valid.sum() < 2:
            continue
        canonical = meta.get("canonical_focal_px")
        focal_px = meta_focal_px(sample.meta) if canonical else None
        pred, head = predict_with_confidence(
            model, sample.rgb, meta["input_size"], ctx.device, canonical, focal_px
        )
        row = relative_metrics(
            _as_disparity(pred, meta["depth_type"]), sample.label, valid, max_depth_m
        )
        if meta["depth_type"] == "metric":
            row = {f"{k}_aligned": v for k, v in row.items()} | depth_metrics(
                pred, sample.label, valid
            )
        if confidence:
            row |= confidence_row(
                model, meta, sample.rgb, pred, head, sample.label, valid, max_depth_m, ctx, index,
                pool, focal_px,
            )  # fmt: skip
        rows.append(row)
    keys = ["absrel", "delta1"]
    if meta["depth_type"] == "metric":
        keys += ["absrel_aligned", "delta1_aligned"]
    if confidence:
        head = [sparsification.HEAD] if getattr(model, "has_confidence_head", False) else []
        keys += sparsification.row_keys([*head, *sparsification.HEURISTICS])
    depth, ranked = sparsification.nested(_reduce_means(rows, keys, ctx))
    if not ranked:
        return depth
    pooled = pool.merge(all_gather_objects(pool, ctx)).summary()
    return depth | {"confidence": ranked, "confidence_pooled": pooled}


def evaluate_da2k(model, meta: dict, annotations_path: Path, ctx: DistContext) -> dict:
    """DA-2K pair accuracy; rank r scores images r, r + world, …"""
    annotations = json.loads(Path(annotations_path).read_text())
    root = Path(annotations_path).parent
    counts = torch.zeros(2, dtype=torch.float64)
    for index, (image, pairs) in enumerate(sorted(annotations.items())):
        if not pairs or index % ctx.world_size != ctx.rank:
            continue
        pred = predict(model, read_rgb(root / image), meta["input_size"], ctx.device)
        correct, total = da2k_correct(_as_disparity(pred, meta["depth_type"]), pairs)
        counts += torch.tensor([correct, total], dtype=torch.float64)
    correct, total = all_reduce_sum(counts.to(ctx.device), ctx).cpu().tolist()
    return {"da2k_accuracy": correct / max(total, 1), "da2k_pairs": int(total)}


def _score(
    model, meta: dict, config: dict, cfg: dict, ctx: DistContext, confidence: bool = True
) -> dict:
    results = {}
    for split_name in cfg["splits"]:
        split = read_split(split_dir(config, split_name))
        row = evaluate_split(
            model, meta, split, float(config["max_depth_m"]), ctx, cfg.get("limit"),
            bool(cfg.get("confidence", True)) and confidence,
        )  # fmt: skip
        da2k = split.directory / "da2k" / "annotations.json"
        if da2k.exists():
            row |= evaluate_da2k(model, meta, da2k, ctx)
        results[split_name] = row
    for extra in cfg.get("da2k_annotations", []) or []:
        results[f"da2k:{extra}"] = evaluate_da2k(model, meta, Path(extra), ctx)
    return results


def run(config: dict[str, Any], name: str, ctx: DistContext) -> dict:
    """Every rank scores its share of every split; rank 0 writes the reduced metrics."""
    cfg = section(config, name)
    out = run_dir(config) / name
    settings = {k: cfg.get(k) for k in ("models", "splits", "limit", "da2k_annotations", "prior")}
    if "confidence" in cfg:  # only when set: metrics scored before it existed stay valid
        settings["confidence"] = cfg["confidence"]
    inputs = {
        "models": [reference_input(config, ref, f"{name}.models") for ref in cfg["models"]],
        "splits": {
            s: read_split(split_dir(config, s)).fingerprint.get("digest") for s in cfg["splits"]
        },
    }
    made_by = fingerprint.make(settings, inputs)
    kept = fingerprint.guard_folder(out, made_by, f"[{name}]", ctx)
    weights = {
        reference_label(ref): weights_sha256(config, ref, f"{name}.models") for ref in cfg["models"]
    }
    scored = (out / "metrics.json").is_file()
    if kept and scored and scored_weights.unchanged(out, weights, f"[{name}]", ctx.is_main):
        if ctx.is_main:
            print(f"[{name}] already evaluated with the same models and splits: {out}")
        return json.loads((out / "metrics.json").read_text())
    results: dict[str, dict] = {}
    for ref in cfg["models"]:
        source = load_reference(config, ref, f"{name}.models")
        meta = {
            "input_size": source.loaded.meta.input_size,
            "depth_type": source.loaded.meta.depth_type,
            # a canonical-camera model is scored in each image's own metres (its K)
            "canonical_focal_px": source.loaded.meta.canonical_focal_px,
        }
        model = source.model.to(ctx.device)
        label = reference_label(ref)
        results[label] = _score(model, meta, config, cfg, ctx)
        if ctx.is_main:
            shown = {
                split: {k: v for k, v in row.items() if not k.startswith("confidence")}
                for split, row in results[label].items()
            }
            print(f"[{name}] {label}: {json.dumps(shown)}", flush=True)
    if cfg.get("prior", True):
        prior_meta = {"input_size": 14 * 6, "depth_type": "relative"}
        prior = LowerIsCloser().to(ctx.device)
        results[PRIOR_NAME] = _score(prior, prior_meta, config, cfg, ctx, confidence=False)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(results, indent=1))
        (out / "metrics.md").write_text(markdown_table(results))
        scored_weights.write(out, weights)
    ctx.barrier()
    return results


def markdown_table(results: dict[str, dict]) -> str:
    """AbsRel, δ1, DA-2K per model and split; then each model's confidence rankings."""
    lines = [
        "| model | split | AbsRel ↓ | δ1 ↑ | DA-2K acc ↑ | images |",
        "|---|---|---|---|---|---|",
    ]
    for model_name, splits in results.items():
        for split, row in splits.items():
            absrel = f"{row['absrel']:.3f}" if "absrel" in row else "–"
            delta1 = f"{row['delta1']:.3f}" if "delta1" in row else "–"
            da2k = f"{row['da2k_accuracy']:.3f}" if "da2k_accuracy" in row else "–"
            images = row.get("images", "–")
            lines.append(f"| {model_name} | {split} | {absrel} | {delta1} | {da2k} | {images} |")
    lines.append("")
    for model_name, splits in results.items():
        for key, protocol in (
            ("confidence", "each frame ranked on its own"),
            ("confidence_pooled", "all frames' pixels ranked together"),
        ):
            ranked = {s: row[key] for s, row in splits.items() if row.get(key)}
            if ranked:
                lines += sparsification.markdown(model_name, ranked, protocol)
    return "\n".join(lines)
