"""Hostile and damaged weights files: refused with a clear ``CheckpointError``, never run.

Complements test_checkpoints.py (one example per refusal) with (1) hypothesis-driven
damage to real files of every format (truncation, flipped bytes, overwritten headers):
the loader either returns a complete model or raises ``CheckpointError`` naming the
file, never another exception; (2) a code-carrying pickle in every carrier the loader
opens (zip and legacy torch.save, raw pickle, wrapped state dict, transformers
``pytorch_model.bin``); (3) the node given a malicious checkpoint exits with a clear
error and the payload never runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import (
    CheckpointError,
    ModelMeta,
    load_model,
    save_hf_model,
    save_model,
)
from dav2_ros.model.random_weights import randomize_weights_

TEST_DIR = Path(__file__).resolve().parent
DEPTH_NODE = Path(sys.executable).parent / "depth_node"


class Payload:
    """Unpickling this creates ``target``: the proof that code from the file ran."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture(scope="module")
def tiny() -> DepthAnythingV2:
    return randomize_weights_(DepthAnythingV2("vitt", "metric", 10.0), seed=5).eval()


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory, tiny: DepthAnythingV2) -> dict[str, Path]:
    """One intact file (or directory) per format, copied before each damage."""
    root = tmp_path_factory.mktemp("originals")
    official = root / "depth_anything_v2_vitt_metric_hypersim.pth"
    torch.save(tiny.state_dict(), official)
    legacy = root / "legacy_vitt_metric_hypersim.pth"
    torch.save(tiny.state_dict(), legacy, _use_new_zipfile_serialization=False)
    own = save_model(tiny, ModelMeta("vitt", "metric", 10.0), root / "own" / "tiny")
    hf_dir = save_hf_model(tiny, root / "hf")
    return {"official": official, "legacy": legacy, "own": own, "hf": hf_dir / "model.safetensors"}


def _copy_format(originals: dict[str, Path], fmt: str, into: Path) -> Path:
    """A fresh copy of the format's files in ``into``; returns the file to damage."""
    source = originals[fmt]
    if fmt in ("own", "hf"):
        target_dir = into / fmt
        shutil.copytree(source.parent, target_dir, dirs_exist_ok=True)
        return target_dir / source.name
    target = into / source.name
    shutil.copyfile(source, target)
    return target


def _load_target(fmt: str, damaged: Path) -> Path:
    return damaged.parent if fmt == "hf" else damaged


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fmt=st.sampled_from(["official", "legacy", "own", "hf"]),
    damage=st.sampled_from(["truncate", "flip", "zero_head", "garbage_tail", "empty"]),
    where=st.floats(0.0, 0.999),
    byte=st.integers(1, 255),
)
def test_damaged_files_load_completely_or_raise_checkpoint_error_naming_the_file(
    originals: dict[str, Path], tmp_path: Path, fmt: str, damage: str, where: float, byte: int
) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"{fmt}-{damage}-", dir=tmp_path))
    target = _copy_format(originals, fmt, work)
    data = bytearray(target.read_bytes())
    position = int(where * len(data))
    if damage == "truncate":
        data = data[:position]
    elif damage == "flip":
        data[position] ^= byte
    elif damage == "zero_head":
        data[: max(64, position // 10)] = bytes(max(64, position // 10))
    elif damage == "garbage_tail":
        data[position:] = bytes([byte]) * (len(data) - position)
    else:
        data = bytearray()
    target.write_bytes(bytes(data))
    try:
        loaded = load_model(_load_target(fmt, target))
    except CheckpointError as exc:
        assert target.name in str(exc) or target.parent.name in str(exc), str(exc)
        return
    # A flipped byte inside tensor data still loads: then as a complete model.
    assert loaded.meta.encoder == "vitt"
    assert set(loaded.model.state_dict()) == set(DepthAnythingV2("vitt").state_dict())


def _write_payload(carrier: str, directory: Path, marker: Path) -> Path:
    state = {"pretrained.cls_token": torch.zeros(1, 1, 192), "evil": Payload(marker)}
    if carrier == "torch zip":
        path = directory / "depth_anything_v2_vitt.pth"
        torch.save(state, path)
    elif carrier == "torch legacy":
        path = directory / "depth_anything_v2_vitt.pth"
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif carrier.startswith("raw pickle"):
        path = directory / "depth_anything_v2_vitt.pt"
        path.write_bytes(pickle.dumps(state, protocol=int(carrier[-1])))
    elif carrier == "wrapped state dict":
        path = directory / "train_state.ckpt"
        torch.save({"model": state, "optimizer": {"step": Payload(marker)}}, path)
    else:  # transformers directory with a pickled pytorch_model.bin
        path = directory / "hf_evil"
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"model_type": "depth_anything"}))
        torch.save(state, path / "pytorch_model.bin")
    return path


CARRIERS = ["torch zip", "torch legacy", "raw pickle 2", "raw pickle 5", "wrapped state dict",
            "hf bin"]  # fmt: skip


@pytest.mark.parametrize("carrier", CARRIERS)
def test_code_carrying_pickle_is_refused_in_every_carrier_and_never_runs(
    tmp_path: Path, carrier: str
) -> None:
    marker = tmp_path / "payload_ran"
    path = _write_payload(carrier, tmp_path, marker)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = str(caught.value)
    assert str(path.name) in message
    if carrier == "raw pickle 5":  # torch reads no protocol-5 frame: refused as not torch
        assert "not a PyTorch checkpoint" in message, message
    else:
        assert "refused" in message and "run code" in message, message
    assert not marker.exists(), "code from the weights file ran"


def test_payload_is_live_so_the_refusals_mean_something(tmp_path: Path) -> None:
    marker = tmp_path / "control_ran"
    path = _write_payload("torch zip", tmp_path, marker)
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


@pytest.mark.parametrize("carrier", ["torch legacy, damaged tail", "torch zip, crafted"])
def test_a_global_name_of_a_whole_tail_is_refused_before_torch_chews_on_it(
    tmp_path: Path, carrier: str
) -> None:
    """torch explains a refused global with a regex quadratic in its name: a damaged legacy
    file whose tail is one repeated ``c`` byte (GLOBAL) hung the fuzz test above for
    > 10 min. 30,000 bytes take torch ~15 s to explain; the loader refuses them at once."""
    tail = b"c" * 30_000
    path = tmp_path / "depth_anything_v2_vitt.pth"
    if carrier.startswith("torch legacy"):
        buffer = io.BytesIO()
        torch.save({"pretrained.cls_token": torch.zeros(1, 1, 192)}, buffer,
                   _use_new_zipfile_serialization=False)  # fmt: skip
        header = io.BytesIO(buffer.getvalue())
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(header)
        path.write_bytes(buffer.getvalue()[: header.tell()] + tail)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", b"\x80\x02" + tail + b"\nx\n.")
    refusal = "names a global longer than 1,000 characters"
    with pytest.raises(CheckpointError, match=refusal) as caught:
        load_model(path)
    assert path.name in str(caught.value)


def test_wrong_architecture_is_refused_naming_what_fits(tmp_path: Path) -> None:
    vits = DepthAnythingV2("vits", "relative").state_dict()
    path = tmp_path / "depth_anything_v2_vits.pth"
    torch.save(vits, path)
    with pytest.raises(CheckpointError, match=r"says encoder 'vitb'.*tensors fit vits"):
        load_model(path, encoder="vitb")
    foreign = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.bias": torch.zeros(10)}, foreign)
    with pytest.raises(CheckpointError, match=r"resnet\.pth: tensor names match no known layout"):
        load_model(foreign)


@pytest.mark.ros
def test_node_given_a_malicious_checkpoint_exits_with_clear_error_and_payload_never_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "payload_ran"
    evil = _write_payload("torch zip", tmp_path, marker)
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    model:\n"
        f"      checkpoint: '{evil}'\n    engine:\n      backend: torch\n"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    start = time.monotonic()
    done = subprocess.run(
        [str(DEPTH_NODE), "--ros-args", "--params-file", str(params)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert "cannot start" in log and "model.checkpoint" in log, log
    assert "refused to load" in log and "run code" in log, log
    assert "Traceback" not in log, log
    assert not marker.exists(), "the node ran code from the weights file"
    assert time.monotonic() - start < 120


def test_build_cut_short_by_exit_leaves_no_half_written_cache_file(tmp_path: Path) -> None:
    """What ``depth_node`` does on SIGINT mid-export: discard the build's temp files."""
    from dav2_ros.engines.cache import ArtifactCache, discard_unfinished_builds

    writing, release = threading.Event(), threading.Event()

    def slow_build(path: Path) -> None:
        path.write_bytes(b"half an onnx graph")
        Path(str(path) + ".data").write_bytes(b"external tensors")  # a builder's side file
        writing.set()
        release.wait(10)

    cache = ArtifactCache(tmp_path / "cache")

    def build_entry() -> None:
        # In the node the process is gone by now; here the build resumes, finds its
        # temp file deleted and fails, as it should.
        with contextlib.suppress(FileNotFoundError):
            cache.get_or_build({"kind": "test"}, ".onnx", slow_build, lambda path: path)

    builder = threading.Thread(target=build_entry, daemon=True)
    builder.start()
    assert writing.wait(10)
    assert [p.name for p in (tmp_path / "cache").iterdir()], "the build must be under way"
    discard_unfinished_builds()
    assert list((tmp_path / "cache").iterdir()) == []
    release.set()
    builder.join(10)
