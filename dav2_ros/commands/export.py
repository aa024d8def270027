"""Export the network to a file you can ship: ONNX, torch.export program, or TensorRT.

One static input shape per file (the position-embedding interpolation is baked in
at export; see ``dav2_ros.engines.onnx_export``). ``--input-size N`` alone gives an
N×N network input; with ``--image-size WxH`` the shape is what a camera of that
resolution feeds the network (shorter side → N, both sides multiples of 14).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dav2_ros.commands._model_args import add_model_arguments, build_model, parse_image_size

FORMATS = ("onnx", "exported-program", "tensorrt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, metavar="FILE", help="file to write")
    add_model_arguments(parser, random_by_default=False)
    shape = parser.add_argument_group("input shape")
    shape.add_argument(
        "--input-size", type=int, help="network short side, multiple of 14 (default: model's)"
    )
    shape.add_argument(
        "--image-size", type=parse_image_size, metavar="WxH", help="camera resolution"
    )
    parser.add_argument("--opset", type=int, help="ONNX opset (default 18, at least 17)")
    parser.add_argument(
        "--quantize", choices=("int8",), help="onnx only: dynamic int8 encoder linear layers"
    )
    parser.add_argument(
        "--precision", choices=("fp16", "fp32"), help="tensorrt only (default fp16)"
    )
    parser.add_argument("--device", default="cuda", help="tensorrt only (default cuda)")


def run(args: argparse.Namespace) -> int:
    from dav2_ros.engines.onnx_export import DEFAULT_OPSET, build_onnx
    from dav2_ros.model.transforms import model_input_size

    if args.quantize and args.format != "onnx":
        raise ValueError(f"--quantize applies to --format onnx only, not {args.format}")
    if args.precision and args.format != "tensorrt":
        raise ValueError("--precision applies to --format tensorrt only (onnx is fp32)")
    if args.format == "tensorrt":
        from dav2_ros.engines.tensorrt_engine import require_tensorrt

        require_tensorrt(args.device)  # fail before any work, naming what is missing
    chosen = build_model(args, random_by_default=False)
    input_size = args.input_size or chosen.input_size
    if args.image_size:
        input_hw = model_input_size(*args.image_size, input_size)
    else:
        input_hw = model_input_size(input_size, input_size, input_size)
    output = Path(args.output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    model = chosen.model
    shape = f"1x3x{input_hw[0]}x{input_hw[1]}"
    print(f"exporting {chosen.source} ({model.encoder_name}, {model.depth_type}) at {shape}")
    started = time.perf_counter()
    if args.format == "onnx":
        opset = args.opset or DEFAULT_OPSET
        _write_atomically(
            output, lambda tmp: build_onnx(model, input_hw, tmp, opset, args.quantize)
        )
        _check_onnx_loads(output, input_hw)
    elif args.format == "exported-program":
        import torch

        from dav2_ros.engines.tensorrt_engine import export_program

        _write_atomically(
            output, lambda tmp: torch.export.save(export_program(model, input_hw), tmp)
        )
    else:
        from dav2_ros.engines.tensorrt_engine import compile_tensorrt

        precision = args.precision or "fp16"
        _write_atomically(
            output,
            lambda tmp: compile_tensorrt(model, input_hw, precision, args.device, tmp),
        )
    elapsed = time.perf_counter() - started
    size_mb = output.stat().st_size / 1e6
    print(f"wrote {output} ({size_mb:.1f} MB) in {elapsed:.1f} s")
    if args.format == "onnx" and not args.quantize:
        print(
            "Jetson / TensorRT: trtexec --onnx="
            f"{output} --fp16 --saveEngine={output.with_suffix('.engine')}",
            file=sys.stderr,
        )
    return 0


def _write_atomically(output: Path, write: Callable[[Path], None]) -> None:
    """Write to a temp file beside ``output`` and rename: no half-written file on a kill."""
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{output.name}.", suffix=output.suffix, dir=output.parent
    )
    os.close(handle)
    try:
        write(Path(tmp_name))
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _check_onnx_loads(path: Path, input_hw: tuple[int, int]) -> None:
    """Open the file in ONNX Runtime and check its input shape, so a bad export fails here."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = tuple(session.get_inputs()[0].shape)
    if shape != (1, 3, *input_hw):
        raise RuntimeError(f"exported {path} has input {shape}, expected (1, 3, *{input_hw})")
