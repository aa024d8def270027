"""``dav2-train pseudo-label``: a teacher labels unlabelled images from folders and rosbags.

``teacher`` is a train section or any checkpoint ``load_model`` reads (an official
``depth_anything_v2_vitl.pth``, a metric Hypersim/VKITTI file, a Hugging Face
directory, the project's own format). ``images`` is one source or a list: a synth
split's name, an image folder, or a rosbag2 (directory, ``.db3``, ``.mcap``), each
optionally ``{path, topic, every}``; ``topic`` / ``every`` at the section level are
the defaults.

The teacher runs as the node runs it (``prepare_input``: shorter side → input
size, INTER_CUBIC), in batches of frames with the same network shape, under
autocast on CUDA. Labels are relative inverse depth: a metric teacher's metres
become 1/d (the log says so). Frames are numbered over all sources; shard g holds
frames [g·S, (g+1)·S) and rank g mod world writes it, decoding only its own frames.
Output: ``<run_dir>/data/<out>/`` WebDataset shards (``dav2_train.shards``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dav2_ros.model.transforms import model_input_size, prepare_input, resize_output
from dav2_train import fingerprint
from dav2_train.config import ConfigError, section, split_dir
from dav2_train.dist import DistContext
from dav2_train.models import load_reference, reference_input
from dav2_train.shards import MANIFEST, RankShards, Sample, sample_key, write_manifest
from dav2_train.sources import SourceImage, SourceRecord, iter_records, source_listing
from dav2_train.train import select_autocast

# Metric teachers' metres below this are clamped before inversion (the Sigmoid head
# never reaches 0, but fp16/bf16 outputs can round to it).
MIN_DEPTH_M = 1e-3


def source_specs(config: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """``images`` → [{path, topic, every}] with the section's defaults filled in."""
    entries = cfg.get("images")
    if not entries:
        raise ConfigError("pseudo_label: `images:` (a folder, a rosbag2, or a list) is missing")
    specs = []
    for entry in entries if isinstance(entries, list) else [entries]:
        spec = dict(entry) if isinstance(entry, dict) else {"path": entry}
        unknown = set(spec) - {"path", "topic", "every"}
        if unknown or "path" not in spec:
            raise ConfigError(f"pseudo_label.images entry {entry!r}: keys are path, topic, every")
        synth_images = split_dir(config, str(spec["path"])) / "images"
        path = synth_images if synth_images.is_dir() else Path(str(spec["path"])).expanduser()
        specs.append(
            {
                "path": str(path),
                "topic": spec.get("topic", cfg.get("topic")),
                "every": int(spec.get("every", cfg.get("every", 1))),
            }
        )
    return specs


def numbered_records(specs: list[dict[str, Any]]) -> Iterator[tuple[int, SourceRecord, str]]:
    """(global frame index, lazy frame, its source path) over every source in order."""
    index = 0
    for spec in specs:
        for record in iter_records(spec["path"], spec["topic"], spec["every"]):
            yield index, record, spec["path"]
            index += 1


@torch.no_grad()
def predict_batch(
    model: torch.nn.Module,
    rgbs: list[np.ndarray],
    input_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
) -> list[np.ndarray]:
    """Frames of one network shape → the model's output at each frame's own size."""
    batch = torch.from_numpy(np.concatenate([prepare_input(rgb, input_size) for rgb in rgbs]))
    batch = batch.to(device)
    if autocast_dtype is None:
        out = model(batch)
    else:
        with torch.autocast(device.type, dtype=autocast_dtype):
            out = model(batch)
    out = out.float().cpu().numpy()
    return [resize_output(o, rgb.shape[0], rgb.shape[1]) for o, rgb in zip(out, rgbs, strict=True)]


def as_relative_label(prediction: np.ndarray, depth_type: str) -> np.ndarray:
    """Relative inverse depth: metric metres inverted (near = large), a relative output
    divided by its maximum.

    A relative output's scale means nothing (the loss is scale- and shift-invariant) and
    drifts without bound while a teacher trains: one continued for 2,000 steps on
    this project's CPU run gave maxima above 65,504, float16's largest value, so 60 % of
    its labels were stored as inf. Scaled to a maximum of 1 they keep float16's full
    relative precision.
    """
    if depth_type == "metric":
        return 1.0 / np.maximum(prediction, MIN_DEPTH_M)
    peak = float(prediction.max()) if prediction.size else 0.0
    return prediction / peak if peak > 0 else prediction


class _BatchedLabels:
    """Frames of one shard, labelled in batches of equal network shape, written in order."""

    def __init__(self, shards: RankShards, teacher: _Teacher) -> None:
        self.shards, self.teacher = shards, teacher
        self.pending: list[tuple[int, SourceImage, str]] = []

    def add(self, index: int, image: SourceImage, source: str) -> None:
        shape = model_input_size(*image.rgb.shape[:2], self.teacher.input_size)
        if self.pending and (
            len(self.pending) >= self.teacher.batch_size
            or index // self.shards.shard_size != self.pending[0][0] // self.shards.shard_size
            or model_input_size(*self.pending[0][1].rgb.shape[:2], self.teacher.input_size) != shape
        ):
            self.flush()
        self.pending.append((index, image, source))

    def flush(self) -> None:
        if not self.pending:
            return
        labels = self.teacher.label([image.rgb for _, image, _ in self.pending])
        for (index, image, source), label in zip(self.pending, labels, strict=True):
            meta = {"source": image.key, "source_path": source, "stamp_ns": image.stamp_ns}
            writer = self.shards.writer_for(index)
            writer.write(Sample(sample_key(self.shards.shard, index), image.rgb, label, meta))
        self.pending = []

    def close(self) -> None:
        self.flush()
        self.shards.close()


@dataclass
class _Teacher:
    model: torch.nn.Module
    depth_type: str
    input_size: int
    batch_size: int
    device: torch.device
    autocast_dtype: torch.dtype | None

    def label(self, rgbs: list[np.ndarray]) -> list[np.ndarray]:
        predictions = predict_batch(
            self.model, rgbs, self.input_size, self.device, self.autocast_dtype
        )
        return [as_relative_label(p, self.depth_type).astype(np.float32) for p in predictions]


def run(config: dict[str, Any], name: str, ctx: DistContext) -> Path:
    cfg = section(config, name)
    if "out" not in cfg or "teacher" not in cfg:
        raise ConfigError(f"{name}: needs `teacher:` and `out:`")
    out = split_dir(config, cfg["out"])
    shard_size = int(cfg.get("shard_size", 100))
    precision = str(cfg.get("precision", "auto"))
    specs = source_specs(config, cfg)
    made_by = fingerprint.make(
        {
            "input_size": cfg.get("input_size"),  # None: the teacher's own (an input below)
            "shard_size": shard_size,
            "precision": precision,
            "sources": [{"topic": s["topic"], "every": s["every"]} for s in specs],
        },
        {
            "teacher": reference_input(config, cfg["teacher"], f"{name}.teacher"),
            "sources": [source_listing(Path(s["path"])) for s in specs],
        },
    )
    kept = fingerprint.guard_folder(out, made_by, f"[{name}]", ctx)
    if kept and (out / MANIFEST).is_file():  # decided before loading a (large) teacher
        if ctx.is_main:
            print(f"[{name}] already labelled with the same teacher and sources: {out}")
        return out
    teacher = load_reference(config, cfg["teacher"], f"{name}.teacher")
    meta = teacher.loaded.meta
    input_size = int(cfg.get("input_size") or meta.input_size)
    if ctx.is_main:
        record = teacher.record
        where = record.get("name") or record.get("path") or f"section {record.get('section')}"
        what = f"{meta.encoder} {meta.depth_type} ({where})"
        print(f"[{name}] teacher: {what}, input size {input_size}", flush=True)
        if meta.depth_type == "metric":
            print(
                f"[{name}] the teacher is metric (0-{meta.max_depth:g} m): its depth d is "
                f"stored as the relative label 1/d (inverse depth, near = large; d clamped "
                f"to >= {MIN_DEPTH_M} m)",
                flush=True,
            )
    labeller = _Teacher(
        teacher.model.to(ctx.device).eval(),
        meta.depth_type,
        input_size,
        int(cfg.get("batch_size", 8)),
        ctx.device,
        select_autocast(precision, ctx.device),
    )
    shards = RankShards(out, "disparity", shard_size, ctx.rank, ctx.world_size)
    batches = _BatchedLabels(shards, labeller)
    frames = 0
    per_source = {spec["path"]: 0 for spec in specs}
    for index, record, source in numbered_records(specs):
        frames = index + 1
        per_source[source] += 1
        if shards.wants(index):
            batches.add(index, record.decode(), source)
    batches.close()
    if frames == 0:  # every rank read the same sources: all stop here together
        raise ValueError(f"{name}: the sources gave no frames: {specs}")
    ctx.barrier()
    if ctx.is_main:
        names = shards.names(frames)
        provenance = {
            "source": "pseudo-label",
            "teacher": teacher.record,
            "sources": specs,
            "frames": frames,
            "frames_per_source": per_source,
            "input_size": input_size,
            "label": "inverse depth from a metric teacher (1/d)"
            if meta.depth_type == "metric"
            else "relative disparity (scaled to a maximum of 1 per frame)",
        }
        write_manifest(out, "disparity", names, fingerprint=made_by, provenance=provenance)
        counts = ", ".join(f"{Path(p).name}: {n}" for p, n in per_source.items())
        print(f"[{name}] {frames} frames ({counts}) labelled into {len(names)} shards in {out}")
    ctx.barrier()
    return out
