"""A Hugging Face hub cache written the way huggingface_hub writes it, for tests without a
hub (no tests here; ``test_hub_weights`` checks the library itself reads it).

``models--<owner>--<name>/blobs/<sha256>`` holds each file once;
``snapshots/<commit>/<path in the repo>`` are relative symlinks to the blobs;
``refs/<branch or tag>`` holds the commit hash (40 hex digits, no newline).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def cache_commit(
    cache: Path, repo_id: str, files: dict[str, Path | bytes], refs: tuple[str, ...] = ("main",)
) -> str:
    """One commit of ``repo_id`` holding ``files`` (path in the repository → a file to
    copy, or its bytes), with ``refs`` (branches, tags) pointing at it; returns the commit."""
    folder = repo_folder(cache, repo_id)
    contents = {
        name: Path(v).read_bytes() if isinstance(v, Path) else v for name, v in files.items()
    }
    listing = hashlib.sha1()  # a git commit id is a sha1: 40 hex digits, as here
    for name in sorted(contents):
        listing.update(name.encode() + hashlib.sha256(contents[name]).digest())
    commit = listing.hexdigest()
    for name, data in contents.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (folder / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(commit)  # huggingface_hub writes no newline
    return commit


def model_card(licence: str) -> bytes:
    """A README.md whose YAML front matter declares ``licence`` (hub spelling)."""
    return f"---\nlicense: {licence}\npipeline_tag: depth-estimation\n---\n# Test model\n".encode()


def use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """Point this process and its children at ``cache``: HF_HUB_CACHE for children, and
    huggingface_hub's constant, which this process read from the environment at import."""
    from huggingface_hub import constants

    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache
