"""Estimate a fixed metric scale (scale.a, scale.b) for a relative model from image + depth pairs.

Runs the relative model on each image (or reads disparities saved with ``dav2
predict --raw-out``), pools the valid metric depths of all pairs, fits
``1/depth_m = a·disparity + b`` robustly and writes a ROS parameters file with
``scale.mode: fixed``. A per-pair fit is printed next to the pooled one: when
those disagree, the model's disparity scale drifts between images and a fixed
calibration will not hold; use ``scale.mode: sparse`` instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from dav2_ros.commands._model_args import add_download_argument
from dav2_ros.model.metrics import abs_rel_delta1
from dav2_ros.ros.conversions import depth_to_metres
from dav2_ros.scale.fit import FitConfig, apply_scale, fit_scale_shift
from dav2_ros.scale.settings import fixed_params_yaml
from dav2_ros.scale.sparse import samples_from_depth_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEPTH_SUFFIXES = (".npy", ".png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", nargs="+", type=Path, help="image files or folders (sorted by name)"
    )
    source.add_argument(
        "--disparities",
        nargs="+",
        type=Path,
        help="relative disparity .npy files or folders (from `dav2 predict --raw-out`) "
        "instead of running a model",
    )
    parser.add_argument(
        "--depths",
        nargs="+",
        type=Path,
        required=True,
        help="metric depth files or folders, paired in sorted order: .npy float metres "
        "(NaN/0 invalid) or 16-bit .png millimetres (0 invalid)",
    )
    parser.add_argument("--out", type=Path, default=Path("scale.yaml"), help="parameters file")
    parser.add_argument(
        "--checkpoint", default=None, help="relative model, a path or hf: name (default: bundled)"
    )
    add_download_argument(parser)
    parser.add_argument("--encoder", default=None, help="encoder name when the file cannot tell")
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help="shorter side fed to the net (default: the checkpoint's, else 518)",
    )
    parser.add_argument("--backend", default="torch", help="inference backend")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--samples-per-pair", type=int, default=5000, help="depth pixels used per pair (random)"
    )
    parser.add_argument("--min-inliers", type=int, default=FitConfig.min_inliers)
    parser.add_argument("--max-residual", type=float, default=FitConfig.max_residual)
    parser.add_argument("--inlier-threshold", type=float, default=FitConfig.inlier_threshold)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    depth_paths = expand_paths(args.depths, DEPTH_SUFFIXES, "--depths")
    inputs = args.images if args.images else args.disparities
    suffixes = IMAGE_SUFFIXES if args.images else (".npy",)
    input_paths = expand_paths(inputs, suffixes, "--images" if args.images else "--disparities")
    if len(input_paths) != len(depth_paths):
        raise ValueError(
            f"got {len(input_paths)} inputs but {len(depth_paths)} depth files; they are "
            "paired in sorted order, so give one depth file per image"
        )
    predict = _model_predictor(args) if args.images else None
    config = FitConfig(
        min_inliers=args.min_inliers,
        max_residual=args.max_residual,
        inlier_threshold=args.inlier_threshold,
        max_samples=max(args.samples_per_pair * len(depth_paths), 2),
        seed=args.seed,
    )
    rng = np.random.default_rng(args.seed)
    pooled_disparity, pooled_depth, pairs = [], [], []
    for input_path, depth_path in zip(input_paths, depth_paths, strict=True):
        depth, encoding = read_depth(depth_path)
        disparity = predict(input_path) if predict else read_disparity(input_path)
        samples = samples_from_depth_image(depth_to_metres(depth, encoding), *disparity.shape)
        if len(samples) == 0:
            print(f"{depth_path.name}: no valid depth, skipped")
            continue
        pick = rng.permutation(len(samples))[: args.samples_per_pair]
        x, d = samples.lookup(disparity)[pick], samples.depth_m[pick]
        pooled_disparity.append(x)
        pooled_depth.append(d)
        pairs.append((input_path.name, x, d, fit_scale_shift(x, d, config)))
    if not pairs:
        raise ValueError("no pair had any valid depth pixel; check the depth files' units")
    fit = fit_scale_shift(np.concatenate(pooled_disparity), np.concatenate(pooled_depth), config)

    print(f"{'pair':<32} {'samples':>8} {'a (own fit)':>12} {'b (own fit)':>12} {'AbsRel':>8}")
    for name, x, d, own in pairs:
        abs_rel = _abs_rel(apply_scale(x, fit.a, fit.b), d) if np.isfinite(fit.a) else np.nan
        own_a, own_b = (f"{own.a:12.5g}", f"{own.b:12.5g}") if own.ok else (f"{'rejected':>12}", "")
        print(f"{name:<32} {x.size:>8} {own_a} {own_b:>12} {abs_rel:8.4f}")
    print(
        f"pooled fit: a = {fit.a:.6g}, b = {fit.b:.6g}, inliers {fit.num_inliers}/"
        f"{fit.num_samples}, median residual {fit.residual:.4f}"
    )
    if not fit.ok:
        raise ValueError(f"calibration rejected: {fit.reason}")
    comment = (
        f"dav2 calibrate: metric inverse depth (1/m) = a * disparity + b\n"
        f"{len(pairs)} pairs, {fit.num_inliers}/{fit.num_samples} inliers, "
        f"median relative residual {fit.residual:.4f}"
    )
    args.out.write_text(fixed_params_yaml(fit.a, fit.b, comment=comment))
    print(
        f"wrote {args.out} (use: depth_node --ros-args --params-file <config> --params-file "
        f"{args.out})"
    )
    return 0


def expand_paths(items: list[Path], suffixes: tuple[str, ...], option: str) -> list[Path]:
    """Files as given, folders expanded to their files with ``suffixes``, each sorted by name."""
    paths: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in suffixes)
            if not found:
                raise ValueError(f"{option}: folder {item} holds no {'/'.join(suffixes)} files")
            paths.extend(found)
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{option}: {item} does not exist")
    return paths


def read_depth(path: Path) -> tuple[np.ndarray, str]:
    """A depth file → (array, ROS encoding): .npy float metres or 16-bit .png millimetres."""
    if path.suffix.lower() == ".npy":
        depth = np.load(path, allow_pickle=False)
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise ValueError(
                f"{path}: expected a 2-D float array of metres, got {depth.dtype} {depth.shape}"
            )
        return depth.astype(np.float32, copy=False), "32FC1"
    depth = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
        found = "unreadable" if depth is None else f"{depth.dtype} {depth.shape}"
        raise ValueError(
            f"{path}: expected a single-channel 16-bit PNG in millimetres, got {found}"
        )
    return depth, "16UC1"


def read_disparity(path: Path) -> np.ndarray:
    disparity = np.load(path, allow_pickle=False)
    if disparity.ndim != 2 or not np.issubdtype(disparity.dtype, np.floating):
        raise ValueError(
            f"{path}: expected a 2-D float disparity array, got {disparity.dtype} {disparity.shape}"
        )
    return disparity


def _model_predictor(args: argparse.Namespace):
    """Image path → relative disparity at the image's resolution, one engine per input size."""
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model.checkpoints import load_model

    loaded = load_model(args.checkpoint, encoder=args.encoder, download=args.download)
    if loaded.meta.depth_type != "relative":
        raise ValueError(
            f"{loaded.meta.source or 'the model'} is a {loaded.meta.depth_type} model: it "
            "already predicts metres; calibration is for relative models"
        )
    input_size = args.input_size or loaded.meta.input_size or 518
    spec = EngineSpec(args.backend, args.device)
    estimator = DepthEstimator(loaded.model, spec, input_size, max_engines=None)

    def predict(path: Path) -> np.ndarray:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: not a readable image")
        return estimator.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).values

    return predict


def _abs_rel(depth_m: np.ndarray, reference_m: np.ndarray) -> float:
    valid = np.isfinite(depth_m)
    if not valid.any():
        return float("nan")
    return abs_rel_delta1(depth_m[valid], reference_m[valid])[0]
