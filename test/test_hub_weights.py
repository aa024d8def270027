"""Weights named ``hf:…``, resolved through a Hugging Face cache laid out as
huggingface_hub writes it (``hub_cache``), offline: names, the node's loader, ``dav2
predict``, revisions, licences, and the clear failures (not cached, unreachable hub)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)
from hub_cache import cache_commit, model_card, use_cache

from dav2_ros.cli import main
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model, save_hf_model
from dav2_ros.model.hub import (
    HubNameError,
    NotCachedError,
    declared_licence,
    parse_hub_name,
    resolve,
)
from dav2_ros.model.official_weights import OFFICIAL_REPOS, is_non_commercial, official_repo
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.ros import startup
from dav2_ros.ros.parameters import settings_from_values

SMALL = "hf:depth-anything/Depth-Anything-V2-Small/depth_anything_v2_vits.pth"
VKITTI_LARGE = (
    "hf:depth-anything/Depth-Anything-V2-Metric-VKITTI-Large/"
    "depth_anything_v2_metric_vkitti_vitl.pth"
)
INDOOR_HF = "hf:depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"
CUSTOM = "hf:someone/tiny-depth/weights/model.pth"
# Runs a dav2 command in a fresh process, recording every attempt to reach a network and
# the command's own time (imports excluded).
NO_NETWORK_RUN = """
import json, sys, time
import dav2_ros.engines, dav2_ros.model.checkpoints  # imported before the clock starts
from dav2_ros.cli import main
attempts = []
sys.addaudithook(lambda event, args: event in ("socket.connect", "socket.getaddrinfo")
                 and attempts.append(event))
start = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "network": attempts}))
"""


def tiny(seed: int) -> DepthAnythingV2:
    """A ViT-Tiny student with random weights: official key names, 5 M parameters."""
    return randomize_weights_(DepthAnythingV2("vitt", "metric", 20.0), seed=seed).eval()


def official_pth(model: DepthAnythingV2, path: Path) -> Path:
    """The release's layout: a plain state dict saved with torch.save."""
    torch.save(model.state_dict(), path)
    return path


def assert_same_tensors(model: DepthAnythingV2, reference: DepthAnythingV2) -> None:
    got, expected = model.state_dict(), reference.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_cache(monkeypatch, tmp_path / "hub")


def cache_name(cache: Path, name: str, files: dict, refs: tuple[str, ...] = ("main",)) -> str:
    return cache_commit(cache, parse_hub_name(name).repo_id, files, refs)


def image_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (42, 56, 3), dtype=np.uint8))
    return path


def run_dav2(args: list[str], env: dict[str, str]) -> tuple[dict, subprocess.CompletedProcess]:
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_RUN, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result


def child_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return env | {"OMP_NUM_THREADS": "1", **values}


# --- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repo_id", "filename", "revision"),
    [
        (SMALL, "depth-anything/Depth-Anything-V2-Small", "depth_anything_v2_vits.pth", None),
        (INDOOR_HF, "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf", None, None),
        ("hf:owner/repo/sub/dir/model.pth@v1.0", "owner/repo", "sub/dir/model.pth", "v1.0"),
        ("hf:owner/repo@" + "ab" * 20, "owner/repo", None, "ab" * 20),
    ],
)
def test_names_split_into_repository_file_and_revision(text, repo_id, filename, revision):
    name = parse_hub_name(text)
    assert (name.repo_id, name.filename, name.revision) == (repo_id, filename, revision)
    assert str(name) == text
    with pytest.raises(HubNameError, match="does not start with 'hf:'"):
        parse_hub_name(text[len("hf:") :])  # without the prefix it is a path, not a name


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("hf:", "needs an owner and a name"),
        ("hf:Depth-Anything-V2-Small", "needs an owner and a name"),
        ("hf:owner//model.pth", "is not a repository id"),
        ("hf:own er/repo/model.pth", "is not a repository id"),
        ("hf:owner/re--po/model.pth", "is not a repository id"),
        ("hf:owner/repo/", "empty, '.' or '..' segment"),
        ("hf:owner/repo/../model.pth", "empty, '.' or '..' segment"),
        ("hf:owner/repo/model.pth@", "revision after '@'"),
        ("hf:owner/repo/model.pth@v1@v2", "revision after '@'"),
    ],
)
def test_malformed_names_are_refused_with_the_expected_form(text, why):
    with pytest.raises(HubNameError) as error:
        load_model(text)
    message = str(error.value)
    assert why in message and repr(text) in message
    assert "expected hf:<owner>/<repo>[/<file in the repo>][@<revision>]" in message


def test_an_official_repository_named_in_the_wrong_layout_gets_its_right_name():
    with pytest.raises(HubNameError, match=f"use {SMALL}$"):
        load_model("hf:depth-anything/Depth-Anything-V2-Small")
    with pytest.raises(HubNameError, match=f"name no file; use {INDOOR_HF}@v1$"):
        load_model(f"{INDOOR_HF}/model.safetensors@v1")


def test_the_official_table_holds_every_release_with_its_licence():
    assert len(OFFICIAL_REPOS) == 18  # 3 sizes × (relative, -hf, Hypersim, VKITTI, Indoor, Outdoor)
    large = official_repo("depth-anything/depth-anything-v2-large")  # hub ids ignore case
    assert (large.encoder, large.depth_type, large.licence) == ("vitl", "relative", "CC-BY-NC-4.0")
    for repo in OFFICIAL_REPOS:
        small = repo.encoder == "vits"
        assert repo.licence == ("Apache-2.0" if small else "CC-BY-NC-4.0")
        assert is_non_commercial(repo.licence) is not small
        assert (repo.max_depth_m is not None) == (repo.depth_type == "metric")


# --- the cache --------------------------------------------------------------------------


def test_the_test_cache_is_what_huggingface_hub_reads(cache, monkeypatch):
    from huggingface_hub import constants, hf_hub_download, scan_cache_dir

    # hf_hub_download fetches an agent registry for its user agent unless offline.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    first = cache_commit(cache, "someone/tiny-depth", {"weights/model.pth": b"one"})
    second = cache_commit(cache, "someone/tiny-depth", {"weights/model.pth": b"two"}, ("v2",))
    for revision, content in ((None, b"one"), ("v2", b"two"), (first, b"one"), (second, b"two")):
        path = hf_hub_download(
            "someone/tiny-depth", "weights/model.pth", revision=revision, local_files_only=True
        )
        assert Path(path).is_symlink() and Path(path).read_bytes() == content
    report = scan_cache_dir(cache)  # the library's own consistency check of a cache
    assert not report.warnings, report.warnings
    (repo,) = report.repos
    assert {r.commit_hash: set(r.refs) for r in repo.revisions} == {
        first: {"main"},
        second: {"v2"},
    }


# --- loading by name --------------------------------------------------------------------


def test_the_node_loader_reads_an_official_file_by_name_with_what_the_repository_says(
    cache, tmp_path
):
    source = tiny(seed=1)
    commit = cache_name(cache, VKITTI_LARGE, {
        "depth_anything_v2_metric_vkitti_vitl.pth": official_pth(source, tmp_path / "w.pth")
    })  # fmt: skip
    lines: list[str] = []
    loaded = startup.load_model(
        settings_from_values({"model.checkpoint": VKITTI_LARGE}), lines.append
    )
    meta = loaded.meta
    assert (meta.format, meta.depth_type, meta.max_depth) == ("official", "metric", 80.0)
    assert meta.encoder == "vitt"  # the tensors' shapes decide; the name would say vitl
    assert_same_tensors(loaded.model, source)
    assert meta.provenance["hub_name"] == VKITTI_LARGE
    assert meta.provenance["hub_commit"] == commit
    assert meta.provenance["licence"] == "CC-BY-NC-4.0"
    assert lines[-1] == (
        "model licence: CC-BY-NC-4.0 (depth-anything/Depth-Anything-V2-Metric-VKITTI-Large): "
        "non-commercial"
    )
    assert any("names a vitl repository but its tensors are vitt's" in line for line in lines)

    values = {"model.checkpoint": VKITTI_LARGE, "model.max_depth": 50.0}
    assert startup.load_model(settings_from_values(values)).meta.max_depth == 50.0  # user wins
    values = {"model.checkpoint": VKITTI_LARGE, "model.depth_type": "relative"}
    assert startup.load_model(settings_from_values(values)).meta.depth_type == "relative"


def test_a_transformers_repository_loads_by_name(cache, tmp_path, capsys):
    from transformers import DepthAnythingForDepthEstimation

    source = tiny(seed=2)
    save_hf_model(source, tmp_path / "ours")
    # Written by transformers' reference implementation itself, as the hub's files are.
    DepthAnythingForDepthEstimation.from_pretrained(tmp_path / "ours").save_pretrained(
        tmp_path / "hf"
    )
    files = {name: tmp_path / "hf" / name for name in ("config.json", "model.safetensors")}
    commit = cache_name(cache, INDOOR_HF, files)
    loaded = load_model(INDOOR_HF)
    meta = loaded.meta
    assert (meta.format, meta.depth_type, meta.max_depth) == ("hf", "metric", 20.0)
    assert Path(meta.source).name == commit  # the snapshot folder
    assert_same_tensors(loaded.model, source)
    # No model card cached: the licence comes from the table; the CLI's line goes to stderr.
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "model licence: Apache-2.0 (depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf)"
        )
    )


def test_a_revision_by_tag_or_commit_picks_its_snapshot_and_card(cache, tmp_path):
    first, second = tiny(seed=3), tiny(seed=4)
    main_commit = cache_name(cache, CUSTOM, {
        "weights/model.pth": official_pth(first, tmp_path / "a.pth"),
        "README.md": model_card("mit"),
    })  # fmt: skip
    tag_commit = cache_name(cache, CUSTOM, {
        "weights/model.pth": official_pth(second, tmp_path / "b.pth"),
    }, refs=("v2",))  # fmt: skip
    cases = [
        (CUSTOM, first, "model licence: MIT (someone/tiny-depth)"),
        (f"{CUSTOM}@{main_commit}", first, "model licence: MIT (someone/tiny-depth)"),
        (f"{CUSTOM}@v2", second, "model licence: unknown (someone/tiny-depth)"),
        (f"{CUSTOM}@{tag_commit}", second, "model licence: unknown (someone/tiny-depth)"),
    ]
    for name, expected, licence in cases:
        lines: list[str] = []
        loaded = load_model(name, log=lines.append)
        assert_same_tensors(loaded.model, expected)
        assert lines[-1].startswith(licence), (name, lines)
    with pytest.raises(NotCachedError, match="weights/model.pth at revision v3 is missing"):
        load_model(f"{CUSTOM}@v3")


def test_an_unreadable_model_card_leaves_the_licence_to_the_official_table(cache):
    broken = b"---\nlicense: [cc-by-4.0\n---\n"  # YAML that does not parse
    cache_name(cache, VKITTI_LARGE, {
        "depth_anything_v2_metric_vkitti_vitl.pth": b"not read here", "README.md": broken,
    })  # fmt: skip
    assert declared_licence(resolve(parse_hub_name(VKITTI_LARGE))) == "CC-BY-NC-4.0"


# --- the command line --------------------------------------------------------------------


def test_dav2_predict_by_name_reads_hf_home_and_matches_the_file(tmp_path):
    source = tiny(seed=5)
    weights = official_pth(source, tmp_path / "depth_anything_v2_vits.pth")
    home = tmp_path / "hf_home"
    cache_name(home / "hub", SMALL, {"depth_anything_v2_vits.pth": weights})
    image = image_file(tmp_path / "scene.png")
    expected, got = tmp_path / "expected.npy", tmp_path / "by_name.npy"
    args = ["predict", str(image), "--input-size", "28", "--raw-out"]
    assert main([*args, str(expected), "--checkpoint", str(weights)]) == 0

    args = [*args, str(got), "--checkpoint", SMALL, "--download"]
    outcome, result = run_dav2(args, child_env(HF_HOME=str(home)))  # HF_HUB_CACHE unset
    assert outcome["code"] == 0, result.stderr
    assert outcome["network"] == []  # cached: --download has nothing to fetch
    np.testing.assert_array_equal(np.load(got), np.load(expected))
    assert "model licence: Apache-2.0 (depth-anything/Depth-Anything-V2-Small)" in result.stderr


@pytest.mark.parametrize("offline", ["1", ""], ids=["HF_HUB_OFFLINE=1", "online"])
def test_a_name_missing_from_the_cache_fails_at_once_without_network(tmp_path, offline):
    closed_port = free_port()  # were anything to try the hub, it would find nobody there
    env = child_env(
        HF_HUB_CACHE=str(tmp_path / "empty"),
        HF_HUB_OFFLINE=offline,
        HF_ENDPOINT=f"http://127.0.0.1:{closed_port}",
    )
    image = image_file(tmp_path / "scene.png")
    outcome, result = run_dav2(["predict", str(image), "--checkpoint", VKITTI_LARGE], env)
    assert outcome["code"] == 2 and outcome["network"] == []
    assert outcome["seconds"] < 1.0, outcome
    error = result.stderr
    assert f"`dav2 fetch {VKITTI_LARGE}`" in error
    assert "--download" in error and "model.download: true" in error
    assert str(tmp_path / "empty") in error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("names", "env", "message", "tries_the_hub"),
    [
        ([SMALL], {"HF_ENDPOINT": "http://127.0.0.1:{port}"}, "cannot be reached", True),
        ([SMALL], {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set", False),
        ([SMALL, "hf:owner"], {"HF_ENDPOINT": "http://127.0.0.1:{port}"}, "not a weights", False),
    ],
    ids=["hub unreachable", "offline", "malformed second name"],
)
def test_dav2_fetch_fails_cleanly_without_a_hub(tmp_path, names, env, message, tries_the_hub):
    port = free_port()  # bound, then closed: connections are refused
    values = {k: v.format(port=port) for k, v in env.items()}
    outcome, result = run_dav2(["fetch", *names], child_env(HF_HUB_CACHE=str(tmp_path), **values))
    assert outcome["code"] == 2, result.stderr
    assert "dav2 fetch: error: " in result.stderr and message in result.stderr
    assert bool(outcome["network"]) is tries_the_hub
    assert outcome["seconds"] < 10, outcome  # one refused request, not huggingface_hub's retries
    assert not list(tmp_path.rglob("blobs/*"))  # nothing half-downloaded


def _options_of_each_command() -> dict[str, set[str]]:
    from dav2_ros.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if a.choices and "predict" in a.choices]
    return {
        name: {option for action in sub._actions for option in action.option_strings}
        for name, sub in commands.choices.items()
    }


def test_every_dav2_command_with_a_checkpoint_resolves_names_and_offers_download(
    cache, tmp_path, capsys
):
    options = {k: v for k, v in _options_of_each_command().items() if "--checkpoint" in v}
    assert set(options) == {"predict", "export", "bench", "calibrate", "demo"}
    assert all("--download" in found for found in options.values())
    image = image_file(tmp_path / "scene.png")
    np.save(tmp_path / "depth.npy", np.ones((42, 56), np.float32))
    other_arguments = {
        "predict": [str(image)],
        "export": ["--format", "onnx", "--output", str(tmp_path / "model.onnx")],
        "bench": ["--iterations", "1", "--warmup", "0"],
        "calibrate": ["--images", str(image), "--depths", str(tmp_path / "depth.npy")],
        "demo": ["--out", str(tmp_path / "demo")],
    }
    for command, arguments in other_arguments.items():
        assert main([command, *arguments, "--checkpoint", VKITTI_LARGE]) == 2, command
        error = capsys.readouterr().err
        assert f"dav2 {command}: error: " in error and f"`dav2 fetch {VKITTI_LARGE}`" in error
    assert not (tmp_path / "demo" / "logs").exists()  # the demo stopped before any node
