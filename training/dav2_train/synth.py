"""``dav2-train synth``: render synthetic splits with exact metric depth.

Each split is ``count`` frames of one ``style``; frame ``i`` depends only on
(split seed, i), so a split is identical whatever the shard size, worker count
or number of ``torchrun`` ranks. Outputs under ``<run_dir>/data/<split>/``:
WebDataset shards (``dav2_train.shards``: rgb, depth_m with NaN invalid, K) and
their ``manifest.json``, or, for ``format: images``, a PNG folder standing in for
unlabelled photos; ``da2k: true`` adds a DA-2K style ``da2k/annotations.json`` with
point pairs ordered by true depth. A split may set its own ``width``/``height`` (test
splits at the camera's 640×480, training splits smaller). Held-out styles
(``dav2_ros.sim.HELD_OUT_STYLES``) render only into splits marked ``held_out: true``
(recorded in the manifest's provenance), which training refuses to read.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dav2_ros.sim import HELD_OUT_STYLES, Frame, make_scene, random_intrinsics, random_pose, render
from dav2_train import fingerprint
from dav2_train.config import ConfigError, run_dir, section
from dav2_train.dist import DistContext
from dav2_train.shards import Sample, ShardWriter, sample_key, shard_name, write_manifest

FORMATS = ("shards", "images")


def render_frame(
    seed: int, index: int, style: str, width: int, height: int, max_depth_m: float
) -> Frame:
    """Frame ``index`` of the split with ``seed``: new scene, random camera, random view."""
    rng = np.random.default_rng([seed, index])
    scene = make_scene(int(rng.integers(2**31)), style)
    intrinsics = random_intrinsics(rng, width, height, style)
    pose = random_pose(scene, rng)
    return render(scene, intrinsics, pose, max_depth_m=max_depth_m, noise_seed=index)


def _render_shard(job: dict[str, Any]) -> str:
    out = Path(job["out"])
    frames = [
        render_frame(job["seed"], i, job["style"], job["width"], job["height"], job["max_depth_m"])
        for i in range(job["start"], job["stop"])
    ]
    if job["format"] == "images":
        for i, frame in zip(range(job["start"], job["stop"]), frames, strict=True):
            cv2.imwrite(str(out / "images" / f"{i:06d}.png"), frame.rgb[..., ::-1])
        (out / f".done-{job['shard']:05d}").touch()
    else:
        with ShardWriter(out / shard_name(job["shard"]), "depth_m") as writer:
            for i, frame in zip(range(job["start"], job["stop"]), frames, strict=True):
                meta = {"source": f"{out.name}/{i:06d}", "K": frame.K.tolist()}
                writer.write(Sample(sample_key(job["shard"], i), frame.rgb, frame.depth_m, meta))
    return f"{out.name}/{job['shard']}"


def _shard_done(out: Path, shard: int, fmt: str) -> bool:
    name = f".done-{shard:05d}" if fmt == "images" else shard_name(shard)
    return (out / name).exists()


def da2k_pairs(
    frame: Frame, rng: np.random.Generator, pairs: int = 8, min_ratio: float = 1.25
) -> list[dict]:
    """Point pairs with clearly different true depth (ratio ≥ ``min_ratio``), DA-2K style.

    Half the pairs have the closer point *higher* in the image, so the trivial
    "lower in the image is closer" prior scores about 50 % (DA-2K is curated to be
    hard in the same spirit).
    """
    rows, cols = np.nonzero(frame.valid)
    result: list[dict] = []
    for _ in range(2000):
        if len(result) >= pairs or rows.size < 2:
            break
        a, b = rng.integers(rows.size, size=2)
        da, db = frame.depth_m[rows[a], cols[a]], frame.depth_m[rows[b], cols[b]]
        if max(da, db) / min(da, db) < min_ratio or rows[a] == rows[b]:
            continue
        closer, farther = (a, b) if da < db else (b, a)
        want_closer_lower = len(result) % 2 == 0
        if (rows[closer] > rows[farther]) != want_closer_lower:
            continue
        result.append(
            {
                "point1": [int(rows[a]), int(cols[a])],
                "point2": [int(rows[b]), int(cols[b])],
                "closer_point": "point1" if da < db else "point2",
            }
        )
    return result


def write_da2k(
    out: Path, seed: int, count: int, style: str, width: int, height: int, max_depth_m: float
) -> None:
    """Images + ``annotations.json`` (image path relative to the folder → pairs)."""
    folder = out / "da2k"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    annotations = {}
    for i in range(count):
        frame = render_frame(seed, i, style, width, height, max_depth_m)
        name = f"images/{i:06d}.png"
        cv2.imwrite(str(folder / name), frame.rgb[..., ::-1])
        annotations[name] = da2k_pairs(frame, np.random.default_rng([seed, i, 7]))
    tmp = folder / "annotations.json.tmp"
    tmp.write_text(json.dumps(annotations, indent=1))
    os.replace(tmp, folder / "annotations.json")


def check_held_out(name: str, split: dict[str, Any]) -> None:
    """A held-out style renders only into test splits that say so (and never as images)."""
    held_out = bool(split.get("held_out", False))
    if split["style"] in HELD_OUT_STYLES and (not held_out or split.get("format") == "images"):
        raise ValueError(
            f"synth split {name!r}: style {split['style']!r} is held out from training "
            f"({HELD_OUT_STYLES}); render it only into a test split with `held_out: true` "
            "and the default shards format"
        )


def _frame_size(config: dict[str, Any], split: dict[str, Any]) -> tuple[int, int]:
    image = config.get("image", {})
    width, height = split.get("width", image.get("width")), split.get("height", image.get("height"))
    if width is None or height is None:
        raise ConfigError(
            f"{config.get('_path')}: synth needs the top-level `image:` size or the split's "
            "own width and height"
        )
    return int(width), int(height)


def run(config: dict[str, Any], name: str, ctx: DistContext) -> None:
    cfg = section(config, name)
    max_depth_m = float(config["max_depth_m"])
    shard_size = int(cfg.get("shard_size", 100))
    workers = int(cfg.get("workers", 1))
    jobs, made_by = [], {}
    for split_name, split in cfg["splits"].items():
        fmt = split.get("format", "shards")
        if fmt not in FORMATS:
            raise ValueError(
                f"synth split {split_name!r}: format must be one of {FORMATS}, got {fmt!r}"
            )
        check_held_out(split_name, split)
        width, height = _frame_size(config, split)
        out = run_dir(config) / "data" / split_name
        settings = {
            **split,
            "width": width,
            "height": height,
            "max_depth_m": max_depth_m,
            "shard_size": shard_size,
        }
        made_by[split_name] = fingerprint.make(settings, {})
        fingerprint.guard_folder(out, made_by[split_name], f"[{name}] split {split_name!r}", ctx)
        (out / "images" if fmt == "images" else out).mkdir(parents=True, exist_ok=True)
        count, seed = int(split["count"]), int(split["seed"])
        for shard, start in enumerate(range(0, count, shard_size)):
            if shard % ctx.world_size != ctx.rank or _shard_done(out, shard, fmt):
                continue
            jobs.append(
                dict(
                    out=str(out),
                    shard=shard,
                    start=start,
                    stop=min(count, start + shard_size),
                    seed=seed,
                    style=split["style"],
                    format=fmt,
                    width=width,
                    height=height,
                    max_depth_m=max_depth_m,
                )
            )
        if split.get("da2k") and ctx.is_main and not (out / "da2k" / "annotations.json").exists():
            write_da2k(out, seed, count, split["style"], width, height, max_depth_m)
    _run_jobs(jobs, workers, ctx)
    ctx.barrier()
    if ctx.is_main:
        for split_name, split in cfg["splits"].items():
            if split.get("format", "shards") != "shards":
                continue
            count = int(split["count"])
            width, height = _frame_size(config, split)
            provenance = {
                "source": "synth",
                "style": split["style"],
                "seed": int(split["seed"]),
                "count": count,
                "width": width,
                "height": height,
                "held_out": bool(split.get("held_out", False)),
            }
            write_manifest(
                run_dir(config) / "data" / split_name,
                "depth_m",
                [shard_name(i) for i in range(-(-count // shard_size))],
                fingerprint=made_by[split_name],
                provenance=provenance,
            )
    ctx.barrier()


def _run_jobs(jobs: list[dict], workers: int, ctx: DistContext) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=f"synth[rank {ctx.rank}]", unit="shard", disable=not jobs)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_render_shard, jobs):
                bar.update()
    else:
        for job in jobs:
            _render_shard(job)
            bar.update()
    bar.close()
