"""``dav2-train``: the training pipeline's command line.

Every step reads the same YAML config (``--config``); ``--section`` picks the
config section when it is not named after the step (e.g. ``student --section
baseline``). Every step is ``run(config, section, ctx)`` of its module, found in
``STEPS``. Works alone or under ``torchrun --nproc_per_node N``.
``dav2-train da2k {propose,annotate,evaluate}`` builds and scores DA-2K style
benchmarks (``dav2-train da2k --help``; no config file).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from dav2_train import dist
from dav2_train.config import TRAIN_COMMANDS, ConfigError, load_config, section

# step -> module whose ``run(config, section, ctx)`` performs it
STEPS: dict[str, str] = {
    "synth": "dav2_train.synth",
    "teacher": "dav2_train.train",
    "student": "dav2_train.train",
    "finetune-metric": "dav2_train.train",
    "confidence": "dav2_train.train",
    "pseudo-label": "dav2_train.pseudo_label",
    "rgbd": "dav2_train.rgbd",
    "evaluate": "dav2_train.evaluate",
    "export": "dav2_train.export",
    "deploy-eval": "dav2_train.deploy_eval",
}


def run_step(config: dict, command: str, section_name: str, ctx: dist.DistContext) -> Any:
    if command not in STEPS:
        raise ConfigError(f"unknown step {command!r}; steps: {', '.join(STEPS)}")
    if command in TRAIN_COMMANDS:
        # A train section says which loop it runs; `student --section baseline` must agree.
        values = section(config, section_name)
        declared = values.setdefault("command", command)
        if declared != command:
            raise ConfigError(
                f"section {section_name!r} is a {declared!r} section; run "
                f"`dav2-train {declared} --section {section_name}`"
            )
    module = importlib.import_module(STEPS[command])
    return module.run(config, section_name, ctx)


def pipeline_steps(config: dict) -> list[tuple[str, str]]:
    """``pipeline:`` entries ``"command"`` or ``"command:section"`` → (command, section)."""
    entries = config.get("pipeline")
    if not entries:
        raise ConfigError(f"{config.get('_path')}: no `pipeline:` list of steps")
    steps = []
    for entry in entries:
        command, _, section_name = str(entry).partition(":")
        if command not in STEPS:
            raise ConfigError(f"pipeline entry {entry!r}: unknown step; steps: {', '.join(STEPS)}")
        steps.append((command, section_name or command.replace("-", "_")))
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dav2-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in (*STEPS, "pipeline"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True, help="YAML run config (training/configs/)")
        p.add_argument("--section", help="config section to use (default: the step's name)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help="override a config value (YAML syntax), repeatable",
        )
        p.add_argument(
            "--force",
            action="store_true",
            help="rerun finished steps whose config or inputs changed (otherwise refused)",
        )
        p.add_argument(
            "--adopt",
            action="store_true",
            help="keep outputs made before fingerprints existed, recording the current one",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["da2k"]:  # benchmark tools with their own arguments, no config file
        from dav2_train.da2k.cli import main as da2k_main

        return da2k_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        ctx = dist.setup(
            str(config.get("device", "auto")), config.get("threads", "auto"), args.force, args.adopt
        )
        try:
            if args.command == "pipeline":
                for command, section_name in pipeline_steps(config):
                    if ctx.is_main:
                        print(f"=== {command} [{section_name}] ===", flush=True)
                    run_step(config, command, section_name, ctx)
            else:
                section_name = args.section or args.command.replace("-", "_")
                run_step(config, args.command, section_name, ctx)
        finally:
            dist.teardown()
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"dav2-train {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
