"""The parameter reference of docs/node.md, rendered from the node's parameter table.

``dav2_ros.ros.parameters.PARAMETERS`` is the one source (config/depth.yaml is rendered
from it too, by ``make params``); ``make docs`` runs this before Sphinx:

    python docs/render_parameters.py --out docs/_generated/parameters.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dav2_ros.paramspec import ParamSpec
from dav2_ros.ros.parameters import PARAMETERS
from dav2_ros.ros.params_yaml import GROUP_COMMENTS


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _allowed(spec: ParamSpec) -> str:
    if spec.choices:
        return ", ".join(f"`{choice}`" for choice in spec.choices)
    if spec.min_value is not None and spec.max_value is not None:
        low, high = spec.min_value, spec.max_value
        text = f"{low:g} … {high:g}"
        return text + (f", steps of {spec.step}" if spec.step > 1 else "")
    return ""


def _default(spec: ParamSpec) -> str:
    if isinstance(spec.default, bool):
        return f"`{str(spec.default).lower()}`"
    return f"`{spec.default!r}`" if isinstance(spec.default, str) else f"`{spec.default:g}`"


def render(specs: tuple[ParamSpec, ...] = PARAMETERS) -> str:
    """One table per top-level group, in table order."""
    groups: dict[str, list[ParamSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.name.split(".")[0] if "." in spec.name else "", []).append(spec)
    blocks = []
    for group, members in groups.items():
        title = f"`{group}.*`" if group else "top level"
        about = f": {GROUP_COMMENTS[group]}" if group in GROUP_COMMENTS else ""
        rows = [
            f"| `{s.name}` | {s.type_name} | {_default(s)} | {_cell(_allowed(s))} "
            f"| {'yes' if s.runtime else ''} | {_cell(s.description)} |"
            for s in members
        ]
        blocks.append(
            f"**{title}**{about}\n\n"
            "| parameter | type | default | allowed | set while running | description |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
        )
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render())
    print(f"render_parameters: {len(PARAMETERS)} parameters in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
