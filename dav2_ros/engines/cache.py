"""On-disk cache of built engine artifacts (ONNX graphs, compiled TensorRT programs).

An entry is ``<key><suffix>`` plus ``<key>.json`` (its manifest: the fields that made
the key and the artifact's SHA-256). Both are written to a temp file and moved into
place with ``os.replace``, artifact first, so a killed build leaves either nothing or
an artifact without a manifest, which is rebuilt. An entry whose manifest is missing,
unreadable or disagrees with the artifact's checksum, or that fails to load, is
rebuilt with the reason logged: the cache is never trusted blindly.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)

CACHE_ENV = "DAV2_CACHE_DIR"
# Temp files of builds in progress: a process that exits mid-build (Ctrl-C while a worker
# thread exports) removes them with ``discard_unfinished_builds`` instead of leaving them.
_UNFINISHED: set[Path] = set()
MANIFEST_VERSION = 1
T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$DAV2_CACHE_DIR`` if set, else ``~/.cache/dav2_ros/engines``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dav2_ros" / "engines"


def resolve_cache_dir(cache_dir: Path | str | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 over the state dict: every tensor's name, dtype, shape and bytes.

    Two models with equal fingerprints compute the same function (given the same
    architecture), so a cached graph built from one serves the other.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        # A uint8 view hashes any dtype (bf16 has no numpy equivalent).
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(fields: dict) -> str:
    """Stable short key for a JSON-serialisable description of an artifact."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class CacheResult(Generic[T]):
    """What ``ArtifactCache.get_or_build`` produced and how."""

    value: T  # the loaded artifact (session, module, …)
    path: Path
    built: bool  # False: loaded from the cache
    build_s: float  # seconds spent building now (0 on a hit)
    rebuild_reason: str | None  # why an existing entry was not used, if there was one


class ArtifactCache:
    """Build-once store of files keyed by what they were built from."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = resolve_cache_dir(root)

    def paths(self, key: str, suffix: str) -> tuple[Path, Path]:
        return self.root / f"{key}{suffix}", self.root / f"{key}.json"

    def get_or_build(
        self,
        fields: dict,
        suffix: str,
        build: Callable[[Path], None],
        load: Callable[[Path], T],
    ) -> CacheResult[T]:
        """Load the entry for ``fields``; build it first if absent, stale or corrupt.

        ``build(path)`` writes the artifact to ``path`` (a temp name in the cache
        directory); ``load(path)`` opens it and raises if it is unusable.
        """
        key = cache_key(fields)
        artifact, _ = self.paths(key, suffix)
        reason = self._invalid_reason(key, suffix, fields)
        if reason is None:
            try:
                return CacheResult(load(artifact), artifact, False, 0.0, None)
            except Exception as exc:  # any load failure means a bad entry: rebuild it
                reason = f"it failed to load ({type(exc).__name__}: {exc})"
        if reason != "absent":
            log.warning("engine cache: rebuilding %s because %s", artifact, reason)
        build_s = self._build(key, suffix, fields, build)
        return CacheResult(
            load(artifact), artifact, True, build_s, None if reason == "absent" else reason
        )

    def _invalid_reason(self, key: str, suffix: str, fields: dict) -> str | None:
        artifact, manifest_path = self.paths(key, suffix)
        if not artifact.exists():
            return "absent"
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            return "its manifest is missing (an interrupted build?)"
        except (OSError, ValueError) as exc:
            return f"its manifest is unreadable ({exc})"
        if manifest.get("fields") != json.loads(json.dumps(fields, default=str)):
            return "its manifest describes a different build"
        actual = file_sha256(artifact)
        if manifest.get("sha256") != actual:
            return f"its checksum {actual[:12]}… differs from the recorded one"
        return None

    def _build(self, key: str, suffix: str, fields: dict, build: Callable[[Path], None]) -> float:
        self.root.mkdir(parents=True, exist_ok=True)
        artifact, manifest_path = self.paths(key, suffix)
        # Temp names live in the cache directory so os.replace is an atomic rename.
        handle, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=suffix, dir=self.root)
        os.close(handle)
        tmp = Path(tmp_name)
        _UNFINISHED.add(tmp)
        start = time.perf_counter()
        try:
            build(tmp)
            build_s = time.perf_counter() - start
            os.chmod(tmp, 0o644)  # mkstemp makes it private; cache entries are shareable
            manifest = {
                "version": MANIFEST_VERSION,
                "fields": fields,
                "sha256": file_sha256(tmp),
                "build_s": round(build_s, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            os.replace(tmp, artifact)
            _atomic_write_text(manifest_path, json.dumps(manifest, indent=2, default=str))
        finally:
            _UNFINISHED.discard(tmp)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return build_s


@atexit.register
def discard_unfinished_builds() -> None:
    """Delete the temp files (and files a builder named after them) of unfinished builds."""
    for tmp in list(_UNFINISHED):
        for path in tmp.parent.glob(glob.escape(tmp.name) + "*"):
            with contextlib.suppress(OSError):
                path.unlink()
        _UNFINISHED.discard(tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
