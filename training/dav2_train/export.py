"""``dav2-train export``: write the node's own checkpoint format plus a model card.

``<out>.safetensors`` + ``<out>.json`` via ``dav2_ros.model.checkpoints.save_model``
(the provenance carries config, data, steps and git revision; metrics come from
the evaluate step when it ran) and ``MODEL_CARD.md`` beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dav2_ros.model.checkpoints import ModelMeta, load_model, save_model
from dav2_train.config import run_dir, section
from dav2_train.dist import DistContext
from dav2_train.provenance import git_revision
from dav2_train.train import load_trained


def _steps_summary(config: dict[str, Any], names: list[str]) -> list[dict]:
    steps = []
    for name in names:
        meta_path = run_dir(config) / name / "final.json"
        if meta_path.is_file():
            steps.append(json.loads(meta_path.read_text()))
    return steps


def run(config: dict[str, Any], ctx: DistContext, name: str = "export") -> Path | None:
    cfg = section(config, name)
    out = Path(cfg["out"])
    if not ctx.is_main:
        ctx.barrier()
        return None
    model, meta = load_trained(config, cfg["model"])
    metrics_path = run_dir(config) / "evaluate" / "metrics.json"
    all_metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    public_config = {k: v for k, v in config.items() if not k.startswith("_")}
    provenance = {
        "produced_by": "dav2_train (training/ in this repository)",
        "git_revision": git_revision(),  # at export; each step records its own
        "config_file": config.get("_path"),
        "config": public_config,
        "data": section(config, "synth").get("splits", {}) if "synth" in config else {},
        "steps": _steps_summary(config, cfg.get("lineage", [cfg["model"]])),
        "licence": cfg.get("licence", "Apache-2.0"),
        "pretrained_init": "none: trained from scratch (no DINOv2 weights available offline)",
    }
    extra = cfg.get("card", {}) or {}
    metrics = {
        "held_out": all_metrics.get(cfg["model"], {}),
        "speed": extra.get("speed", {}),
    }
    tensors_path = save_model(
        model,
        ModelMeta(
            meta["encoder"],
            meta["depth_type"],
            meta["max_depth"],
            meta["input_size"],
            provenance=provenance,
            metrics=metrics,
        ),
        out,
    )
    reloaded = load_model(tensors_path)  # the node's own loader must accept what we wrote
    card = model_card(reloaded.meta, all_metrics, extra)
    (tensors_path.parent / "MODEL_CARD.md").write_text(card)
    print(f"[export] wrote {tensors_path} (+ .json, MODEL_CARD.md)")
    ctx.barrier()
    return tensors_path


def _metrics_table(all_metrics: dict) -> str:
    from dav2_train.evaluate import markdown_table

    return markdown_table(all_metrics) if all_metrics else "(evaluate did not run)\n"


def model_card(meta: ModelMeta, all_metrics: dict, extra: dict) -> str:
    p = meta.provenance
    steps = "\n".join(
        f"- `{s['section']}` ({s['command']}): {s['encoder']} {s['depth_type']}, "
        f"data `{s['data']}`, init `{s['init']}`, {s['steps']} steps × batch {s['batch_size']} "
        f"× {s['world_size']} process(es), loss {s['first_loss']:.4f} → {s['last_loss']:.4f}"
        for s in p.get("steps", [])
    )
    limits = extra.get("limitations", "")
    speed = extra.get("speed_text", "")
    return f"""# Model card: bundled default depth model of dav2_ros

- **Architecture:** Depth Anything V2 layout (DINOv2-style ViT + DPT head), encoder
  `{meta.encoder}`, **{meta.depth_type}** output in metres (Sigmoid × {meta.max_depth:g} m),
  default input size {meta.input_size} (shorter side).
- **Produced by:** `make weights` = `dav2-train pipeline --config {p.get("config_file")}`,
  git revision `{p.get("git_revision")}`. Licence {p.get("licence")}.
- **Initialisation:** {p.get("pretrained_init")}.
- **Data:** only procedural synthetic scenes from `dav2_ros.sim` (rooms, streets,
  clutter; Open3D ray casting); style "a" with exact depth, style "b" (other materials,
  light, camera noise and blur) unlabelled and pseudo-labelled by the teacher.
  Splits: `{json.dumps(p.get("data", {}))}`

## Training steps
{steps}

## Held-out metrics (AbsRel, δ1; relative models scale-shift aligned, metric direct)
{_metrics_table(all_metrics)}
{speed}

## What it can and cannot do
{limits}
"""
