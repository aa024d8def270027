"""The on-disk format of every training split: WebDataset tar shards plus a manifest.

A split directory ``<run_dir>/data/<split>/`` holds ``shard-NNNNN.tar`` files in the
WebDataset layout (one sample = the tar members sharing a key) and ``manifest.json``
(shards, their sample counts, the label kind, the fingerprint of what made them).

Per sample (key ``sNNNNNiNNNNN``; no dots, as WebDataset splits keys at the first dot):
- ``rgb.png``: the image, lossless, at its original size (sizes may differ);
- ``disparity.npy`` (pseudo labels, relative inverse depth) or ``depth_m.npy``
  (metres, NaN invalid): float16 at the image's size;
- ``meta.json``: where it came from (``source``: the source's key, ``stamp_ns``), and
  ``K`` (3×3 intrinsics) where known.

Readers never load a split: ``iter_shard`` streams one shard, and the manifest
gives the counts a sampler needs without opening the tars.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from webdataset.tariterators import base_plus_ext, tarfile_samples
from webdataset.writer import TarWriter

LABEL_KINDS = ("disparity", "depth_m")
MANIFEST = "manifest.json"


@dataclass
class Sample:
    """One decoded training sample."""

    key: str
    rgb: np.ndarray  # HxWx3 uint8
    label: np.ndarray  # HxW float32: disparity, or metres with NaN invalid
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ShardInfo:
    path: Path
    samples: int


@dataclass(frozen=True)
class Split:
    """What ``manifest.json`` says about a split directory."""

    directory: Path
    kind: str
    shards: tuple[ShardInfo, ...]
    fingerprint: dict
    provenance: dict

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.tar"


def sample_key(shard: int, index: int) -> str:
    return f"s{shard:05d}i{index:05d}"


def encode_sample(sample: Sample, kind: str) -> dict[str, Any]:
    """``Sample`` → the WebDataset member dict (bytes per extension)."""
    if kind not in LABEL_KINDS:
        raise ValueError(f"label kind must be one of {LABEL_KINDS}, got {kind!r}")
    if sample.rgb.ndim != 3 or sample.rgb.shape[2] != 3 or sample.rgb.dtype != np.uint8:
        raise ValueError(f"{sample.key}: rgb must be HxWx3 uint8, got {sample.rgb.shape}")
    if sample.label.shape != sample.rgb.shape[:2]:
        raise ValueError(
            f"{sample.key}: label is {sample.label.shape}, the image {sample.rgb.shape[:2]}; "
            "labels are stored at the image's size"
        )
    ok, png = cv2.imencode(".png", cv2.cvtColor(sample.rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{sample.key}: PNG encoding failed")
    stored = sample.label.astype(np.float16)
    overflow = np.isfinite(sample.label) & ~np.isfinite(stored)
    if overflow.any():
        raise ValueError(
            f"{sample.key}: label values up to {float(np.abs(sample.label[overflow]).max()):.4g} "
            "overflow float16 (largest 65504), the shards' label type; scale relative labels "
            "first (pseudo_label.as_relative_label divides them by their maximum)"
        )
    label = io.BytesIO()
    np.save(label, stored, allow_pickle=False)
    return {
        "__key__": sample.key,
        "rgb.png": png.tobytes(),
        f"{kind}.npy": label.getvalue(),
        "meta.json": json.dumps(sample.meta).encode(),
    }


def decode_sample(raw: dict[str, Any], kind: str) -> Sample:
    """A WebDataset member dict (as ``tarfile_samples`` yields it) → ``Sample``."""
    where = f"{raw.get('__url__')}:{raw.get('__key__')}"
    try:
        bgr = cv2.imdecode(np.frombuffer(raw["rgb.png"], np.uint8), cv2.IMREAD_COLOR)
        label = np.load(io.BytesIO(raw[f"{kind}.npy"]), allow_pickle=False)
    except KeyError as missing:
        raise ValueError(f"{where}: sample lacks {missing} (a {kind} shard expected)") from None
    if bgr is None:
        raise ValueError(f"{where}: rgb.png cannot be decoded")
    meta = json.loads(raw["meta.json"]) if "meta.json" in raw else {}
    return Sample(
        raw["__key__"], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), label.astype(np.float32), meta
    )


class ShardWriter:
    """Writes one shard: to ``<name>.tmp`` first, renamed when closed (a crash leaves no shard)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self.count = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        self._tar = TarWriter(self._file, encoder=False, mtime=0)

    def write(self, sample: Sample) -> None:
        self._tar.write(encode_sample(sample, self.kind))
        self.count += 1

    def close(self) -> None:
        self._tar.close()
        self._file.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._tar.close()
            self._file.close()
            self._tmp.unlink(missing_ok=True)


def iter_shard(path: Path, kind: str) -> Iterator[Sample]:
    """Stream the samples of one shard in stored order."""
    for raw in tarfile_samples([{"url": str(path)}]):
        yield decode_sample(raw, kind)


class ShardReader:
    """Random access to the samples of one shard: an index of tar members, then one
    sample's bytes at a time (a reader never holds a shard, let alone a split)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tar = tarfile.open(self.path, "r:")  # noqa: SIM115 - closed in close()
        self._members: dict[str, list[tarfile.TarInfo]] = {}
        for member in self._tar.getmembers():
            key, _ = base_plus_ext(member.name)
            if key is not None and member.isreg():
                self._members.setdefault(key, []).append(member)
        self.keys = list(self._members)  # stored order

    def __len__(self) -> int:
        return len(self.keys)

    def raw(self, index: int) -> dict[str, Any]:
        """Sample ``index`` (stored order) as WebDataset's member dict of bytes."""
        key = self.keys[index]
        sample: dict[str, Any] = {"__key__": key, "__url__": str(self.path)}
        for member in self._members[key]:
            _, extension = base_plus_ext(member.name)
            sample[extension] = self._tar.extractfile(member).read()
        return sample

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def meta_focal_px(meta: dict) -> tuple[float, float] | None:
    """(fx, fy) in pixels of the stored image, from the K of a sample's ``meta.json``;
    None when the sample has no K."""
    if meta.get("K") is None:
        return None
    k = np.asarray(meta["K"], dtype=np.float64).reshape(3, 3)
    return float(k[0, 0]), float(k[1, 1])


def count_samples(path: Path) -> int:
    """Samples in a shard, from the tar headers only."""
    with tarfile.open(path) as tar:
        return len({name.split(".", 1)[0] for name in tar.getnames()})


def write_manifest(
    directory: Path,
    kind: str,
    names: list[str] | None = None,
    fingerprint: dict | None = None,
    provenance: dict | None = None,
) -> Split:
    """Index ``names`` (default: every ``shard-*.tar``) of ``directory`` into the manifest."""
    directory = Path(directory)
    paths = (
        [directory / n for n in names]
        if names is not None
        else sorted(directory.glob("shard-*.tar"))
    )
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: shards {missing[:3]} are missing; rerun the step")
    shards = [{"name": p.name, "samples": count_samples(p)} for p in paths]
    document = {
        "format": "dav2_train webdataset shards",
        "format_version": 1,
        "kind": kind,
        "samples": sum(s["samples"] for s in shards),
        "shards": shards,
        "fingerprint": fingerprint or {},
        "provenance": provenance or {},
    }
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(document, indent=1))
    os.replace(tmp, directory / MANIFEST)
    return read_split(directory)


def read_split(directory: Path) -> Split:
    """The split described by ``<directory>/manifest.json`` (raises with a hint if absent)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        hint = (
            " (it holds .npz shards of an older dav2-train: rerun the step that made it)"
            if any(directory.glob("shard-*.npz"))
            else ""
        )
        raise FileNotFoundError(
            f"{path} does not exist{hint}; run the step that writes this split "
            "(`dav2-train synth`, `pseudo-label` or `rgbd`) first"
        )
    document = json.loads(path.read_text())
    kind = document.get("kind")
    if kind not in LABEL_KINDS:
        raise ValueError(f"{path}: kind {kind!r} is not one of {LABEL_KINDS}")
    shards = tuple(ShardInfo(directory / s["name"], int(s["samples"])) for s in document["shards"])
    if not shards:
        raise ValueError(f"{path}: the split has no shards")
    return Split(
        directory, kind, shards, document.get("fingerprint", {}), document.get("provenance", {})
    )


def refuse_held_out(split: Split) -> None:
    """Training reads no held-out test split (``synth`` marks them in the provenance)."""
    if split.provenance.get("held_out"):
        raise ValueError(
            f"{split.directory} is a held-out test split (style "
            f"{split.provenance.get('style')!r}, see its manifest.json); training never reads "
            "it: point the section's data at a training split"
        )


def iter_split(split: Split, part: int = 0, parts: int = 1) -> Iterator[tuple[int, Sample]]:
    """(index, sample) of the whole split in stored order; ``part`` of ``parts`` keeps
    every ``parts``-th sample (how ranks share evaluation)."""
    index = 0
    for shard in split.shards:
        if (part - index) % parts >= shard.samples:  # none of this shard's samples is ours
            index += shard.samples
            continue
        for sample in iter_shard(shard.path, split.kind):
            if index % parts == part:
                yield index, sample
            index += 1


class RankShards:
    """Writes the shards one rank owns while a numbered stream goes by.

    Frame ``index`` belongs to shard ``index // shard_size``, and shard g to rank
    ``g % world``. A shard already on disk (an earlier, killed run with the same
    fingerprint) is skipped, so callers decode only frames that still need writing.
    """

    def __init__(self, directory: Path, kind: str, shard_size: int, rank: int, world: int) -> None:
        self.directory, self.kind, self.shard_size = Path(directory), kind, shard_size
        self.rank, self.world = rank, world
        self.writer: ShardWriter | None = None
        self.shard = -1

    def wants(self, index: int) -> bool:
        shard = index // self.shard_size
        if shard % self.world != self.rank:
            return False
        return shard == self.shard or not (self.directory / shard_name(shard)).exists()

    def writer_for(
        self, index: int, before_switch: Callable[[], None] | None = None
    ) -> ShardWriter:
        """The open writer of ``index``'s shard; ``before_switch`` runs before a shard closes."""
        shard = index // self.shard_size
        if shard != self.shard:
            if before_switch is not None:
                before_switch()
            self.close()
            self.writer, self.shard = (
                ShardWriter(self.directory / shard_name(shard), self.kind),
                shard,
            )
        assert self.writer is not None
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def names(self, frames: int) -> list[str]:
        """Every shard name of a stream of ``frames`` frames (all ranks together)."""
        return [shard_name(g) for g in range(-(-frames // self.shard_size))]
