"""``dav2-train rgbd``: a robot's RGB-D recording → metric shards for ``finetune-metric``.

Section keys: ``bag`` (a rosbag2 directory, ``.db3`` or ``.mcap``), ``depth_topic``
(``sensor_msgs/Image`` 32FC1 metres or 16UC1 millimetres, registered to the camera),
``image_topic`` (Image or CompressedImage; optional when the bag has one image
topic), ``out`` (the split name), ``max_offset_ms`` (largest stamp difference of a
pair, default 20), ``every`` (keep every n-th pair) and ``shard_size``.

Frames are paired by header stamp; sensor depth becomes ``depth_m`` (NaN where the
sensor had none), so the metric fine-tune learns the robot's own camera and range.
Ranks split the pairs by shard, as pseudo-labelling does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dav2_train import fingerprint
from dav2_train.config import ConfigError, section, split_dir
from dav2_train.dist import DistContext
from dav2_train.shards import MANIFEST, RankShards, Sample, sample_key, write_manifest
from dav2_train.sources import iter_rgbd_records, source_listing

SETTINGS = ("image_topic", "depth_topic", "max_offset_ms", "every", "shard_size")


def run(config: dict[str, Any], name: str, ctx: DistContext) -> Path:
    cfg = section(config, name)
    missing = [k for k in ("bag", "depth_topic", "out") if k not in cfg]
    if missing:
        raise ConfigError(f"{name}: missing keys {missing} (bag, depth_topic, out are needed)")
    bag = Path(str(cfg["bag"])).expanduser()
    out = split_dir(config, cfg["out"])
    settings = {
        "image_topic": cfg.get("image_topic"),
        "depth_topic": cfg["depth_topic"],
        "max_offset_ms": float(cfg.get("max_offset_ms", 20)),
        "every": int(cfg.get("every", 1)),
        "shard_size": int(cfg.get("shard_size", 100)),
    }
    made_by = fingerprint.make(settings, {"bag": source_listing(bag)})
    kept = fingerprint.guard_folder(out, made_by, f"[{name}]", ctx)
    if kept and (out / MANIFEST).is_file():
        if ctx.is_main:
            print(f"[{name}] already converted with the same settings: {out}")
        return out
    shards = RankShards(out, "depth_m", settings["shard_size"], ctx.rank, ctx.world_size)
    pairs = 0
    records = iter_rgbd_records(
        bag,
        settings["image_topic"],
        settings["depth_topic"],
        int(settings["max_offset_ms"] * 1e6),
        settings["every"],
    )
    for record in records:
        pairs = record.index + 1
        if not shards.wants(record.index):
            continue
        frame = record.decode()
        writer = shards.writer_for(record.index)
        meta = {"source": frame.key, "stamp_ns": frame.stamp_ns}
        writer.write(Sample(sample_key(shards.shard, record.index), frame.rgb, frame.depth_m, meta))
    shards.close()
    ctx.barrier()
    if ctx.is_main:
        provenance = {"source": "rgbd", "path": str(bag.resolve()), "pairs": pairs, **settings}
        write_manifest(out, "depth_m", shards.names(pairs), made_by, provenance)
        print(f"[{name}] {pairs} RGB-D pairs from {bag} into {out}", flush=True)
    ctx.barrier()
    return out
