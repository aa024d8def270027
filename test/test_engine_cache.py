"""The engine cache: hits, rebuilds of stale/corrupt/interrupted entries, fingerprints."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from dav2_ros.engines.cache import ArtifactCache, cache_key, default_cache_dir, weights_fingerprint
from dav2_ros.model import DepthAnythingV2

FIELDS = {"kind": "test", "input_hw": [126, 168], "opset": 18}


class CountingBuilder:
    """Writes a known payload and counts how often it was asked to."""

    def __init__(self, payload: bytes = b"engine-bytes") -> None:
        self.payload = payload
        self.calls = 0

    def __call__(self, path) -> None:
        self.calls += 1
        path.write_bytes(self.payload)


def read_checked(path) -> bytes:
    data = path.read_bytes()
    if not data.startswith(b"engine"):
        raise ValueError("not an engine file")
    return data


def test_second_lookup_is_a_hit_without_building(tmp_path):
    cache, build = ArtifactCache(tmp_path), CountingBuilder()
    first = cache.get_or_build(FIELDS, ".bin", build, read_checked)
    second = cache.get_or_build(FIELDS, ".bin", build, read_checked)
    assert (first.built, second.built) == (True, False)
    assert build.calls == 1
    assert second.value == b"engine-bytes" and second.path == first.path


def test_different_fields_make_different_entries(tmp_path):
    cache, build = ArtifactCache(tmp_path), CountingBuilder()
    a = cache.get_or_build(FIELDS, ".bin", build, read_checked)
    b = cache.get_or_build({**FIELDS, "input_hw": [266, 350]}, ".bin", build, read_checked)
    assert a.path != b.path and build.calls == 2
    assert cache_key(FIELDS) == cache_key(dict(reversed(list(FIELDS.items()))))


def test_corrupt_artifact_is_rebuilt_with_logged_reason(tmp_path, caplog):
    cache, build = ArtifactCache(tmp_path), CountingBuilder()
    entry = cache.get_or_build(FIELDS, ".bin", build, read_checked)
    entry.path.write_bytes(b"engine-bytes-but-tampered")  # still loads, checksum differs
    with caplog.at_level(logging.WARNING, logger="dav2_ros.engines.cache"):
        again = cache.get_or_build(FIELDS, ".bin", build, read_checked)
    assert again.built and build.calls == 2
    assert "checksum" in again.rebuild_reason
    assert "checksum" in caplog.text and str(entry.path) in caplog.text
    assert again.value == b"engine-bytes"


def test_entry_that_fails_to_load_is_rebuilt(tmp_path):
    cache = ArtifactCache(tmp_path)
    bad = CountingBuilder(b"garbage")
    with pytest.raises(ValueError, match="not an engine file"):
        cache.get_or_build(FIELDS, ".bin", bad, read_checked)  # a fresh build must load
    good = CountingBuilder()
    rebuilt = cache.get_or_build(FIELDS, ".bin", good, read_checked)
    assert rebuilt.built and good.calls == 1
    assert "failed to load" in rebuilt.rebuild_reason


def test_missing_or_unreadable_manifest_means_rebuild(tmp_path):
    cache, build = ArtifactCache(tmp_path), CountingBuilder()
    entry = cache.get_or_build(FIELDS, ".bin", build, read_checked)
    _, manifest = cache.paths(cache_key(FIELDS), ".bin")
    manifest.unlink()  # as after a kill between the two renames
    assert (
        "manifest is missing"
        in cache.get_or_build(FIELDS, ".bin", build, read_checked).rebuild_reason
    )
    manifest.write_text("{not json")
    assert "unreadable" in cache.get_or_build(FIELDS, ".bin", build, read_checked).rebuild_reason
    record = json.loads(manifest.read_text())
    assert record["sha256"] and record["fields"] == FIELDS and entry.path.exists()
    assert build.calls == 3


def test_interrupted_build_leaves_no_entry_and_no_temp_files(tmp_path):
    cache = ArtifactCache(tmp_path)

    def dies_half_way(path):
        path.write_bytes(b"engine-half")
        raise KeyboardInterrupt  # as a Ctrl-C or kill during export

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build(FIELDS, ".bin", dies_half_way, read_checked)
    assert list(tmp_path.iterdir()) == []
    built = cache.get_or_build(FIELDS, ".bin", CountingBuilder(), read_checked)
    assert built.built and built.rebuild_reason is None


def test_weights_fingerprint_follows_the_tensors():
    torch.manual_seed(0)
    model = DepthAnythingV2("vitt6")
    twin = DepthAnythingV2("vitt6")
    twin.load_state_dict(model.state_dict())
    assert weights_fingerprint(model) == weights_fingerprint(twin)
    with torch.no_grad():
        twin.depth_head.scratch.output_conv2[2].bias.add_(1e-6)
    assert weights_fingerprint(model) != weights_fingerprint(twin)
    assert weights_fingerprint(model.to(torch.bfloat16)) != weights_fingerprint(twin)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DAV2_CACHE_DIR", str(tmp_path / "engines"))
    assert default_cache_dir() == tmp_path / "engines"
    assert ArtifactCache().root == tmp_path / "engines"
    assert ArtifactCache(tmp_path / "other").root == tmp_path / "other"
    monkeypatch.delenv("DAV2_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "dav2_ros", "engines")
