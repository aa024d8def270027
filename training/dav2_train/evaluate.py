"""``dav2-train evaluate``: AbsRel / δ1 on held-out shards and DA-2K pair accuracy.

Relative models are scored after least-squares scale and shift in inverse depth;
metric models directly (and, for comparison, aligned too). Results go to
``<run_dir>/evaluate/metrics.json`` and a Markdown table ``metrics.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dav2_train.config import run_dir, section
from dav2_train.data import load_shards, read_rgb
from dav2_train.dist import DistContext
from dav2_train.infer import predict
from dav2_train.metrics import da2k_correct, depth_metrics, relative_metrics
from dav2_train.train import load_trained

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


def evaluate_split(
    model, meta: dict, split_dir: Path, max_depth_m: float, device, limit: int | None = None
) -> dict:
    arrays = load_shards(split_dir)
    rows = []
    count = len(arrays["rgb"]) if limit is None else min(limit, len(arrays["rgb"]))
    for i in range(count):
        rgb, gt, valid = arrays["rgb"][i], arrays["depth_m"][i], arrays["valid"][i]
        if valid.sum() < 2:
            continue
        pred = predict(model, rgb, meta["input_size"], device)
        row = relative_metrics(_as_disparity(pred, meta["depth_type"]), gt, valid, max_depth_m)
        if meta["depth_type"] == "metric":
            row = {f"{k}_aligned": v for k, v in row.items()} | depth_metrics(pred, gt, valid)
        rows.append(row)
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} | {"images": len(rows)}


def evaluate_da2k(model, meta: dict, annotations_path: Path, device) -> dict:
    annotations = json.loads(Path(annotations_path).read_text())
    root = Path(annotations_path).parent
    correct = total = 0
    for image, pairs in annotations.items():
        if not pairs:
            continue
        pred = predict(model, read_rgb(root / image), meta["input_size"], device)
        c, n = da2k_correct(_as_disparity(pred, meta["depth_type"]), pairs)
        correct, total = correct + c, total + n
    return {"da2k_accuracy": correct / max(total, 1), "da2k_pairs": total}


def run(config: dict[str, Any], ctx: DistContext, name: str = "evaluate") -> dict:
    cfg = section(config, name)
    out = run_dir(config) / name
    results: dict[str, dict] = {}
    if ctx.is_main:
        max_depth_m = float(config["max_depth_m"])
        for model_name in cfg["models"]:
            model, meta = load_trained(config, model_name)
            model.to(ctx.device)
            results[model_name] = {}
            for split in cfg["splits"]:
                split_dir = run_dir(config) / "data" / split
                row = evaluate_split(
                    model, meta, split_dir, max_depth_m, ctx.device, cfg.get("limit")
                )
                da2k = split_dir / "da2k" / "annotations.json"
                if da2k.exists():
                    row |= evaluate_da2k(model, meta, da2k, ctx.device)
                results[model_name][split] = row
            for extra in cfg.get("da2k_annotations", []) or []:
                results[model_name][f"da2k:{extra}"] = evaluate_da2k(
                    model, meta, Path(extra), ctx.device
                )
            print(f"[evaluate] {model_name}: {json.dumps(results[model_name])}")
        if cfg.get("prior", True):
            prior_meta = {"input_size": 14 * 6, "depth_type": "relative"}
            results[PRIOR_NAME] = {}
            for split in cfg["splits"]:
                split_dir = run_dir(config) / "data" / split
                row = evaluate_split(LowerIsCloser(), prior_meta, split_dir, max_depth_m, "cpu")
                da2k = split_dir / "da2k" / "annotations.json"
                if da2k.exists():
                    row |= evaluate_da2k(LowerIsCloser(), prior_meta, da2k, "cpu")
                results[PRIOR_NAME][split] = row
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(results, indent=1))
        (out / "metrics.md").write_text(markdown_table(results))
    ctx.barrier()
    return results


def markdown_table(results: dict[str, dict]) -> str:
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
    return "\n".join(lines) + "\n"
