"""``dav2-train da2k {propose,annotate,evaluate}``: build and use DA-2K style benchmarks.

Bad input (no images, an expert that does not load, a malformed annotations file,
a busy port, …) ends with one ``error:`` line naming the thing and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dav2_train.da2k.annotations import AnnotationError

PROG = "dav2-train da2k"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("propose", help="images → point pairs → expert votes → queue")
    p.add_argument("images", help="image folder, or a rosbag2 (directory, .db3, .mcap)")
    p.add_argument("--out", type=Path, required=True, help="new folder for the proposal")
    p.add_argument("--topic", help="image topic in a rosbag2")
    p.add_argument("--every", type=int, default=1, help="keep every N-th image (default 1)")
    p.add_argument(
        "--experts",
        nargs="+",
        required=True,
        metavar="CKPT",
        help="two or more checkpoints in any format `dav2 predict` reads, or hf: names in the "
        "Hugging Face cache (`dav2 fetch`) ('bundled' = the bundled model)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        metavar="N",
        help="network short side, one for all experts or one per expert (default: each "
        "checkpoint's own, else 518)",
    )
    p.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt | auto")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--pairs-per-image", type=int, default=8)
    p.add_argument(
        "--agree-margin",
        type=float,
        default=0.1,
        help="auto-label a pair only if every expert agrees with a relative disparity "
        "difference above this (default 0.1)",
    )
    p.add_argument("--sam-checkpoint", help="SAM weights: segments from segment-anything")
    p.add_argument("--sam-model", choices=("vit_h", "vit_l", "vit_b"), help="SAM size")
    p.add_argument(
        "--scene-type",
        help="scene type of every image of this run (e.g. indoor, outdoor, aerial); "
        "default: the image's folder inside the input",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")

    a = sub.add_parser("annotate", help="web page on 127.0.0.1 for the queued pairs")
    a.add_argument("folder", type=Path, help="the folder `propose --out` wrote")
    a.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free one)")

    e = sub.add_parser("evaluate", help="pair accuracy of a checkpoint on annotations.json")
    e.add_argument("--annotations", type=Path, required=True, help="DA-2K annotations.json")
    e.add_argument(
        "--checkpoint", default="bundled", help="model, a path or hf: name (default: bundled)"
    )
    e.add_argument("--input-size", type=int, help="network short side (default: checkpoint's)")
    e.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt | auto")
    e.add_argument("--device", default="cpu", help="cpu | cuda")
    e.add_argument(
        "--scene-types",
        type=Path,
        help="JSON {image path: scene type}; default: the folder each image sits in",
    )
    e.add_argument("--json", type=Path, help="also write the result as JSON here")
    e.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "annotate":
            return _annotate(args)
        return _propose(args) if args.command == "propose" else _evaluate(args)
    except KeyboardInterrupt:
        return 130
    except (AnnotationError, ValueError, OSError, RuntimeError) as err:
        # Every expected failure is one of these with a message that names the thing.
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 2


def _set_threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _propose(args: argparse.Namespace) -> int:
    from dav2_train.da2k.propose import ProposeOptions, run_propose

    _set_threads(args.threads)
    options = ProposeOptions(
        images=args.images,
        out=args.out,
        experts=args.experts,
        input_sizes=args.input_size,
        backend=args.backend,
        device=args.device,
        topic=args.topic,
        every=args.every,
        pairs_per_image=args.pairs_per_image,
        agree_margin=args.agree_margin,
        sam_checkpoint=args.sam_checkpoint,
        sam_model=args.sam_model,
        scene_type=args.scene_type,
        seed=args.seed,
    )
    summary = run_propose(options)
    print(
        f"propose: {summary['images']} images, {summary['pairs']} pairs: {summary['auto']} "
        f"labelled automatically (every expert agrees, margin > {args.agree_margin}), "
        f"{summary['queued']} queued for a person"
    )
    print(f"next: dav2-train da2k annotate {args.out}")
    return 0


def _annotate(args: argparse.Namespace) -> int:
    # Light imports only (no torch): the page should be up in a second.
    from dav2_train.da2k.server import serve
    from dav2_train.da2k.session import AnnotationSession

    serve(AnnotationSession(args.folder), args.port)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from dav2_train.da2k.annotations import read_annotations
    from dav2_train.da2k.evaluate import evaluate_annotations, format_report
    from dav2_train.da2k.experts import load_expert

    read_annotations(args.annotations)  # a malformed file fails before a model loads
    _set_threads(args.threads)
    model = load_expert(args.checkpoint, args.input_size, args.backend, args.device)
    result = evaluate_annotations(args.annotations, model, args.scene_types)
    model.close()
    if args.json:
        args.json.write_text(json.dumps({"model": model.describe()} | result, indent=1) + "\n")
    print(format_report(result, model.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
