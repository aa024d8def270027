"""Model-choice arguments shared by ``dav2 export`` and ``dav2 bench`` (``--download``
also by every command with a ``--checkpoint``).

A checkpoint (a path or an ``hf:`` name) goes through
``dav2_ros.model.checkpoints.load_model``; without one,
``--random-weights`` (or the bench default) builds an untrained network of the
chosen size, which has the real FLOPs but meaningless outputs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from dav2_ros.model.dpt import DEPTH_TYPES, DepthAnythingV2


@dataclass
class ChosenModel:
    model: DepthAnythingV2
    source: str  # where the weights came from, for reports
    input_size: int  # default network short side for this model


def add_model_arguments(parser: argparse.ArgumentParser, random_by_default: bool) -> None:
    group = parser.add_argument_group("model")
    default = "random weights of --encoder" if random_by_default else "the bundled model"
    group.add_argument(
        "--checkpoint",
        help=f"any supported checkpoint, or hf:<owner>/<repo>[/<file>][@<revision>] (default: "
        f"{default})",
    )
    add_download_argument(group)
    group.add_argument("--encoder", help="encoder size, e.g. vits, vitt (default: vits)")
    group.add_argument("--depth-type", choices=DEPTH_TYPES, help="relative | metric")
    group.add_argument("--max-depth", type=float, help="metres; metric models only")
    if not random_by_default:
        group.add_argument(
            "--random-weights",
            action="store_true",
            help="untrained network of --encoder (for testing the toolchain only)",
        )


def add_download_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--download",
        action="store_true",
        help="an hf: --checkpoint missing from the Hugging Face cache is downloaded "
        "(default: cache only; `dav2 fetch NAME` downloads ahead)",
    )


def build_model(args: argparse.Namespace, random_by_default: bool) -> ChosenModel:
    """The model the arguments ask for (CPU, fp32, eval)."""
    use_random = args.checkpoint is None and (
        random_by_default or getattr(args, "random_weights", False)
    )
    if use_random:
        from dav2_ros.model.random_weights import randomize_weights_

        depth_type = args.depth_type or "relative"
        max_depth = args.max_depth if args.max_depth is not None else 20.0
        model = DepthAnythingV2(args.encoder or "vits", depth_type, max_depth)
        # Non-trivial outputs (default init leaves a relative head at zero).
        randomize_weights_(model, seed=0)
        return ChosenModel(model.eval(), f"random {model.encoder_name} weights", 518)
    from dav2_ros.model.checkpoints import load_model

    loaded = load_model(
        args.checkpoint,
        encoder=args.encoder,
        depth_type=args.depth_type,
        max_depth=args.max_depth,
        download=args.download,
    )
    return ChosenModel(loaded.model.eval(), loaded.meta.source, loaded.meta.input_size)


def parse_image_size(text: str) -> tuple[int, int]:
    """``"640x480"`` → ``(480, 640)`` (height, width)."""
    width, sep, height = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        w, h = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size must look like WIDTHxHEIGHT (e.g. 640x480), got {text!r}"
        ) from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return h, w
