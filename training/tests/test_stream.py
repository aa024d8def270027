"""The streaming dataset: WebDataset shards, per-rank/per-worker splits, exact resume."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from dav2_train.shards import (
    Sample,
    ShardWriter,
    iter_split,
    read_split,
    sample_key,
    shard_name,
    write_manifest,
)
from dav2_train.stream import SampleTransform, ShardStream, consumer_plan, make_loader

SIZES = ((42, 56), (56, 42), (28, 70))  # mixed image sizes within and across shards


def _write_split(directory: Path, shards: int, per_shard: int) -> None:
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for shard in range(shards):
        with ShardWriter(directory / shard_name(shard), "disparity") as writer:
            for i in range(per_shard):
                height, width = SIZES[(shard + i) % len(SIZES)]
                rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                label = rng.random((height, width)).astype(np.float32) + 0.1
                writer.write(Sample(sample_key(shard, i), rgb, label, {"source": f"{shard}/{i}"}))
    write_manifest(directory, "disparity")


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stream") / "pseudo"
    _write_split(directory, shards=5, per_shard=6)
    return directory


def _stream(split_dir: Path, seed: int = 0) -> ShardStream:
    transform = SampleTransform("disparity", input_size=28, crop_size=28)
    return ShardStream([read_split(split_dir)], transform, seed)


def test_shards_store_fp16_labels_and_mixed_sizes(split_dir: Path) -> None:
    with tarfile.open(split_dir / shard_name(0)) as tar:
        names = tar.getnames()
        label = np.load(io.BytesIO(tar.extractfile(f"{sample_key(0, 0)}.disparity.npy").read()))
    assert {n.split(".", 1)[1] for n in names} == {"rgb.png", "disparity.npy", "meta.json"}
    assert label.dtype == np.float16
    split = read_split(split_dir)
    assert split.samples == 30 and split.kind == "disparity"
    shapes = {sample.rgb.shape[:2] for _, sample in iter_split(split)}
    assert shapes == set(SIZES)


def test_every_sample_is_read_once_per_epoch_over_ranks_and_workers(split_dir: Path) -> None:
    shards = list(read_split(split_dir).shards)
    # (world, workers); 4 x 2 > 5 shards: samples are dealt out instead of shards
    for world, workers in ((1, 1), (2, 1), (2, 2), (4, 2)):
        seen = [
            (shard, index)
            for rank in range(world)
            for worker in range(workers)
            for shard, indices in consumer_plan(shards, 3, 0, rank, world, worker, workers)
            for index in indices
        ]
        assert sorted(seen) == [(s, i) for s in range(5) for i in range(6)], (world, workers)
    # whole shards as WebDataset deals them: order[rank::world][worker::workers]
    order = [s for s, _ in consumer_plan(shards, 3, 0, 0, 1, 0, 1)]
    assert [s for s, _ in consumer_plan(shards, 3, 0, 1, 2, 1, 2)] == order[1::2][1::2]
    # epochs reshuffle
    assert consumer_plan(shards, 3, 0, 0, 1, 0, 1) != consumer_plan(shards, 3, 1, 0, 1, 0, 1)


def test_ranks_read_disjoint_shards(split_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        stream = iter(_stream(split_dir))
        keys[rank] = [next(stream)["key"] for _ in range(12)]
    shards = [{k.split("/")[1][:6] for k in keys[r]} for r in (0, 1)]
    assert not shards[0] & shards[1]  # 5 shards for 2 ranks: whole shards each


def test_batches_have_the_crop_size_whatever_the_image_size(split_dir: Path) -> None:
    batch = next(iter(make_loader(_stream(split_dir), batch_size=4, workers=0)))
    assert batch["image"].shape == (4, 3, 28, 28) and batch["target"].shape == (4, 28, 28)
    assert batch["mask"].dtype == torch.bool and len(batch["key"]) == 4


def test_a_restored_loader_continues_the_same_order_with_workers(split_dir: Path) -> None:
    # Two worker processes; the state is taken mid-epoch, after 7 batches (28 of 30 samples).
    loader = make_loader(_stream(split_dir), batch_size=4, workers=2)
    batches = iter(loader)
    for _ in range(7):
        next(batches)
    state = loader.state_dict()
    expected = [next(batches) for _ in range(5)]  # runs into the next epoch
    del batches

    resumed = make_loader(_stream(split_dir), batch_size=4, workers=2)
    resumed.load_state_dict(state)
    again = iter(resumed)
    for want in expected:
        got = next(again)
        assert got["key"] == want["key"]
        torch.testing.assert_close(got["image"], want["image"])  # same augmentation draws
        torch.testing.assert_close(got["target"], want["target"])


def test_resume_reads_no_earlier_shard(split_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Position 13 of epoch 0 lies in the consumer's third shard: the first two are skipped
    # by their manifest counts, never opened (no replay of consumed samples).
    import dav2_train.stream as stream_module

    opened = []
    real = stream_module.ShardReader

    def spy(path: Path) -> object:
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(stream_module, "ShardReader", spy)
    stream = _stream(split_dir)
    plan = consumer_plan(stream.shards, 0, 0, 0, 1, 0, 1)
    stream.load_state_dict({"epoch": 0, "position": 13})
    first = next(iter(stream))
    third_shard, indices = plan[2]
    assert opened == [shard_name(third_shard)]
    assert first["key"].endswith(sample_key(third_shard, indices[1]))
