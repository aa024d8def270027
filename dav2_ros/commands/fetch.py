"""Download weights named hf:<owner>/<repo>[/<file>][@<revision>] into the Hugging Face cache.

Prints each name's local path (the file, or the snapshot folder of a Transformers
repository) on stdout and its licence on stderr. The cache is huggingface_hub's own:
``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ~/.cache/huggingface/hub. Everything
that loads a checkpoint then finds the name there without a network.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="e.g. hf:depth-anything/Depth-Anything-V2-Small/depth_anything_v2_vits.pth or "
        "hf:depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
    )


def run(args: argparse.Namespace) -> int:
    from dav2_ros.model.hub import declared_licence, fetch, parse_hub_name
    from dav2_ros.model.official_weights import licence_notice

    names = [parse_hub_name(text) for text in args.names]  # every name checked before a download
    for name in names:
        weights = fetch(name)
        print(licence_notice(name.repo_id, declared_licence(weights)), file=sys.stderr)
        print(weights.path, flush=True)
    return 0
