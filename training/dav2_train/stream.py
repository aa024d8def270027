"""Streaming training data: WebDataset shards → augmented crops, resumable mid-epoch.

``ShardStream`` is an endless ``IterableDataset`` over the shards of one or more
splits. Each epoch it permutes the shards (seed, epoch), splits them per rank and
then per DataLoader worker the way WebDataset's ``split_by_node`` /
``split_by_worker`` do (``order[rank::world][worker::workers]``), and walks each of its
shards in a seeded permutation.

A worker reads one sample at a time from its current shard (``ShardReader``: the tar's
member index, then random access), so memory does not grow with the split or the shard
size. Its state is two integers per worker (epoch, samples yielded in the epoch), saved
by torchdata's ``StatefulDataLoader`` with each checkpoint; a resumed loader jumps to
that position (opening only the current shard) and continues the same order.
Every random draw of a sample comes from a generator seeded with (seed, epoch,
shard, index), so augmentations repeat exactly too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset
from torchdata.stateful_dataloader import StatefulDataLoader
from webdataset.utils import pytorch_worker_info

from dav2_ros.model.focal import network_focal_px
from dav2_ros.model.transforms import PATCH, prepare_input
from dav2_train.augment import StrongAugment, color_jitter, crop_origin, gaussian_blur
from dav2_train.shards import (
    Sample,
    ShardInfo,
    ShardReader,
    Split,
    decode_sample,
    meta_focal_px,
)

# torchdata 0.11 calls an API torch 2.13 deprecated; harmless.
warnings.filterwarnings("ignore", message=".*set_vital.*is deprecated")


@dataclass(frozen=True)
class SampleTransform:
    """One sample → the network's view: the node's resize, a random crop, flips, perturbations.

    The image goes through ``dav2_ros.model.transforms.prepare_input`` (shorter side →
    ``input_size``, INTER_CUBIC, ImageNet normalisation), exactly as the node prepares a
    frame; the label is resized to the same grid (disparity bilinear; metric depth by
    nearest neighbour, so no depth is invented at edges) and cropped with it.

    ``resize_range`` (lo, hi): the shorter side is drawn instead among the multiples of
    14 in [lo, hi] × ``input_size``, so the sample's focal length at the network input
    varies (a crop keeps it). ``canonical_focal_px`` (metric depth): the label becomes
    the canonical camera's, depth × f_canonical / f_sample, with f_sample from the
    sample's K (``dav2_ros.model.focal``) at the size it was resized to.
    """

    kind: str  # "disparity" or "depth_m"
    input_size: int
    crop_size: int
    hflip: bool = True
    strong: StrongAugment | None = None
    resize_range: tuple[float, float] | None = None
    canonical_focal_px: float | None = None

    def __post_init__(self) -> None:
        if self.canonical_focal_px is not None and self.kind != "depth_m":
            raise ValueError(
                f"canonical_focal_px rescales metric depth labels; these are {self.kind}"
            )
        if self.resize_range is not None and min(self.network_sizes()) < self.crop_size:
            raise ValueError(
                f"resize_range {list(self.resize_range)} x input_size {self.input_size} "
                f"goes below the {self.crop_size} px crop; raise its lower end"
            )

    def network_sizes(self) -> list[int]:
        """The shorter sides a sample may be resized to (multiples of 14)."""
        if self.resize_range is None:
            return [self.input_size]
        low, high = (self.input_size * bound for bound in self.resize_range)
        sizes = list(range(PATCH * math.ceil(low / PATCH), int(high) + 1, PATCH))
        if not sizes:
            raise ValueError(
                f"resize_range {list(self.resize_range)} x input_size {self.input_size} holds "
                f"no multiple of {PATCH}; widen it"
            )
        return sizes

    def __call__(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        rgb = sample.rgb
        if self.strong is not None:
            rgb = color_jitter(rgb, rng, self.strong)
        size = self.input_size
        if self.resize_range is not None:
            size = int(rng.choice(self.network_sizes()))
        image = prepare_input(rgb, size)[0]
        net_h, net_w = image.shape[1:]
        interpolation = cv2.INTER_LINEAR if self.kind == "disparity" else cv2.INTER_NEAREST
        label = cv2.resize(sample.label, (net_w, net_h), interpolation=interpolation)
        if self.canonical_focal_px is not None:
            label *= self.canonical_focal_px / sample_focal_px(sample, size)
        top, left = crop_origin(net_h, net_w, self.crop_size, rng)
        rows, cols = slice(top, top + self.crop_size), slice(left, left + self.crop_size)
        image, label = image[:, rows, cols], label[rows, cols]
        if self.hflip and rng.random() < 0.5:
            image, label = image[:, :, ::-1], label[:, ::-1]
        if self.strong is not None and rng.random() < self.strong.blur_p:
            image = gaussian_blur(np.ascontiguousarray(image), rng.uniform(*self.strong.blur_sigma))
        mask = np.isfinite(label) & (label > 0 if self.kind == "depth_m" else True)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "target": torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)),
            "key": sample.key,
        }


def sample_focal_px(sample: Sample, network_size: int) -> float:
    """The sample's focal length in pixels of the network input (shorter side
    ``network_size``), from the K of its ``meta.json``."""
    focal_px = meta_focal_px(sample.meta)
    if focal_px is None:
        raise ValueError(
            f"{sample.key}: no K in its meta.json, and a canonical-camera fine-tune "
            "(canonical_focal_px) needs every sample's intrinsics; dav2-train synth writes "
            "K, other splits must be written with it (or train without canonical_focal_px)"
        )
    return network_focal_px(*focal_px, sample.rgb.shape[:2], network_size)


def consumer_plan(
    shards: list[ShardInfo], seed: int, epoch: int, rank: int, world: int, worker: int, workers: int
) -> list[tuple[int, list[int]]]:
    """(shard index, sample indices in reading order) of one DataLoader worker of one rank.

    With at least one shard per worker of every rank, whole shards are dealt out as
    WebDataset's ``split_by_node`` then ``split_by_worker`` do: ``order[rank::world]
    [worker::workers]``. With fewer shards (tiny sets), samples are dealt out instead,
    so nobody starves.
    """
    order = [int(s) for s in np.random.default_rng([seed, epoch]).permutation(len(shards))]

    def within(shard: int) -> list[int]:
        count = shards[shard].samples
        return np.random.default_rng([seed, epoch, shard]).permutation(count).tolist()

    consumers = world * workers
    if len(shards) >= consumers:
        return [(s, within(s)) for s in order[rank::world][worker::workers]]
    consumer = rank * workers + worker
    plan = []
    position = 0
    for shard in order:
        indices = within(shard)
        mine = [i for n, i in enumerate(indices) if (position + n) % consumers == consumer]
        position += len(indices)
        if mine:
            plan.append((shard, mine))
    return plan


class ShardStream(IterableDataset):
    """Endless, seeded, resumable stream of transformed samples from WebDataset shards."""

    def __init__(self, splits: list[Split], transform: SampleTransform, seed: int) -> None:
        kinds = {s.kind for s in splits}
        if len(kinds) != 1:
            raise ValueError(
                f"splits {[s.directory.name for s in splits]} mix label kinds {sorted(kinds)}; "
                "train on disparity or on metric depth, not both"
            )
        self.shards = [shard for split in splits for shard in split.shards]
        self.kind = kinds.pop()
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.position = 0  # samples this consumer yielded in ``epoch``

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world, worker, workers = pytorch_worker_info()  # WebDataset's view of both
        total = sum(s.samples for s in self.shards)
        if total < world * workers:
            raise ValueError(
                f"{total} samples cannot feed {world} ranks x {workers} DataLoader workers; "
                "add data or lower `workers`"
            )
        while True:
            skip = self.position
            plan = consumer_plan(self.shards, self.seed, self.epoch, rank, world, worker, workers)
            for shard_index, indices in plan:
                if skip >= len(indices):
                    skip -= len(indices)  # resuming: this shard was consumed before the stop
                    continue
                shard = self.shards[shard_index]
                with ShardReader(shard.path) as reader:
                    if len(reader) != shard.samples:
                        raise ValueError(
                            f"{shard.path} holds {len(reader)} samples, its manifest says "
                            f"{shard.samples}; the split changed: rerun the step that wrote it"
                        )
                    for index in indices[skip:]:
                        sample = decode_sample(reader.raw(index), self.kind)
                        sample.key = f"{shard.path.parent.name}/{sample.key}"
                        rng = np.random.default_rng([self.seed, self.epoch, shard_index, index])
                        item = self.transform(sample, rng)
                        self.position += 1  # before the yield: the saved state counts it
                        yield item
                skip = 0
            self.epoch += 1
            self.position = 0


def make_loader(stream: ShardStream, batch_size: int, workers: int) -> StatefulDataLoader:
    """A ``StatefulDataLoader`` whose ``state_dict`` is the stream position of every worker."""
    return StatefulDataLoader(
        stream,
        batch_size=batch_size,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        drop_last=True,
        # Workers start from a clean server process, not a fork of this one: forking a
        # process with threads (OpenVINO's TBB pool, CUDA, DDS) is unsafe and crashed it.
        multiprocessing_context="forkserver" if workers else None,
    )
