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
from dav2_train.shards import (
    MANIFEST,
    Sample,
    ShardWriter,
    read_split,
    sample_key,
    shard_name,
    write_manifest,
)

FORMATS = ("shards", "images")


def render_frame(
    seed: int,
    index: int,
    style: str,
    width: int,
    height: int,
    max_depth_m: float,
    focal_px: float | None = None,
) -> Frame:
    """Frame ``index`` of the split with ``seed``: new scene, random camera, random view.

    ``focal_px``: the same scene and view through a lens of that fx (pixels), the rest of
    the frame's camera kept (``Intrinsics.with_focal``).
    """
    rng = np.random.default_rng([seed, index])
    scene = make_scene(int(rng.integers(2**31)), style)
    intrinsics = random_intrinsics(rng, width, height, style)
    if focal_px is not None:
        intrinsics = intrinsics.with_focal(focal_px)
    pose = random_pose(scene, rng)
    return render(scene, intrinsics, pose, max_depth_m=max_depth_m, noise_seed=index)


def _render_shard(job: dict[str, Any]) -> str:
    out = Path(job["out"])
    frames = [
        render_frame(
            job["seed"],
            i,
            job["style"],
            job["width"],
            job["height"],
            job["max_depth_m"],
            job.get("focal_px"),
        )
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
        split = {**split, "width": width, "height": height}
        out = run_dir(config) / "data" / split_name
        made_by[split_name] = split_fingerprint(split, max_depth_m, shard_size)
        fingerprint.guard_folder(out, made_by[split_name], f"[{name}] split {split_name!r}", ctx)
        jobs += split_jobs(out, split, max_depth_m, shard_size, ctx)
        if split.get("da2k") and ctx.is_main and not (out / "da2k" / "annotations.json").exists():
            count, seed = int(split["count"]), int(split["seed"])
            write_da2k(out, seed, count, split["style"], width, height, max_depth_m)
    _run_jobs(jobs, workers, ctx)
    ctx.barrier()
    if ctx.is_main:
        for split_name, split in cfg["splits"].items():
            if split.get("format", "shards") == "shards":
                width, height = _frame_size(config, split)
                split = {**split, "width": width, "height": height}
                out = run_dir(config) / "data" / split_name
                write_split_manifest(out, split, shard_size, made_by[split_name])
    ctx.barrier()


def split_fingerprint(split: dict[str, Any], max_depth_m: float, shard_size: int) -> dict:
    """What a split's frames depend on (its settings, with its frame size)."""
    return fingerprint.make({**split, "max_depth_m": max_depth_m, "shard_size": shard_size}, {})


def split_jobs(
    out: Path, split: dict[str, Any], max_depth_m: float, shard_size: int, ctx: DistContext
) -> list[dict[str, Any]]:
    """The render jobs (one per shard) of a split this rank still has to write."""
    fmt = split.get("format", "shards")
    (out / "images" if fmt == "images" else out).mkdir(parents=True, exist_ok=True)
    count = int(split["count"])
    jobs = []
    for shard, start in enumerate(range(0, count, shard_size)):
        if shard % ctx.world_size != ctx.rank or _shard_done(out, shard, fmt):
            continue
        job = dict(
            out=str(out),
            shard=shard,
            start=start,
            stop=min(count, start + shard_size),
            seed=int(split["seed"]),
            style=split["style"],
            format=fmt,
            width=int(split["width"]),
            height=int(split["height"]),
            max_depth_m=max_depth_m,
        )
        if split.get("focal_px") is not None:
            job["focal_px"] = float(split["focal_px"])
        jobs.append(job)
    return jobs


def write_split_manifest(
    out: Path, split: dict[str, Any], shard_size: int, made_by: dict, **provenance: Any
) -> None:
    """The manifest of a rendered shards split; its provenance says what it is."""
    count = int(split["count"])
    record = {
        "source": "synth",
        "style": split["style"],
        "seed": int(split["seed"]),
        "count": count,
        "width": int(split["width"]),
        "height": int(split["height"]),
        "held_out": bool(split.get("held_out", False)),
        **provenance,
    }
    names = [shard_name(i) for i in range(-(-count // shard_size))]
    write_manifest(out, "depth_m", names, fingerprint=made_by, provenance=record)


def render_at_focal(
    split_path: Path,
    focal_px: float,
    out: Path,
    max_depth_m: float,
    workers: int,
    ctx: DistContext,
) -> Path:
    """The frames of a synth split (its manifest says how they were made) rendered again
    through a lens of focal length ``focal_px`` (fx, pixels): same scenes and views,
    into ``out``; kept when already rendered with the same settings."""
    split = read_split(split_path)
    made = split.provenance
    if made.get("source") != "synth":
        raise ValueError(
            f"{split_path}: only splits rendered by dav2-train synth can be rendered at "
            f"another focal length (its provenance says source {made.get('source')!r})"
        )
    settings = {k: made[k] for k in ("style", "seed", "count", "width", "height", "held_out")}
    settings["focal_px"] = float(focal_px)
    shard_size = split.shards[0].samples
    made_by = split_fingerprint(settings, max_depth_m, shard_size)
    fingerprint.guard_folder(out, made_by, f"[focal {focal_px:g} px] {out.name}", ctx)
    if not (out / MANIFEST).is_file():
        _run_jobs(split_jobs(out, settings, max_depth_m, shard_size, ctx), workers, ctx)
        ctx.barrier()
        if ctx.is_main:
            write_split_manifest(
                out, settings, shard_size, made_by, focal_px=float(focal_px),
                rendered_from=split_path.name,
            )  # fmt: skip
        ctx.barrier()
    return out


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
