"""The ``dav2`` command: one sub-command per module in ``dav2_ros.commands``.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``;
its docstring's first line is the help text. Modules are imported lazily so
``dav2 --help`` stays fast and a heavy import only happens for the command used.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMANDS = ("predict", "export", "bench", "calibrate", "demo", "fetch")


def _available() -> list[str]:
    return [c for c in COMMANDS if importlib.util.find_spec(f"dav2_ros.commands.{c}")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dav2", description="Depth Anything V2 depth for ROS 2: tools."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _available():
        module = importlib.import_module(f"dav2_ros.commands.{name}")
        summary = (module.__doc__ or name).strip().splitlines()[0]
        command = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        # Expected failures (bad file, bad option, unavailable backend): one clear line.
        print(f"dav2 {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
