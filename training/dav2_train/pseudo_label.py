"""``dav2-train pseudo-label``: the teacher labels an unlabelled image folder.

Reads every PNG/JPEG below ``images`` (a folder, or a synth split name whose
``images/`` folder is used), runs the teacher as the node would (shorter side →
``input_size``) and writes shards with ``rgb`` and ``disparity`` under
``<run_dir>/data/<out>/``. Ranks split the images; finished shards are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dav2_train.config import run_dir, section
from dav2_train.data import image_paths, read_rgb
from dav2_train.dist import DistContext
from dav2_train.infer import predict
from dav2_train.train import load_trained


def _images_folder(config: dict[str, Any], images: str) -> Path:
    split = run_dir(config) / "data" / images / "images"
    return split if split.is_dir() else Path(images)


def run(config: dict[str, Any], ctx: DistContext, name: str = "pseudo_label") -> Path:
    from tqdm import tqdm

    cfg = section(config, name)
    out = run_dir(config) / "data" / cfg["out"]
    out.mkdir(parents=True, exist_ok=True)
    teacher, meta = load_trained(config, cfg["teacher"])
    teacher.to(ctx.device)
    input_size = int(cfg.get("input_size", meta["input_size"]))
    paths = image_paths(_images_folder(config, cfg["images"]))
    shard_size = int(cfg.get("shard_size", 100))
    shards = [paths[i : i + shard_size] for i in range(0, len(paths), shard_size)]
    mine = [s for s in range(len(shards)) if s % ctx.world_size == ctx.rank]
    for shard in tqdm(mine, desc=f"pseudo-label[rank {ctx.rank}]", unit="shard"):
        target = out / f"shard-{shard:05d}.npz"
        if target.exists():
            continue
        rgbs = [read_rgb(p) for p in shards[shard]]
        shapes = {rgb.shape for rgb in rgbs}
        if len(shapes) != 1:
            raise ValueError(f"pseudo-label shards need one image size; shard {shard} has {shapes}")
        disparity = np.stack([predict(teacher, rgb, input_size, ctx.device) for rgb in rgbs])
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez_compressed(tmp, rgb=np.stack(rgbs), disparity=disparity.astype(np.float32))
        os.replace(tmp, target)
    ctx.barrier()
    return out
