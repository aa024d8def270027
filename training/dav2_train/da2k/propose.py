"""``da2k propose``: images → segments → candidate pairs → expert votes → a proposal folder.

Per image: segments (SAM or Felzenszwalb), ``OVERSAMPLE`` × ``pairs_per_image``
candidate pairs, every expert's vote on each, then ``pairs_per_image`` of them
chosen evenly over near/far × upper/lower-closer. Unanimous pairs with every
margin above ``agree_margin`` are labelled; the rest wait for a person
(``da2k annotate``). The images are put under ``<out>/images/`` so the result is
self-contained like the official release: files from a folder are copied as they
are, frames from a rosbag2 are written as PNG.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from dav2_train.da2k.annotations import IMAGES_FOLDER, write_json_atomic
from dav2_train.da2k.experts import Expert, ExpertError, load_expert
from dav2_train.da2k.proposal import propose_pairs
from dav2_train.da2k.segments import make_segmenter
from dav2_train.da2k.session import (
    PROPOSAL_FORMAT,
    PROPOSAL_NAME,
    AnnotationSession,
    SessionError,
)
from dav2_train.da2k.voting import agreed_closer, cast_vote, select_balanced
from dav2_train.sources import open_image_source

OVERSAMPLE = 6  # candidates per kept pair: room to balance the labels
COPY_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class ProposeOptions:
    images: str
    out: Path
    experts: list[str]
    input_sizes: list[int] | None = None  # one for all experts or one each
    backend: str = "torch"
    device: str = "cpu"
    topic: str | None = None
    every: int = 1
    pairs_per_image: int = 8
    agree_margin: float = 0.1
    sam_checkpoint: str | None = None
    sam_model: str | None = None
    scene_type: str | None = None
    seed: int = 0


def load_experts(opts: ProposeOptions) -> list[Expert]:
    if len(opts.experts) < 2:
        raise ExpertError(f"--experts needs two or more checkpoints, got {len(opts.experts)}")
    sizes = opts.input_sizes or [None]
    if len(sizes) not in (1, len(opts.experts)):
        raise ExpertError(
            f"--input-size takes one value for all experts or one per expert "
            f"({len(opts.experts)}), got {len(sizes)}"
        )
    sizes = sizes * len(opts.experts) if len(sizes) == 1 else sizes
    experts: list[Expert] = []
    for checkpoint, size in zip(opts.experts, sizes, strict=True):
        # One file at two input sizes is read once (the engines are still separate).
        same = next((e.loaded for e in experts if e.checkpoint == checkpoint), None)
        experts.append(load_expert(checkpoint, size, opts.backend, opts.device, same))
    names = [e.name for e in experts]
    for index, expert in enumerate(experts):
        if names.count(expert.name) > 1:
            expert.name = f"{expert.name}#{index + 1}"
    return experts


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("._") or "image"


def image_destination(key: str, scene_type: str | None, is_file_copy: bool) -> str:
    """Where an image goes under ``images/``: its folder there is its scene type.

    Without ``scene_type`` the key's own folders are kept (an input laid out as
    ``indoor/…``, ``outdoor/…`` keeps those as scene types); with it the key is
    flattened into ``images/<scene_type>/``.
    """
    parts = [_safe(p) for p in PurePosixPath(key).parts if p not in ("/", ".", "..")] or ["image"]
    if not is_file_copy:
        parts[-1] += ".png"
    if scene_type:
        parts = [_safe(scene_type), "__".join(parts)]
    return PurePosixPath(IMAGES_FOLDER, *parts).as_posix()


def _store_image(
    out: Path, source_dir: Path | None, key: str, rgb: np.ndarray, scene_type: str | None
) -> str:
    original = source_dir / key if source_dir is not None else None
    copy = original is not None and original.is_file() and original.suffix.lower() in COPY_SUFFIXES
    relative = image_destination(key, scene_type, copy)
    destination = out / relative
    destination.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copyfile(original, destination)
    elif not cv2.imwrite(str(destination), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {destination}")
    return relative


def run_propose(opts: ProposeOptions) -> dict:
    """Write ``<out>/{proposal.json, annotations.json, images/}``; returns the counts."""
    out = Path(opts.out)
    if (out / PROPOSAL_NAME).exists():
        raise SessionError(
            f"{out} already holds a proposal ({PROPOSAL_NAME}); choose another --out, or "
            "delete that folder to start over"
        )
    if opts.pairs_per_image < 1:
        raise ValueError(f"--pairs-per-image must be at least 1, got {opts.pairs_per_image}")
    if not 0.0 <= opts.agree_margin < 1.0:
        raise ValueError(
            f"--agree-margin is a relative difference in [0, 1), got {opts.agree_margin}"
        )
    # Cheap checks first: the images, then the segmenter, then the experts (slow to load).
    # The source is lazy: reading its first frame is what finds an empty folder or a bad bag.
    source = open_image_source(opts.images, topic=opts.topic, every=opts.every)
    first = next(source, None)
    if first is None:
        raise ValueError(f"{opts.images}: no images selected (check --topic and --every)")
    segmenter = make_segmenter(opts.sam_checkpoint, opts.sam_model)
    experts = load_experts(opts)
    source_dir = Path(opts.images) if Path(opts.images).is_dir() else None
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, dict] = {}
    pairs: list[dict] = []
    started = time.perf_counter()
    for index, frame in enumerate(itertools.chain([first], source)):
        relative = _store_image(out, source_dir, frame.key, frame.rgb, opts.scene_type)
        if relative in images:
            raise ValueError(f"two images map to {relative} (keys {frame.key!r} …); rename one")
        height, width = frame.rgb.shape[:2]
        images[relative] = {"height": height, "width": width, "key": frame.key}
        if frame.stamp_ns is not None:
            images[relative]["stamp_ns"] = frame.stamp_ns
        labels = segmenter(frame.rgb)
        rng = np.random.default_rng([opts.seed, index])
        candidates = propose_pairs(labels, opts.pairs_per_image * OVERSAMPLE, rng)
        disparities = [(e.name, e.disparity(frame.rgb)) for e in experts]
        votes = [[cast_vote(d, pair, name) for name, d in disparities] for pair in candidates]
        kept = select_balanced(candidates, votes, opts.pairs_per_image)
        auto = 0
        for number, i in enumerate(kept):
            closer = agreed_closer(votes[i], opts.agree_margin)
            auto += closer is not None
            pairs.append(
                {
                    "id": f"{index:05d}-{number:02d}",
                    "image": relative,
                    "point1": list(candidates[i].point1),
                    "point2": list(candidates[i].point2),
                    "kind": candidates[i].kind,
                    "votes": [v.to_json() for v in votes[i]],
                    "auto": closer,
                }
            )
        segments = len(np.unique(labels[labels >= 0]))
        print(
            f"[{index + 1}] {relative}: {width}x{height}, {segments} segments, {len(kept)} pairs "
            f"({auto} auto, {len(kept) - auto} queued), {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    for expert in experts:
        expert.close()
    summary = {
        "images": len(images),
        "pairs": len(pairs),
        "auto": sum(p["auto"] is not None for p in pairs),
        "queued": sum(p["auto"] is None for p in pairs),
    }
    proposal = {
        "format": PROPOSAL_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": {"path": str(opts.images), "topic": opts.topic, "every": opts.every},
        "segmenter": "sam" if opts.sam_checkpoint else "felzenszwalb",
        "experts": [e.describe() for e in experts],
        "agree_margin": opts.agree_margin,
        "summary": summary,
        "images": images,
        "pairs": pairs,
    }
    write_json_atomic(out / PROPOSAL_NAME, proposal)
    session = AnnotationSession(out)
    session.save()
    session.close()
    return summary
