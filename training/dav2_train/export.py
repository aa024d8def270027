"""``dav2-train export``: write the node's own checkpoint format plus a model card.

``<out>.safetensors`` + ``<out>.json`` via ``dav2_ros.model.checkpoints.save_model``
and ``MODEL_CARD.md`` beside them. Provenance and card come from what actually ran:
the exported model's own record, which nests the records of its init, its data
splits and the teachers that labelled them (``lineage``), plus the evaluate step's
metrics when it ran (refused when they were scored from other weights than the model
exported). Nothing about data or initialisation is fixed text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dav2_ros.model.checkpoints import ModelMeta, load_model, save_model
from dav2_train import fingerprint, scored_weights
from dav2_train.config import run_dir, section
from dav2_train.dist import DistContext
from dav2_train.lineage import Lineage, trace
from dav2_train.models import (
    load_reference,
    reference_input,
    reference_label,
    weights_sha256,
)
from dav2_train.provenance import git_revision


def run(config: dict[str, Any], name: str, ctx: DistContext) -> Path | None:
    cfg = section(config, name)
    if not ctx.is_main:
        ctx.barrier()
        return None
    out = Path(cfg["out"])
    source = load_reference(config, cfg["model"], f"{name}.model")
    meta = source.loaded.meta
    evaluate_name = cfg.get("metrics_from", "evaluate")
    metrics_path = run_dir(config) / evaluate_name / "metrics.json"
    all_metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    label = reference_label(cfg["model"])
    if label in all_metrics:  # the card must not carry scores of other weights
        sha256 = weights_sha256(config, cfg["model"], f"{name}.model")
        scored_weights.require_scored(metrics_path.parent, label, sha256)
    lineage = trace(source.record)
    made_by = fingerprint.make(
        {k: v for k, v in cfg.items() if k != "card"},
        {
            "model": reference_input(config, cfg["model"], f"{name}.model"),
            "metrics": fingerprint.digest(all_metrics),
        },
    )
    public_config = {k: v for k, v in config.items() if not k.startswith("_")}
    provenance = {
        "produced_by": "dav2_train (training/ in this repository)",
        "git_revision": git_revision(),  # at export; each step records its own
        "command": " ".join(["dav2-train", *sys.argv[1:]]) if sys.argv else None,
        "config_file": config.get("_path"),
        "config_overrides": config.get("_overrides", []),
        "config": public_config,
        "model": source.record,
        "initialisation": lineage.initialisation,
        "teachers": lineage.teachers,
        "data_sources": lineage.data_sources,
        "steps": lineage.steps,
        "licence": cfg.get("licence", "Apache-2.0"),
        "input_licences": lineage.licences,
        "non_commercial_inputs": lineage.non_commercial,
        "fingerprint": made_by,
    }
    extra = cfg.get("card", {}) or {}
    held_out = {
        split: {k: v for k, v in row.items() if not k.startswith("confidence")}
        | _confidence_figures(row)
        for split, row in all_metrics.get(label, {}).items()
    }
    metrics = {"held_out": held_out, "speed": extra.get("speed", {})}
    tensors_path = save_model(
        source.model,
        ModelMeta(
            meta.encoder,
            meta.depth_type,
            meta.max_depth,
            meta.input_size,
            canonical_focal_px=meta.canonical_focal_px,
            provenance=provenance,
            metrics=metrics,
        ),
        out,
    )
    reloaded = load_model(tensors_path)  # the node's own loader must accept what we wrote
    card = model_card(reloaded.meta, lineage, all_metrics, extra, out.name)
    (tensors_path.parent / "MODEL_CARD.md").write_text(card)
    print(f"[{name}] wrote {tensors_path} (+ .json, MODEL_CARD.md)", flush=True)
    ctx.barrier()
    return tensors_path


def _confidence_figures(row: dict) -> dict:
    """A split's confidence rankings without their curves (the metadata stays small)."""
    figures = {}
    for key in ("confidence", "confidence_pooled"):
        ranked = row.get(key) or {}
        if ranked:
            figures[key] = {
                method: {k: v for k, v in f.items() if k != "curve"} for method, f in ranked.items()
            }
    return figures


def _metrics_table(all_metrics: dict) -> str:
    from dav2_train.evaluate import markdown_table

    return markdown_table(all_metrics) if all_metrics else "(evaluate did not run)\n"


def _bullets(lines: list[str], empty: str) -> str:
    return "\n".join(f"- {line}" for line in lines) if lines else f"- {empty}"


def model_card(
    meta: ModelMeta, lineage: Lineage, all_metrics: dict, extra: dict, title: str
) -> str:
    p = meta.provenance
    output = (
        f"metres (Sigmoid × {meta.max_depth:g} m)"
        if meta.depth_type == "metric"
        else "relative inverse depth (disparity: affine-invariant, near = large)"
    )
    if meta.canonical_focal_px is not None:
        output += (
            f" of a canonical camera with focal length {meta.canonical_focal_px:g} px at the "
            f"network input (shorter side {meta.input_size}); the node, `dav2 predict --fx "
            "--fy` and `DepthEstimator` multiply them by f / "
            f"{meta.canonical_focal_px:g} for a camera of focal length f there"
        )
    licences = _bullets(lineage.licences, "no input declares a licence")
    non_commercial = ""
    if lineage.non_commercial:  # a distilled or fine-tuned model inherits its inputs' terms
        inputs = "".join(f"\n  - {line}" for line in lineage.non_commercial)
        non_commercial = (
            "- **Non-commercial inputs:** this model derives from weights under a "
            f"non-commercial licence; check their terms before any commercial use:{inputs}\n"
        )
    return f"""# Model card: {extra.get("title", title)}

- **Architecture:** Depth Anything V2 layout (DINOv2-style ViT + DPT head), encoder
  `{meta.encoder}`, **{meta.depth_type}** output in {output}, default input size
  {meta.input_size} (shorter side).
- **Produced by:** `{p.get("command")}` (config `{p.get("config_file")}`), git revision
  `{p.get("git_revision")}`. Licence of this model: {p.get("licence")}.
{non_commercial}
## Initialisation
{_bullets(lineage.initialisation, "random initialisation")}

## Teachers
{_bullets(lineage.teachers, "none: trained on ground truth only")}

## Data
{_bullets(lineage.data_sources, "unknown (the model's record names no data)")}

## Training steps
{_bullets(lineage.steps, "none recorded (the model was not trained by dav2-train)")}

## Licences of the inputs
{licences}

## Held-out metrics (AbsRel, δ1; relative models scale-shift aligned, metric direct)
{_metrics_table(all_metrics)}
{extra.get("speed_text", "")}

## What it can and cannot do
{extra.get("limitations", "")}
"""
