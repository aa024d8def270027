"""The deployment table: a model scored as the node runs it, on each test split.

For every test split (in-style and held-out style, rendered at the camera's
resolution, e.g. 640×480) each frame goes through the node's own path
(``DepthEstimator``: INTER_CUBIC resize of the shorter side to the model's input
size, network, bilinear resize back) and is scored with:

- metric AbsRel and δ1, directly in metres (metric models only);
- AbsRel and δ1 after least-squares scale + shift in inverse depth;
- ordinal accuracy: point pairs drawn uniformly at random among valid pixels, kept
  when their true depths differ by a ratio ≥ 1.25; a pair is right when the model
  orders it as the ground truth does. Uniform pairs favour the layout prior "lower in
  the image is closer" (the floor: it scores about 0.8-0.9 on them), so the headline
  number is on *balanced* pairs: as many with the closer point higher in the image as
  lower, where that prior scores exactly 0.5. Both are reported, each beside the
  prior's score on the same pairs;

- how well confidence ranks the pixels (``sparsification``): the model's confidence head,
  when it has one, and the cheap heuristics (flip disagreement, through the node's own
  ``flip`` path; image gradient; the depth itself), as AUSE and AbsRel over all pixels
  and over the most confident 80 % and 50 % (metric AbsRel for metric models, aligned
  AbsRel for relative ones), each frame ranked on its own and all frames' pixels ranked
  together (``sparsification``);

plus ``dav2 bench`` (ONNX Runtime, 2 threads) total milliseconds per 640×480 frame.
Metrics are means over frames (the paper's protocol: per image, then averaged).

Metric models with a canonical focal length (``dav2_ros.model.focal``) are corrected to
each frame's own focal length (its K), as the node corrects them with camera_info;
``FocalOptions`` sets the correction as the node's ``model.focal_correction`` and
``model.canonical_focal_px`` do (``both``: corrected and uncorrected side by side),
and a focal sweep renders every test split again at other focal lengths (same scenes
and views, ``synth.render_at_focal``), scored beside the split itself.

As a pipeline step (section ``deploy_eval``: ``models`` maps a label to a train
section or a checkpoint, ``splits``, optional ``bench`` labels, ``limit``), every rank
scores its share of the frames; the table lands in ``<run_dir>/<section>/table.md``::

    dav2-train deploy-eval --config training/configs/default.yaml

or on any checkpoints and splits::

    python -m dav2_train.deploy_eval --model metric=dav2_ros/weights/default.safetensors \\
        --split runs/default/data/a_test --split runs/default/data/c_test --out table/ \\
        --fx 350 --fx 525 --fx 800 --focal-correction both
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dav2_train import fingerprint, scored_weights, sparsification
from dav2_train.config import ConfigError, is_train_section, run_dir, section, split_dir
from dav2_train.dist import DistContext, all_gather_objects, all_reduce_sum
from dav2_train.metrics import aligned_depth, depth_metrics, relative_metrics
from dav2_train.models import (
    checkpoint_path,
    final_checkpoint,
    is_finished,
    reference_input,
    weights_sha256,
)
from dav2_train.shards import iter_split, meta_focal_px, read_split
from dav2_train.synth import render_at_focal

MIN_DEPTH_RATIO = 1.25
PAIRS_PER_FRAME = 400  # uniform candidates kept per frame; the balanced subset is smaller
BENCH_ARGS = ("--backend", "onnxruntime", "--image-size", "640x480", "--threads", "2")
FOCAL_MODES = ("auto", "off", "both")
FOCAL_KEYS = ("focal_px", "focal_correction", "canonical_focal_px")  # deploy_eval section
UNCORRECTED = " (uncorrected)"  # label suffix of a model's uncorrected rows (mode both)


@dataclass(frozen=True)
class FocalOptions:
    """The focal correction (``correction`` auto | off as the node's
    ``model.focal_correction``, or both side by side; ``canonical_focal_px`` as
    ``model.canonical_focal_px``, 0 = each checkpoint's record) and the focal sweep:
    every split rendered again at each fx of ``sweep_px`` (pixels), into ``data_dir``
    (default: beside the split) with ``render_workers`` processes."""

    correction: str = "auto"
    canonical_focal_px: float = 0.0
    sweep_px: tuple[float, ...] = ()
    data_dir: Path | None = None
    render_workers: int = 2

    def __post_init__(self) -> None:
        if self.correction not in FOCAL_MODES:
            raise ValueError(
                f"focal correction must be one of {FOCAL_MODES}, got {self.correction!r}"
            )
        if any(not f > 0 for f in self.sweep_px):
            raise ValueError(f"focal sweep: every fx must be > 0 pixels, got {self.sweep_px}")


def iter_frames(split_dir: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Frames (rgb, depth_m with NaN invalid, the camera's (fx, fy) or None) of a metric
    split, streamed shard by shard."""
    split = read_split(Path(split_dir))
    if split.kind != "depth_m":
        raise ValueError(f"{split_dir} holds {split.kind} labels; a test split needs depth_m")
    for index, sample in iter_split(split):
        if limit is not None and index >= limit:
            return
        yield {"rgb": sample.rgb, "depth_m": sample.label, "focal_px": meta_focal_px(sample.meta)}


def focal_sweep_splits(
    split_dirs: list[Path], focal: FocalOptions, max_depth_m: float, ctx: DistContext
) -> list[Path]:
    """Every split, each followed by its renders at the sweep's focal lengths."""
    out = []
    for directory in map(Path, split_dirs):
        out.append(directory)
        for focal_px in focal.sweep_px:
            target = (focal.data_dir or directory.parent) / f"{directory.name}_fx{focal_px:g}"
            out.append(
                render_at_focal(directory, focal_px, target, max_depth_m, focal.render_workers, ctx)
            )
    return out


def ordinal_pairs(
    depth_m: np.ndarray,
    valid: np.ndarray,
    rng: np.random.Generator,
    pairs: int = PAIRS_PER_FRAME,
    min_ratio: float = MIN_DEPTH_RATIO,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``pairs`` (closer, farther) flat pixel indices, drawn uniformly among valid pixels.

    Candidate pairs are uniform; only those whose true depth ratio is below
    ``min_ratio`` are dropped (no other selection).
    """
    flat = np.flatnonzero(valid.ravel())
    if flat.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    depth = depth_m.ravel()
    a = flat[rng.integers(flat.size, size=pairs * 20)]
    b = flat[rng.integers(flat.size, size=pairs * 20)]
    da, db = depth[a], depth[b]
    keep = np.maximum(da, db) / np.minimum(da, db) >= min_ratio
    a, b, da, db = a[keep][:pairs], b[keep][:pairs], da[keep][:pairs], db[keep][:pairs]
    closer = np.where(da < db, a, b)
    farther = np.where(da < db, b, a)
    return closer, farther


def balanced_pairs(
    closer: np.ndarray, farther: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Equal numbers of pairs whose closer point lies lower / higher in the image.

    Pairs on one row are dropped (the layout prior cannot order them either).
    """
    closer_row, farther_row = closer // width, farther // width
    lower = np.flatnonzero(closer_row > farther_row)
    higher = np.flatnonzero(closer_row < farther_row)
    n = min(lower.size, higher.size)
    keep = np.concatenate([lower[:n], higher[:n]])
    return closer[keep], farther[keep]


def ordinal_accuracy(pred_depth: np.ndarray, closer: np.ndarray, farther: np.ndarray) -> float:
    """Share of pairs the prediction orders right (ties count as wrong)."""
    flat = pred_depth.ravel()
    return float(np.mean(flat[closer] < flat[farther])) if closer.size else float("nan")


def tied_share(pred_depth: np.ndarray, closer: np.ndarray, farther: np.ndarray) -> float:
    """Share of pairs the prediction cannot order (equal values: e.g. a relative head's
    ReLU clamping a whole region to 0). Each tie is a wrong answer in ``ordinal_accuracy``."""
    flat = pred_depth.ravel()
    return float(np.mean(flat[closer] == flat[farther])) if closer.size else float("nan")


def lower_is_closer(height: int, width: int) -> np.ndarray:
    """The layout prior as a depth map: rows further down are nearer."""
    return np.broadcast_to(np.arange(height, 0, -1, dtype=np.float64)[:, None], (height, width))


def frame_metrics(
    pred: np.ndarray,
    depth_type: str,
    gt_m: np.ndarray,
    valid: np.ndarray,
    max_depth_m: float,
    pairs: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """Every number of the table for one frame's prediction (metres or disparity)."""
    with np.errstate(divide="ignore"):
        disparity = pred if depth_type == "relative" else 1.0 / np.maximum(pred, 1e-3)
        pred_depth = 1.0 / np.maximum(pred, 1e-6) if depth_type == "relative" else pred
    aligned = relative_metrics(disparity, gt_m, valid, max_depth_m)
    row = {"absrel_aligned": aligned["absrel"], "delta1_aligned": aligned["delta1"]}
    if depth_type == "metric":
        row |= depth_metrics(pred, gt_m, valid)
        row["depth_ratio_median"] = float(np.median(pred[valid] / gt_m[valid]))
    prior = lower_is_closer(*gt_m.shape)
    balanced = balanced_pairs(*pairs, gt_m.shape[1])
    row["ordinal"] = ordinal_accuracy(pred_depth, *balanced)
    row["ordinal_prior"] = ordinal_accuracy(prior, *balanced)
    row["ordinal_pairs"] = float(balanced[0].size)
    row["ordinal_ties"] = tied_share(pred_depth, *balanced)
    row["ordinal_uniform"] = ordinal_accuracy(pred_depth, *pairs)
    row["ordinal_uniform_prior"] = ordinal_accuracy(prior, *pairs)
    return row


def confidence_rows(
    estimator, rgb: np.ndarray, prediction, gt_m: np.ndarray, valid: np.ndarray,
    max_depth_m: float, seed: int, pool: sparsification.Pool,
) -> dict[str, float]:  # fmt: skip
    """``sparsification.frame_rows`` of one frame (its pixels also into ``pool``): the
    head's confidence (``prediction``'s, if any) and the heuristics, ranked against the
    per-pixel AbsRel the table reports."""
    values = prediction.values
    if estimator.depth_type == "metric":
        depth = values
    else:
        depth = aligned_depth(values, gt_m, valid, max_depth_m)
    flipped = estimator.predict(rgb, confidence="flip").confidence
    maps = sparsification.uncertainty_maps(
        rgb, depth, estimator.input_hw(*rgb.shape[:2]), prediction.confidence, -flipped
    )
    errors = sparsification.absrel_per_pixel(np.maximum(depth[valid], 1e-6), gt_m[valid])
    ranked = {k: m[valid] for k, m in maps.items()}
    pool.add(errors, ranked, seed)
    return sparsification.frame_rows(errors, ranked, seed)


def score_frames(
    estimator,
    split_dir: Path,
    max_depth_m: float,
    limit: int | None = None,
    part: int = 0,
    parts: int = 1,
    confidence: bool = True,
    pool: sparsification.Pool | None = None,
    uncorrected: list[dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """``frame_metrics`` of every ``parts``-th frame (from ``part``) of a split, each
    frame's metres corrected to its focal length when the estimator has a canonical
    focal length, with ``confidence_rows`` when ``confidence`` (pixels sampled into
    ``pool``); ``uncorrected`` (a list) also gets the rows of the network's metres."""
    pool = pool if pool is not None else sparsification.Pool()
    rows = []
    for index, frame in enumerate(iter_frames(split_dir, limit)):
        if index % parts != part:
            continue
        valid = np.isfinite(frame["depth_m"]) & (frame["depth_m"] > 0)
        if valid.sum() < 2:
            continue
        pairs = ordinal_pairs(frame["depth_m"], valid, np.random.default_rng([index, 125]))
        focal_px = frame["focal_px"]
        if estimator.canonical_focal_px is not None and focal_px is None:
            raise ValueError(
                f"{split_dir}: frame {index} has no K, and the focal correction needs each "
                "frame's focal length; score it with focal correction off"
            )
        prediction = estimator.predict(frame["rgb"], focal_px=focal_px)
        truth = (frame["depth_m"], valid, max_depth_m, pairs)
        row = frame_metrics(prediction.values, estimator.depth_type, *truth)
        if confidence:
            row |= confidence_rows(
                estimator, frame["rgb"], prediction, frame["depth_m"], valid, max_depth_m, index,
                pool,
            )  # fmt: skip
        rows.append(row)
        if uncorrected is not None:
            network_m = prediction.values / np.float32(prediction.focal_scale)
            uncorrected.append(frame_metrics(network_m, estimator.depth_type, *truth))
    return rows


def summarise(sums: dict[str, tuple[float, int]], image_size: str) -> dict:
    """Means from per-key (sum, count) over frames (NaN frames, e.g. no pairs, left out);
    the confidence figures nested under ``confidence`` (``sparsification.summary``)."""
    frames = max(count for _, count in sums.values()) if sums else 0
    if frames == 0:
        raise ValueError("no frame with valid depth to evaluate")
    means = {key: total / count for key, (total, count) in sums.items() if count}
    depth, confidence = sparsification.nested(means)
    extra = {"confidence": confidence} if confidence else {}
    return depth | extra | {"frames": frames, "image_size": image_size}


def row_sums(rows: list[dict[str, float]]) -> dict[str, tuple[float, int]]:
    keys = sorted({key for row in rows for key in row})
    finite = {
        key: [row[key] for row in rows if key in row and np.isfinite(row[key])] for key in keys
    }
    return {key: (float(np.sum(values)), len(values)) for key, values in finite.items()}


def _image_size(split_dir: Path) -> str:
    rgb = next(iter_frames(split_dir, 1))["rgb"]
    return f"{rgb.shape[1]}x{rgb.shape[0]}"


def build_estimator(
    checkpoint: str,
    threads: int,
    input_size: int = 0,
    focal_correction: str = "auto",
    canonical_focal_px: float = 0.0,
):
    """The node's own inference path for ``checkpoint`` (PyTorch engine, CPU; the engine
    for the split's frame size is built at its first frame). ``input_size`` is the node's
    ``engine.input_size``: the network's shorter side, 0 = the checkpoint's;
    ``focal_correction`` and ``canonical_focal_px`` are its ``model.*`` namesakes.
    Returns the estimator, the checkpoint's metadata and the ``FocalChoice``."""
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model.checkpoints import load_model
    from dav2_ros.model.focal import choose_canonical_focal

    loaded = load_model(checkpoint)
    meta = loaded.meta
    focal = choose_canonical_focal(
        meta.depth_type, meta.canonical_focal_px, focal_correction, canonical_focal_px
    )
    # The torch engine sets torch's (process-wide) thread count from its options: without
    # them it would use every core whatever ``threads`` says.
    spec = EngineSpec(backend="torch", device="cpu", options={"threads": threads})
    estimator = DepthEstimator(
        loaded.model.eval(),
        spec,
        input_size or meta.input_size,
        confidence="auto",
        canonical_focal_px=focal.canonical_focal_px,
    )
    return estimator, meta, focal


def bench_total_ms(checkpoint: str, out_json: Path, input_size: int, iterations: int = 30) -> dict:
    """``dav2 bench`` on ``checkpoint`` at 640×480, 2 threads, network size ``input_size``;
    its JSON record."""
    command = [
        sys.executable,
        "-m",
        "dav2_ros.cli",
        "bench",
        "--checkpoint",
        checkpoint,
        *BENCH_ARGS,
        "--input-size",
        str(input_size),
        "--iterations",
        str(iterations),
        "--json",
        str(out_json),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(out_json.read_text()) | {"command": "dav2 " + " ".join(command[3:-2])}


ROWS = (
    ("absrel", "metric AbsRel ↓"),
    ("delta1", "δ1 (metric) ↑"),
    ("depth_ratio_median", "median predicted / true depth (1 = right scale)"),
    ("absrel_aligned", "AbsRel after LS scale + shift in inverse depth ↓"),
    ("delta1_aligned", "δ1 after LS scale + shift ↑"),
    ("ordinal", "ordinal accuracy, balanced pairs with depth ratio ≥ 1.25 ↑"),
    ("ordinal_prior", '(same pairs: prior "lower is closer")'),
    ("ordinal_pairs", "(balanced pairs per frame)"),
    ("ordinal_ties", "(share of them the model ties: counted wrong)"),
    ("ordinal_uniform", "ordinal accuracy, uniform pairs with depth ratio ≥ 1.25 ↑"),
    ("ordinal_uniform_prior", '(same pairs: prior "lower is closer")'),
)


def markdown(results: dict) -> str:
    """One table per model: rows = the deployment figures, columns = test splits."""
    out = []
    for label, result in results.items():
        splits = result["splits"]
        names = list(splits)
        held = [f"{n} (held-out style)" if splits[n].get("held_out") else n for n in names]
        focal = (
            f"; focal correction {result['focal_correction']}"
            if "focal_correction" in result
            else ""
        )
        out += [
            f"### {label}: `{result['checkpoint']}` ({result['depth_type']}, "
            f"input {result['input_size']}{focal})",
            "",
            "| | " + " | ".join(held) + " |",
            "|---|" + "---|" * len(names),
        ]
        for key, title in ROWS:
            fmt = "{:.0f}" if key == "ordinal_pairs" else "{:.3f}"
            cells = [fmt.format(splits[n][key]) if key in splits[n] else "–" for n in names]
            out.append(f"| {title} | " + " | ".join(cells) + " |")
        frames = [f"{splits[n]['frames']} × {splits[n]['image_size']}" for n in names]
        out.append("| frames | " + " | ".join(frames) + " |")
        if "bench" in result:
            bench = result["bench"]
            out.append(
                f"| `dav2 bench` total, 640×480, 2 threads | {bench['total_ms']:.1f} ms "
                f"(network {bench['input_hw'][1]}×{bench['input_hw'][0]}, "
                f"load {bench['machine'].get('loadavg_1m')}) |" + " |" * (len(names) - 1)
            )
        out.append("")
        for key, protocol in (
            ("confidence", "each frame ranked on its own"),
            ("confidence_pooled", "all frames' pixels ranked together"),
        ):
            ranked = {n: splits[n][key] for n in names if splits[n].get(key)}
            if ranked:
                out += sparsification.markdown(label, ranked, protocol)
    return "\n".join(out)


def focal_markdown(results: dict) -> str:
    """Metric AbsRel (median predicted / true depth) of every metric model on each split
    and on its renders at other focal lengths. Over the renders: the AbsRel spread (max −
    min) and the scale spread (largest / smallest median ratio; 1 = the same scale at
    every focal length)."""
    out = []
    metric = {label: r for label, r in results.items() if r["depth_type"] == "metric"}
    if not metric:
        return ""
    splits = next(iter(metric.values()))["splits"]
    for base in [n for n, row in splits.items() if "rendered_from" not in row]:
        renders = sorted(
            (row["focal_px"], name)
            for name, row in splits.items()
            if row.get("rendered_from") == base
        )
        if not renders:
            continue
        held = " (held-out style)" if splits[base].get("held_out") else ""
        size = splits[base]["image_size"]
        columns = [f"fx {f:g} px" for f, _ in renders]
        out += [
            f"**{base}{held}, {size}**: metric AbsRel (median predicted / true depth)",
            "",
            f"| model | own K | {' | '.join(columns)} | AbsRel spread | scale spread |",
            "|---|---|" + "---|" * len(columns) + "---|---|",
        ]
        for label, result in metric.items():
            rows = result["splits"]
            cells = [_absrel_and_ratio(rows[base])]
            cells += [_absrel_and_ratio(rows[name]) for _, name in renders]
            absrels = [rows[name]["absrel"] for _, name in renders]
            ratios = [rows[name]["depth_ratio_median"] for _, name in renders]
            spreads = f"{max(absrels) - min(absrels):.3f} | {max(ratios) / min(ratios):.2f}"
            out.append(f"| {label} | {' | '.join(cells)} | {spreads} |")
        out.append("")
    return "\n".join(out)


def _absrel_and_ratio(row: dict) -> str:
    return f"{row['absrel']:.3f} ({row['depth_ratio_median']:.2f})"


def run_table(
    models: dict[str, str],
    split_dirs: list[Path],
    out: Path,
    max_depth_m: float = 20.0,
    limit: int | None = None,
    threads: int = 2,
    bench: bool | list[str] = True,
    ctx: DistContext | None = None,
    tag: str = "deploy-eval",
    input_size: int = 0,
    confidence: bool = True,
    focal: FocalOptions | None = None,
    command: str | None = None,
) -> dict:
    """Score every model on every split and write ``table.json`` / ``table.md`` to ``out``
    (and ``focal.md`` for a focal sweep).

    Under ``ctx`` (a torchrun group) every rank scores its share of the frames and rank 0
    writes; ``bench`` is True (every model), False or the labels to time with dav2 bench.
    ``input_size`` runs every model at that network size (0: each checkpoint's own).
    ``confidence``: score the confidence rankings too (a second, mirrored pass per frame).
    ``focal``: the focal correction and sweep (``FocalOptions``); ``command`` is recorded.
    """
    if ctx is None:
        import torch

        ctx = DistContext(0, 1, 0, torch.device("cpu"))
    focal = focal or FocalOptions()
    split_dirs = focal_sweep_splits(split_dirs, focal, max_depth_m, ctx)
    bench_labels = list(models) if bench is True else list(bench or [])
    mode = "auto" if focal.correction == "both" else focal.correction
    results: dict[str, dict] = {}
    for label, checkpoint in models.items():
        started = time.time()
        estimator, meta, choice = build_estimator(
            checkpoint, threads, input_size, mode, focal.canonical_focal_px
        )
        both = focal.correction == "both" and choice.enabled
        splits, plain = {}, {}
        for directory in map(Path, split_dirs):
            pool = sparsification.Pool()
            uncorrected: list[dict[str, float]] | None = [] if both else None
            rows = score_frames(
                estimator, directory, max_depth_m, limit, ctx.rank, ctx.world_size, confidence,
                pool, uncorrected,
            )  # fmt: skip
            for scored, rows_of in ((splits, rows), (plain, uncorrected)):
                if rows_of is None:
                    continue
                row = summarise(_reduce_sums(row_sums(rows_of), ctx), _image_size(directory))
                scored[directory.name] = row | read_split(directory).provenance
            if confidence:
                pooled = pool.merge(all_gather_objects(pool, ctx)).summary()
                splits[directory.name]["confidence_pooled"] = pooled
            if ctx.is_main:
                shown = {k: v for k, v in splits[directory.name].items() if isinstance(v, float)}
                print(f"[{tag}] {label} {directory.name}: {json.dumps(shown)}", flush=True)
        record = _model_record(checkpoint, meta, estimator.input_size, splits, started, command)
        results[label] = record | {"focal_correction": choice.reason}
        if both:
            results[label + UNCORRECTED] = record | {"splits": plain, "focal_correction": "off"}
        if ctx.is_main and label in bench_labels:
            out.mkdir(parents=True, exist_ok=True)
            bench_json = out / f"bench-{label}.json"
            results[label]["bench"] = bench_total_ms(checkpoint, bench_json, estimator.input_size)
        ctx.barrier()
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.json").write_text(json.dumps(results, indent=1))
        (out / "table.md").write_text(markdown(results))
        if focal.sweep_px:
            (out / "focal.md").write_text(focal_markdown(results))
        print(f"[{tag}] wrote {out / 'table.md'}", flush=True)
    ctx.barrier()
    return results


def _checkpoint_of(config: dict[str, Any], ref: str) -> str:
    """A train section's saved model, or the path itself."""
    if is_train_section(config, ref):
        stem = final_checkpoint(config, ref)
        if not is_finished(stem):
            raise FileNotFoundError(f"{stem}.safetensors does not exist: run section {ref!r} first")
        return str(stem.with_suffix(".safetensors"))
    if checkpoint_path(ref) is None:
        raise FileNotFoundError(f"deploy_eval.models: {ref!r} is neither a section nor a file")
    return ref


def run(config: dict[str, Any], name: str, ctx: DistContext) -> dict:
    """The pipeline step: every rank scores its share of the frames, rank 0 writes the table.

    Like every step it records a fingerprint (settings, models, splits) and keeps a table
    made from the same inputs instead of scoring again, as long as every model's weights
    are the ones scored (``scored_weights``): a model retrained with the same config is
    scored again.
    """
    cfg = section(config, name)
    unknown = set(cfg) - {
        "models", "splits", "bench", "limit", "threads", "out", "confidence", *FOCAL_KEYS
    }  # fmt: skip
    if unknown:
        raise ConfigError(f"{name}: unknown keys {sorted(unknown)}")
    models = {label: _checkpoint_of(config, str(ref)) for label, ref in cfg["models"].items()}
    split_dirs = [split_dir(config, s) for s in cfg["splits"]]
    out = Path(cfg.get("out") or run_dir(config) / name)
    settings = {k: cfg.get(k) for k in ("models", "splits", "bench", "limit")}
    if "confidence" in cfg:  # only when set: tables scored before it existed stay valid
        settings["confidence"] = cfg["confidence"]
    settings |= {k: cfg[k] for k in FOCAL_KEYS if k in cfg}  # only when set: digests stay
    inputs = {
        "models": {
            label: reference_input(config, str(ref), f"{name}.models")
            for label, ref in cfg["models"].items()
        },
        "splits": {d.name: read_split(d).fingerprint.get("digest") for d in split_dirs},
    }
    kept = fingerprint.guard_folder(out, fingerprint.make(settings, inputs), f"[{name}]", ctx)
    weights = {
        label: weights_sha256(config, str(ref), f"{name}.models")
        for label, ref in cfg["models"].items()
    }
    scored = (out / "table.json").is_file()
    if kept and scored and scored_weights.unchanged(out, weights, f"[{name}]", ctx.is_main):
        if ctx.is_main:
            print(f"[{name}] already scored with the same models and splits: {out}", flush=True)
        return json.loads((out / "table.json").read_text())
    results = run_table(
        models,
        split_dirs,
        out,
        float(config["max_depth_m"]),
        cfg.get("limit"),
        int(cfg.get("threads", 2)),
        cfg.get("bench", True),
        ctx,
        tag=name,
        confidence=bool(cfg.get("confidence", True)),
        focal=FocalOptions(
            cfg.get("focal_correction", "auto"),
            float(cfg.get("canonical_focal_px", 0.0)),
            tuple(float(f) for f in cfg.get("focal_px", ())),
            run_dir(config) / "data",
        ),
        command=" ".join(["dav2-train", *sys.argv[1:]]),
    )
    if ctx.is_main:
        scored_weights.write(out, weights)
    return results


def _reduce_sums(sums: dict[str, tuple[float, int]], ctx: DistContext) -> dict:
    """Every rank's (sum, count) per key added up (the key set is the same on every rank)."""
    if not ctx.distributed:
        return sums
    import torch

    keys = sorted(set().union(*all_gather_objects(sorted(sums), ctx)))
    local = torch.tensor([list(sums.get(k, (0.0, 0))) for k in keys], dtype=torch.float64)
    total = all_reduce_sum(local.to(ctx.device), ctx).cpu().tolist()
    return {k: (total[i][0], int(total[i][1])) for i, k in enumerate(keys)}


def _model_record(
    checkpoint: str, meta, input_size: int, splits: dict, started: float, command: str | None
) -> dict:
    return {
        "checkpoint": str(checkpoint),
        "depth_type": meta.depth_type,
        "encoder": meta.encoder,
        "input_size": input_size,  # what it ran at (the checkpoint's unless --input-size)
        "canonical_focal_px": meta.canonical_focal_px,  # the checkpoint's record
        "splits": splits,
        "eval_seconds": round(time.time() - started, 1),
        "command": command,
    }


def _model_arg(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"--model needs LABEL=PATH, got {text!r}")
    return label, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=_model_arg,
        action="append",
        required=True,
        metavar="LABEL=PATH",
        help="a checkpoint load_model reads (repeatable)",
    )
    parser.add_argument(
        "--split",
        type=Path,
        action="append",
        required=True,
        help="test split directory (dav2-train synth shards, repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-depth", type=float, default=20.0)
    parser.add_argument("--limit", type=int, default=None, help="frames per split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-bench", action="store_true")
    parser.add_argument(
        "--no-confidence",
        action="store_true",
        help="skip the confidence rankings (sparsification, AUSE) and their mirrored pass",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=0,
        help="the node's engine.input_size for every model (multiple of 14; 0 = checkpoint's)",
    )
    focal = parser.add_argument_group("focal length")
    focal.add_argument(
        "--focal-correction",
        choices=FOCAL_MODES,
        default="auto",
        help="the node's model.focal_correction (auto, off), or both side by side",
    )
    focal.add_argument(
        "--canonical-focal",
        type=float,
        default=0.0,
        metavar="PX",
        help="the node's model.canonical_focal_px for every model (0: each checkpoint's record)",
    )
    focal.add_argument(
        "--fx",
        type=float,
        action="append",
        default=[],
        metavar="PX",
        help="also render every split at this focal length (pixels; repeatable) and score it",
    )
    focal.add_argument(
        "--focal-data",
        type=Path,
        help="where the renders at --fx go (default: beside each split, <split>_fx<PX>)",
    )
    focal.add_argument("--render-workers", type=int, default=2)
    args = parser.parse_args(argv)
    results = run_table(
        dict(args.model),
        args.split,
        args.out,
        args.max_depth,
        args.limit,
        args.threads,
        not args.no_bench,
        input_size=args.input_size,
        confidence=not args.no_confidence,
        focal=FocalOptions(
            args.focal_correction,
            args.canonical_focal,
            tuple(args.fx),
            args.focal_data,
            args.render_workers,
        ),
        command=" ".join(["python -m dav2_train.deploy_eval", *(argv or sys.argv[1:])]),
    )
    print(markdown(results))
    if args.fx:
        print(focal_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
