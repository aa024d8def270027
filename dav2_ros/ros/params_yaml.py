"""config/depth.yaml, rendered from the node's parameter table (``make params``).

One source for parameters: ``dav2_ros.ros.parameters.PARAMETERS`` holds every name,
default, description and choice; this module writes them as the nested params file
(``/**`` → ``ros__parameters`` → groups by the dotted names, in table order), each
parameter under its description as a comment. A branch that adds a parameter edits
the table and regenerates the file; ``test/test_launch.py`` fails while they differ.

    python -m dav2_ros.ros.params_yaml                  # rewrite config/depth.yaml
    python -m dav2_ros.ros.params_yaml --check          # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import yaml

from dav2_ros.paramspec import ParamSpec, ParamValue
from dav2_ros.ros.parameters import PARAMETERS

DEPTH_YAML = Path(__file__).resolve().parents[2] / "config" / "depth.yaml"
WIDTH = 100  # comment lines are wrapped to this many characters

HEADER = """\
# Parameters of the depth node (executable `depth_node`, node name `dav2_depth`).
# Works with `ros2 launch dav2_ros depth.launch.py params_file:=...` and with
# `depth_node --ros-args --params-file config/depth.yaml`. The `/**` key applies the
# same values to every node of the file, whatever its namespace (multi-camera setups).
# Generated from the parameter table (dav2_ros/ros/parameters.py, scale/settings.py) by
# `make params`: change a parameter there and regenerate; docs/node.md lists them all.
"""

# What a group of parameters is for; the parameters' own descriptions say the rest.
GROUP_COMMENTS = {
    "model": "the network and its weights",
    "engine": "how the network runs (docs/engines.md)",
    "output": "the published depth image",
    "points": "the organised point cloud `points`",
    "camera": "how pixels become rays for `points` and `scan`",
    "scan": "`scan` (LaserScan) as depthimage_to_laserscan computes it, for Nav2",
    "temporal": "steadier depth scale from frame to frame (docs/node.md)",
    "qos": "reliability of the subscriptions and publishers (docs/transport.md)",
    "scale": "metres for relative models, re-fitted ones for metric models (docs/scale.md)",
}


def _scalar(value: ParamValue) -> str:
    """A YAML scalar: ``auto``, ``''``, ``0.05``, ``true``."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _comment(text: str, indent: str) -> list[str]:
    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(text, WIDTH - len(indent) - 2, break_on_hyphens=False)
    ]


def _description(spec: ParamSpec) -> str:
    """The spec's description, plus its choices where the description does not name them."""
    words = set(spec.description.replace(",", " ").replace(":", " ").split())
    if spec.choices and not set(spec.choices) <= words:
        return f"{spec.description} (one of: {', '.join(spec.choices)})"
    return spec.description


def render_depth_yaml(specs: Iterable[ParamSpec] = PARAMETERS) -> str:
    """The text of config/depth.yaml for ``specs``: each group where its first parameter
    is in the table, its parameters in table order (a later ``points.x`` joins ``points``)."""
    tree: dict = {}
    for spec in specs:
        *groups, leaf = spec.name.split(".")
        level = tree
        for group in groups:
            level = level.setdefault(group, {})
        level[leaf] = spec
    lines = [HEADER.rstrip("\n"), "/**:", "  ros__parameters:"]
    _emit(tree, [], lines)
    return "\n".join(lines) + "\n"


def _emit(tree: dict, path: list[str], lines: list[str]) -> None:
    indent = "    " + "  " * len(path)
    for key, item in tree.items():
        if isinstance(item, ParamSpec):
            lines += _comment(_description(item), indent)
            lines.append(f"{indent}{key}: {_scalar(item.default)}")
            continue
        group = ".".join([*path, key])
        if group in GROUP_COMMENTS:
            lines += _comment(GROUP_COMMENTS[group], indent)
        lines.append(f"{indent}{key}:")
        _emit(item, [*path, key], lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEPTH_YAML, help="default: config/depth.yaml")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if different")
    args = parser.parse_args(argv)
    text = render_depth_yaml()
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(
                f"{args.out} differs from the parameter table: run `make params`", file=sys.stderr
            )
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
