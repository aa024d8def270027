"""The canonical camera in training: labels × f_canonical / f_sample through the data path
(resize, crop), its guards, the record from fine-tune to export, and the deploy-eval
focal sweep with and without the correction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dav2_train import deploy_eval, export, synth, train
from dav2_train.config import ConfigError, load_config, train_section
from dav2_train.dist import DistContext
from dav2_train.shards import Sample, ShardWriter, iter_split, read_split, write_manifest
from dav2_train.stream import SampleTransform, ShardStream, make_loader

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, load_model, save_model
from dav2_ros.model.focal import network_focal_px
from dav2_ros.model.random_weights import randomize_weights_

CTX = DistContext(0, 1, 0, torch.device("cpu"))
HEIGHT, WIDTH = 120, 160
DEPTH_M = 5.0
CANONICAL_PX = 50.0
FX_OF = {0: 200.0, 1: 300.0, 2: 450.0}  # sample index -> its camera's fx (fy = 0.9 fx)


def write_split(directory, with_k: bool = True):
    """Three samples of constant depth whose cameras differ only in focal length."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with ShardWriter(directory / "shard-00000.tar", "depth_m") as writer:
        for index, fx in FX_OF.items():
            k = [[fx, 0, WIDTH / 2], [0, 0.9 * fx, HEIGHT / 2], [0, 0, 1]]
            rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            depth = np.full((HEIGHT, WIDTH), DEPTH_M, np.float32)
            meta = {"source": f"test/{index}", **({"K": k} if with_k else {})}
            writer.write(Sample(f"s00000i{index:05d}", rgb, depth, meta))
    return write_manifest(directory, "depth_m")


def canonical_depths(split, transform: SampleTransform, epochs: int) -> list[tuple[int, float]]:
    """(sample index, its label value) for every sample of ``epochs`` epochs of the loader."""
    loader = make_loader(ShardStream([split], transform, seed=3), batch_size=3, workers=0)
    seen = []
    for _, batch in zip(range(epochs), loader, strict=False):
        for key, target, mask in zip(batch["key"], batch["target"], batch["mask"], strict=True):
            values = target[mask].unique()
            assert values.numel() == 1, "a crop keeps the focal length: one label value"
            seen.append((int(key.rsplit("i", 1)[1]), float(values[0])))
    return seen


def expected_m(index: int, network_size: int) -> float:
    fx = FX_OF[index]
    return DEPTH_M * CANONICAL_PX / network_focal_px(fx, 0.9 * fx, (HEIGHT, WIDTH), network_size)


def test_labels_become_the_canonical_cameras_through_the_loader(tmp_path) -> None:
    split = write_split(tmp_path / "a_train")
    plain = SampleTransform("depth_m", 56, 56, canonical_focal_px=CANONICAL_PX)
    for index, value in canonical_depths(split, plain, epochs=2):
        assert value == pytest.approx(expected_m(index, 56), rel=1e-6)
    # The random resize changes the focal length at the network input; the labels follow.
    resized = SampleTransform(
        "depth_m", 56, 56, resize_range=(1.0, 2.0), canonical_focal_px=CANONICAL_PX
    )
    assert resized.network_sizes() == [56, 70, 84, 98, 112]
    sizes_seen = set()
    for index, value in canonical_depths(split, resized, epochs=12):
        matching = [
            s for s in resized.network_sizes() if value == pytest.approx(expected_m(index, s))
        ]
        assert len(matching) == 1, (index, value)
        sizes_seen.add(matching[0])
    assert len(sizes_seen) >= 3
    # Without a canonical focal length the labels stay metres.
    as_is = SampleTransform("depth_m", 56, 56, resize_range=(1.0, 2.0))
    assert {value for _, value in canonical_depths(split, as_is, epochs=2)} == {DEPTH_M}


def test_a_sample_without_intrinsics_is_refused_for_canonical_labels(tmp_path) -> None:
    split = write_split(tmp_path / "no_k", with_k=False)
    transform = SampleTransform("depth_m", 56, 56, canonical_focal_px=CANONICAL_PX)
    with pytest.raises(ValueError, match="no K in its meta.json"):
        canonical_depths(split, transform, epochs=1)


def test_focal_settings_are_checked_with_the_section(tmp_path) -> None:
    base = {"data": "a_train", "steps": 1}
    bad = [
        ({"command": "student", "canonical_focal_px": 168}, "only a finetune-metric"),
        ({"command": "finetune-metric", "canonical_focal_px": -3}, "must be a focal length > 0"),
        ({"command": "finetune-metric", "resize_range": [1.5]}, r"resize_range must be \[lo, hi\]"),
        ({"command": "finetune-metric", "resize_range": [1.5, 1.0]}, "lo > hi"),
    ]
    for extra, message in bad:
        with pytest.raises(ConfigError, match=message):
            train_section({"s": {**base, **extra}}, "s")
    with pytest.raises(ValueError, match="goes below the 56 px crop"):
        SampleTransform("depth_m", 56, 56, resize_range=(0.5, 1.0))
    with pytest.raises(ValueError, match="rescales metric depth labels"):
        SampleTransform("disparity", 56, 56, canonical_focal_px=CANONICAL_PX)


def _config(tmp_path, extra: dict) -> dict:
    path = tmp_path / "cfg.yaml"
    document = {
        "run_dir": str(tmp_path / "run"),
        "max_depth_m": 20.0,
        "threads": 1,
        "image": {"width": 70, "height": 56},
        "synth": {"shard_size": 4, "workers": 1, "splits": {}},
        **extra,
    }
    path.write_text(json.dumps(document))
    return load_config(path)


def test_a_canonical_fine_tune_of_an_exported_model_records_focal_and_lineage(tmp_path) -> None:
    section = {
        "command": "finetune-metric",
        "encoder": "vitt6",
        "input_size": 56,
        "data": "a_train",
        "steps": 2,
        "batch_size": 2,
        "warmup_steps": 1,
        "workers": 0,
    }
    first = tmp_path / "export" / "first"
    config = _config(
        tmp_path,
        {
            "synth": {
                "shard_size": 4,
                "workers": 1,
                "splits": {"a_train": {"style": "a", "count": 8, "seed": 1}},
            },
            "finetune_metric": section,
            # The bundled model's route: continue an exported metric model in a canonical camera.
            "finetune_canonical": {
                **section,
                "init": str(first),
                "canonical_focal_px": 56.0,
                "resize_range": [1.0, 1.5],
            },
            "export": {"model": "finetune_metric", "out": str(first)},
            "export_canonical": {
                "model": "finetune_canonical",
                "out": str(tmp_path / "export" / "canonical"),
            },
        },
    )
    synth.run(config, "synth", CTX)
    train.run(config, "finetune_metric", CTX)
    assert load_model(export.run(config, "export", CTX)).meta.canonical_focal_px is None
    final = train.run(config, "finetune_canonical", CTX)
    assert load_model(final).meta.canonical_focal_px == 56.0
    recorded = json.loads(final.with_suffix(".json").read_text())["provenance"]
    assert (recorded["canonical_focal_px"], recorded["resize_range"]) == (56.0, [1.0, 1.5])
    written = export.run(config, "export_canonical", CTX)
    document = json.loads(written.with_suffix(".json").read_text())
    assert (document["canonical_focal_px"], document["format_version"]) == (56.0, 3)
    assert load_model(written).meta.canonical_focal_px == 56.0
    card = (written.parent / "MODEL_CARD.md").read_text()
    assert "canonical camera with focal length 56 px" in card
    # The card goes on with the lineage the first export recorded.
    assert "`finetune_canonical` started from dav2 checkpoint" in card
    assert "`finetune_metric` started from random initialisation" in card
    assert "`finetune_metric` (finetune-metric): vitt6, data `a_train`" in card


def test_focal_sweep_scores_each_focal_with_and_without_the_correction(tmp_path) -> None:
    held_out = {"style": "c", "count": 2, "seed": 3, "held_out": True, "width": 84, "height": 56}
    config = _config(
        tmp_path, {"synth": {"shard_size": 2, "workers": 1, "splits": {"c_test": held_out}}}
    )
    synth.run(config, "synth", CTX)
    model = randomize_weights_(DepthAnythingV2("vitt6", "metric", 20.0), seed=0)
    meta = ModelMeta("vitt6", "metric", 20.0, input_size=28, canonical_focal_px=30.0)
    checkpoint = save_model(model, meta, tmp_path / "m")
    data = tmp_path / "run" / "data"
    focal = deploy_eval.FocalOptions("both", sweep_px=(40.0, 80.0), render_workers=1)
    out = tmp_path / "table"
    results = deploy_eval.run_table(
        {"m": str(checkpoint)}, [data / "c_test"], out, threads=1, bench=False, focal=focal
    )
    assert set(results) == {"m", "m (uncorrected)"}
    corrected, uncorrected = results["m"]["splits"], results["m (uncorrected)"]["splits"]
    assert list(corrected) == ["c_test", "c_test_fx40", "c_test_fx80"]
    for fx in (40.0, 80.0):
        name = f"c_test_fx{fx:g}"
        rendered = read_split(data / name)
        assert rendered.provenance["focal_px"] == fx and rendered.provenance["held_out"] is True
        assert [s.meta["K"][0][0] for _, s in iter_split(rendered)] == [fx, fx]
        # The correction is one factor per frame: f at the network input / canonical.
        factor = network_focal_px(fx, fx, (56, 84), 28) / 30.0
        ratio = corrected[name]["depth_ratio_median"] / uncorrected[name]["depth_ratio_median"]
        assert ratio == pytest.approx(factor, rel=1e-5)
        for scale_free in ("absrel_aligned", "ordinal"):
            assert corrected[name][scale_free] == pytest.approx(uncorrected[name][scale_free])
    table = (out / "focal.md").read_text()
    assert "c_test (held-out style), 84x56" in table and "| fx 40 px | fx 80 px |" in table
    assert "| m (uncorrected) |" in table and "| AbsRel spread | scale spread |" in table
    # A second sweep finds the renders made (same split, same focal length) and keeps them.
    before = (data / "c_test_fx40" / "shard-00000.tar").stat().st_mtime_ns
    deploy_eval.run_table(
        {"m": str(checkpoint)}, [data / "c_test"], out, threads=1, bench=False, focal=focal
    )
    assert (data / "c_test_fx40" / "shard-00000.tar").stat().st_mtime_ns == before
