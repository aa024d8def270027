"""Depth for image files: raw values (.npy), a colour view (.png), a point cloud (.ply).

``--raw-out`` holds what the official ``infer_image`` returns for the same
checkpoint and image: float32 H×W at the image's resolution, relative disparity or
metres. ``--confidence-out`` holds the per-pixel confidence at the same size (float32
in [0, 1], 1 = trusted; ``dav2_ros.model.confidence``). Several images: one progress
line each, and every output name gets the image's stem (``depth.npy`` →
``depth_<stem>.npy``, or put ``{stem}`` in the name). A metric model with a canonical
focal length (``dav2_ros.model.focal``) has its metres multiplied by f / f_canonical when
``--fx``/``--fy`` say the camera's focal length.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from dav2_ros.commands._model_args import add_download_argument
from dav2_ros.model.confidence import CONFIDENCE_MODES
from dav2_ros.model.dpt import DEPTH_TYPES
from dav2_ros.model.focal import check_focal_px


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any cv2 format)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--checkpoint",
        help="official .pth, transformers directory / safetensors, dav2 .safetensors, or "
        "hf:<owner>/<repo>[/<file>][@<revision>] (default: the bundled model)",
    )
    add_download_argument(model)
    model.add_argument("--encoder", help="encoder size (default: inferred from the tensors)")
    model.add_argument("--depth-type", choices=DEPTH_TYPES, help="default: from the checkpoint")
    model.add_argument("--max-depth", type=float, help="metres; metric models only")
    model.add_argument(
        "--confidence",
        choices=CONFIDENCE_MODES,
        default="auto",
        help="where --confidence-out and --confidence-panel come from: the checkpoint's "
        "confidence head (auto, head) or the disagreement with a pass on the mirrored image "
        "(flip: any checkpoint, twice the inference); default auto",
    )
    model.add_argument(
        "--focal-correction",
        choices=("auto", "off"),
        default="auto",
        help="metric models with a canonical focal length (recorded or --canonical-focal): "
        "metres x f / f_canonical with f from --fx/--fy (auto, the default), or as predicted",
    )
    model.add_argument(
        "--canonical-focal",
        type=float,
        default=0.0,
        metavar="PX",
        help="the model's canonical focal length in pixels of the network input (0: the "
        "checkpoint's record; official metric checkpoints: docs/node.md)",
    )
    model.add_argument(
        "--input-size",
        type=int,
        help="shorter side of the network input, multiple of 14 (default: the checkpoint's, "
        "518 for official and transformers files)",
    )
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--backend", default="torch", help="torch | onnxruntime | openvino | tensorrt | auto"
    )
    engine.add_argument("--device", default="cpu", help="cpu | cuda | gpu | npu (default: cpu)")
    engine.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16", "int8"))
    out = parser.add_argument_group(
        "outputs",
        "with several images each name gets the image's stem: depth.npy -> depth_<stem>.npy "
        "(or write {stem} where it should go)",
    )
    out.add_argument("--raw-out", metavar="FILE.npy", help="float32 HxW, disparity or metres")
    out.add_argument("--out", metavar="FILE.png", help="colour view (near = warm)")
    out.add_argument(
        "--confidence-out",
        metavar="FILE.npy",
        help="float32 HxW confidence in [0, 1] (1 = trusted) at the depth's resolution",
    )
    out.add_argument(
        "--confidence-panel",
        action="store_true",
        help="--out shows the confidence (grey, white = trusted) beside the colour view",
    )
    out.add_argument("--ply", metavar="FILE.ply", help="point cloud in metres (metric models)")
    cam = parser.add_argument_group(
        "intrinsics, in pixels of the input image: the focal correction and --ply"
    )
    cam.add_argument("--fx", type=float)
    cam.add_argument("--fy", type=float, help="default: --fx (square pixels)")
    cam.add_argument("--cx", type=float, help="default: image width / 2")
    cam.add_argument("--cy", type=float, help="default: image height / 2")


def run(args: argparse.Namespace) -> int:
    _check_output_names(args)
    if args.fy is not None and args.fx is None:
        raise ValueError("--fy needs --fx too (pixels of the input image)")
    if args.fx is not None and args.fy is None:
        args.fy = args.fx
    if args.ply and args.fx is None:
        raise ValueError("--ply needs the camera's focal lengths: pass --fx and --fy (pixels)")
    if args.confidence_panel and not args.out:
        raise ValueError("--confidence-panel draws into the --out view: pass --out FILE.png")
    focal_px = None if args.fx is None else (args.fx, args.fy)
    if focal_px is not None:
        check_focal_px(*focal_px)
    # Heavy imports only once the arguments are known to be sensible.
    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model.checkpoints import load_model
    from dav2_ros.model.confidence import resolve_mode
    from dav2_ros.model.focal import choose_canonical_focal

    loaded = load_model(
        args.checkpoint,
        encoder=args.encoder,
        depth_type=args.depth_type,
        max_depth=args.max_depth,
        download=args.download,
    )
    meta = loaded.meta
    if args.ply and meta.depth_type != "metric":
        raise ValueError(
            f"--ply needs metric depth, but {meta.source} is a relative model (affine-invariant "
            "disparity, not metres); use a metric checkpoint, or pass --depth-type metric "
            "--max-depth M if this file is one"
        )
    input_size = args.input_size or meta.input_size
    wants_confidence = bool(args.confidence_out or args.confidence_panel)
    confidence = resolve_mode(args.confidence, meta.has_confidence_head, meta.source)
    if wants_confidence and confidence == "off":
        raise ValueError(
            f"--confidence {args.confidence} gives no confidence for {meta.source}"
            f"{'' if meta.has_confidence_head else ' (it has no confidence head)'}: pass "
            "--confidence flip (a second pass on the mirrored image), or a checkpoint with a "
            "confidence head (`dav2-train confidence`)"
        )
    print(
        f"model: {meta.encoder} {meta.depth_type}"
        f"{f' (max {meta.max_depth:g} m)' if meta.depth_type == 'metric' else ''} "
        f"from {meta.source} [{meta.format}]",
        file=sys.stderr,
    )
    focal = choose_canonical_focal(
        meta.depth_type, meta.canonical_focal_px, args.focal_correction, args.canonical_focal
    )
    print(f"focal correction: {focal.reason}", file=sys.stderr)
    if focal.enabled and focal_px is None:
        print(
            "note: no --fx: the metres are the canonical camera's (focal length "
            f"{focal.canonical_focal_px:g} px at the network input), not corrected to your "
            "camera; pass --fx and --fy",
            file=sys.stderr,
        )
    spec = EngineSpec(args.backend, args.device, args.precision)
    # Keeps one static engine per input size: images of mixed sizes build each once.
    estimator = DepthEstimator(
        loaded.model,
        spec,
        input_size,
        max_engines=None,
        confidence=confidence,
        canonical_focal_px=focal.canonical_focal_px,
    )
    several = len(args.images) > 1
    for index, image_path in enumerate(args.images, start=1):
        started = time.perf_counter()
        image_rgb = _read_rgb(image_path)
        height, width = image_rgb.shape[:2]
        input_hw = estimator.input_hw(height, width)
        wanted = None if wants_confidence else "off"
        prediction = estimator.predict(image_rgb, confidence=wanted, focal_px=focal_px)
        values = prediction.values.astype(np.float32, copy=False)
        stem = Path(image_path).stem
        written = _write_outputs(
            args, values, prediction.confidence, image_rgb, meta.depth_type, stem, several
        )
        unit = "m" if meta.depth_type == "metric" else "(disparity)"
        value_range = f"{np.nanmin(values):.3g}..{np.nanmax(values):.3g} {unit}"
        if prediction.focal_scale != 1.0:
            value_range += f" (focal-corrected x{prediction.focal_scale:.4g})"
        print(
            f"[{index}/{len(args.images)}] {image_path}: {width}x{height} -> network "
            f"{input_hw[1]}x{input_hw[0]}, {value_range}, "
            f"infer {prediction.infer_ms:.0f} ms, total {(time.perf_counter() - started):.2f} s"
            f"{' -> ' + ', '.join(written) if written else ''}",
            file=sys.stderr,
        )
    estimator.close()
    return 0


def _check_output_names(args: argparse.Namespace) -> None:
    expected = {
        "raw_out": (".npy",),
        "confidence_out": (".npy",),
        "out": (".png", ".jpg", ".jpeg"),
        "ply": (".ply",),
    }
    for name, suffixes in expected.items():
        value = getattr(args, name)
        if value and Path(value).suffix.lower() not in suffixes:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must name a {' or '.join(suffixes)} file, got {value!r}")


def _output_path(template: str, stem: str, several: bool) -> Path:
    if "{stem}" in template:
        path = Path(template.replace("{stem}", stem))
    elif several:
        base = Path(template)
        path = base.with_name(f"{base.stem}_{stem}{base.suffix}")
    else:
        path = Path(template)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _read_rgb(image_path: str) -> np.ndarray:
    if not Path(image_path).is_file():
        raise FileNotFoundError(f"image {image_path!r} does not exist")
    # As the official infer_image: cv2.imread gives BGR, the network wants RGB.
    image_bgr = cv2.imread(image_path, cv2.IMREAD_COLOR)
    if image_bgr is None:
        raise ValueError(f"{image_path}: OpenCV cannot decode this file as an image")
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


def _write_outputs(
    args: argparse.Namespace,
    values: np.ndarray,
    confidence: np.ndarray | None,
    image_rgb: np.ndarray,
    depth_type: str,
    stem: str,
    several: bool,
) -> list[str]:
    written = []
    if args.raw_out:
        path = _output_path(args.raw_out, stem, several)
        np.save(path, values)
        written.append(str(path))
    if args.confidence_out:
        path = _output_path(args.confidence_out, stem, several)
        np.save(path, confidence.astype(np.float32, copy=False))
        written.append(str(path))
    if args.out:
        from dav2_ros.colorize import colorize, colorize_confidence

        path = _output_path(args.out, stem, several)
        rgb = colorize(values, high_is_warm=depth_type == "relative")
        if args.confidence_panel:
            rgb = np.concatenate([rgb, colorize_confidence(confidence)], axis=1)
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise RuntimeError(f"could not write {path}")
        written.append(str(path))
    if args.ply:
        path = _output_path(args.ply, stem, several)
        count = _write_ply(path, values, image_rgb, args)
        written.append(f"{path} ({count} points)")
    return written


def _write_ply(path: Path, depth_m: np.ndarray, image_rgb: np.ndarray, args) -> int:
    """Back-project with the given intrinsics (Open3D) and write the valid points, coloured."""
    from dav2_ros.geometry import CameraIntrinsics, backproject_organised, write_ply

    height, width = depth_m.shape
    intrinsics = CameraIntrinsics(
        fx=args.fx,
        fy=args.fy,
        cx=args.cx if args.cx is not None else width / 2,
        cy=args.cy if args.cy is not None else height / 2,
        width=width,
        height=height,
    )
    return write_ply(path, backproject_organised(depth_m, intrinsics), image_rgb)
