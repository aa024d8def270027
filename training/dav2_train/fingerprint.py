"""Honest runs: every output records the config and inputs that made it.

A step's fingerprint is ``{"config": …, "inputs": …, "digest": …}``: the settings
that change its result, and what it read (a teacher's weights by sha256, data splits
by their own fingerprints, image folders and bags by their file lists and sizes).
It is written to ``fingerprint.json`` in the step's output folder before work
starts. Next time, ``guard`` compares:
- no earlier output → a fresh start;
- same digest → the output stands (a finished step is skipped, a killed one resumes);
- anything else → refused with the list of what changed, unless ``--force``, which
  discards that output and redoes the step;
- an output without a fingerprint (made before fingerprints existed) is refused too;
  ``--adopt`` keeps it and records the current fingerprint, marked ``"adopted": true``
  (the user vouches for it; nothing was verified).
Downstream steps carry upstream digests as inputs, so a forced change upstream makes
every step that used it refuse (or, forced, redo) in turn.

Recordings are identified by name and size, not by content: hashing hours of bags
at every start would cost minutes; replacing a bag by another of the same size and
name goes unnoticed (say so in reviews of such data).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dav2_train.dist import DistContext

FILE = "fingerprint.json"


class StepChanged(ValueError):
    """A finished (or started) step whose config or inputs changed since it ran."""


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make(config: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    fingerprint = {"config": config, "inputs": inputs}
    return {**fingerprint, "digest": digest(fingerprint)}


def listing(path: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Names and sizes of a file or of the files below a folder (not their content)."""
    path = Path(path)
    if path.is_file():
        entries = [(path.name, path.stat().st_size)]
    else:
        entries = [
            (p.relative_to(path).as_posix(), p.stat().st_size)
            for p in sorted(path.rglob("*"))
            if p.is_file() and (suffixes is None or p.suffix.lower() in suffixes)
        ]
    return {
        "path": str(path.resolve()),
        "files": len(entries),
        "bytes": sum(size for _, size in entries),
        "digest": digest(entries),
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences of two fingerprints (config and inputs)."""
    before = _flatten({"config": old.get("config", {}), "inputs": old.get("inputs", {})})
    after = _flatten({"config": new.get("config", {}), "inputs": new.get("inputs", {})})
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            lines.append(f"{key} added ({_short(after[key])})")
        elif key not in after:
            lines.append(f"{key} removed (was {_short(before[key])})")
        elif before[key] != after[key]:
            lines.append(f"{key}: {_short(before[key])} -> {_short(after[key])}")
    return lines


def read(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write(directory: Path, fingerprint: dict[str, Any]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (FILE + ".tmp")
    tmp.write_text(json.dumps(fingerprint, indent=1, default=str))
    os.replace(tmp, directory / FILE)


def guard(
    directory: Path,
    fingerprint: dict[str, Any],
    label: str,
    ctx: DistContext,
    has_outputs: bool,
    discard: Callable[[], None],
) -> bool:
    """Check ``directory``'s earlier output against ``fingerprint``; True if it stands.

    False means a fresh start: nothing was there, or ``--force`` discarded an output
    made with other settings. Every rank decides from the same file before rank 0
    rewrites it, so all ranks agree.
    """
    stored = read(directory)
    keep = stored is not None and stored.get("digest") == fingerprint["digest"]
    adopt = stored is None and has_outputs and ctx.adopt and not ctx.force
    if not keep and not adopt and (stored is not None or has_outputs):
        if stored is None:
            what = [
                "it has no fingerprint.json (made by an older dav2-train); --adopt keeps it "
                "if you know it matches the current config"
            ]
        else:
            what = changes(stored, fingerprint) or ["the fingerprint digest"]
        if not ctx.force:
            raise StepChanged(
                f"{label} {directory} was made with other settings or inputs; changed: "
                f"{'; '.join(what)}. Rerun with --force to discard it and redo the step "
                "(or restore the old settings)"
            )
        if ctx.is_main:
            print(f"{label} --force: discarding {directory} ({'; '.join(what)})", flush=True)
    ctx.barrier()
    if ctx.is_main:
        if adopt:
            print(f"{label} --adopt: recording the current fingerprint for {directory}", flush=True)
            fingerprint = {**fingerprint, "adopted": True}
        elif not keep and (stored is not None or has_outputs):
            discard()
        write(directory, fingerprint)
    ctx.barrier()
    return keep or adopt


def guard_folder(
    directory: Path, fingerprint: dict[str, Any], label: str, ctx: DistContext
) -> bool:
    """``guard`` for a folder the step owns entirely: any file in it is an earlier output,
    and discarding it removes the folder."""
    directory = Path(directory)
    return guard(
        directory,
        fingerprint,
        label,
        ctx,
        has_outputs=directory.is_dir() and any(directory.iterdir()),
        discard=lambda: shutil.rmtree(directory),
    )
