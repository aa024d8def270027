"""Teachers, inits and DA-2K experts named ``hf:…`` in the Hugging Face cache, and a
teacher's name and licence on the card of the student distilled from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from bag_tools import frames
from dav2_train.cli import main
from dav2_train.config import train_section
from dav2_train.da2k.experts import load_expert
from dav2_train.dist import DistContext
from dav2_train.train import build

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.random_weights import randomize_weights_

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test"))
from hub_cache import cache_commit, use_cache  # noqa: E402  (the tests' cache writer)

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
LARGE_REPO = "depth-anything/Depth-Anything-V2-Large"
LARGE = f"hf:{LARGE_REPO}/depth_anything_v2_vitl.pth"
SMALL = "hf:depth-anything/Depth-Anything-V2-Small/depth_anything_v2_vits.pth"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, DepthAnythingV2]:
    """The Large and Small official repositories, holding ViT-Tiny (vitt6) weights saved
    in the release's layout (a plain state dict)."""
    cache = use_cache(monkeypatch, tmp_path / "hub")
    models = {}
    for name, seed in ((LARGE, 1), (SMALL, 2)):
        model = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=seed).eval()
        repo, _, file = name[len("hf:") :].rpartition("/")
        torch.save(model.state_dict(), tmp_path / file)
        cache_commit(cache, repo, {file: tmp_path / file})
        models[name] = model
    return models


def _distil_config(root: Path, teacher: str) -> Path:
    images = root / "images"
    images.mkdir()
    for i, frame in enumerate(frames(4, 42, 56, seed=3)):
        cv2.imwrite(str(images / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    config = {
        "run_dir": str(root / "run"), "max_depth_m": 20.0, "device": "cpu", "threads": 1,
        "seed": 0,
        "pseudo_label": {"teacher": teacher, "images": str(images), "out": "pseudo",
                         "input_size": 28, "shard_size": 4, "batch_size": 2},
        "student": {"command": "student", "encoder": "vitt6", "input_size": 28,
                    "data": "pseudo", "steps": 2, "batch_size": 2, "warmup_steps": 1,
                    "checkpoint_every": 2, "workers": 0},
        "export": {"model": "student", "out": str(root / "export" / "student")},
        "pipeline": ["pseudo-label", "student", "export"],
    }  # fmt: skip
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_teacher_named_on_the_hub_puts_its_name_and_licence_on_the_students_card(
    tmp_path: Path, hub: dict, capsys: pytest.CaptureFixture
) -> None:
    assert main(["pipeline", "--config", str(_distil_config(tmp_path, LARGE))]) == 0
    assert f"model licence: CC-BY-NC-4.0 ({LARGE_REPO}): non-commercial" in capsys.readouterr().err
    metadata = json.loads((tmp_path / "export" / "student.json").read_text())["provenance"]
    teacher_line = next(line for line in metadata["teachers"] if LARGE in line)
    assert f"{teacher_line}: CC-BY-NC-4.0" in metadata["input_licences"]
    assert metadata["non_commercial_inputs"] == [f"{teacher_line}: CC-BY-NC-4.0"]
    card = (tmp_path / "export" / "MODEL_CARD.md").read_text()
    assert f"pseudo-labelled by {teacher_line}" in card
    assert "**Non-commercial inputs:**" in card and f"  - {teacher_line}: CC-BY-NC-4.0" in card
    # The label split records the teacher by name, with the commit it was read at.
    split = json.loads((tmp_path / "run" / "data" / "pseudo" / "manifest.json").read_text())
    teacher = split["provenance"]["teacher"]
    assert (teacher["name"], teacher["licence"], teacher["encoder"]) == (
        LARGE,
        "CC-BY-NC-4.0",
        "vitt6",
    )
    assert len(teacher["commit"]) == 40


def test_a_hub_teacher_missing_from_the_cache_says_how_to_fetch_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    use_cache(monkeypatch, tmp_path / "empty")
    assert main(["pseudo-label", "--config", str(_distil_config(tmp_path, LARGE))]) == 2
    assert f"`dav2 fetch {LARGE}`" in capsys.readouterr().err


def test_an_init_named_on_the_hub_loads_encoder_and_head_and_is_recorded_by_name(
    tmp_path: Path, hub: dict
) -> None:
    from test_teachers_and_inits import _gt_split

    _gt_split(tmp_path)
    config = {"run_dir": str(tmp_path), "max_depth_m": 20.0, "seed": 0,
              "s": {"command": "student", "encoder": "vitt6", "input_size": 28, "data": "gt",
                    "init": SMALL, "workers": 0}}  # fmt: skip
    trainer = build(config, "s", train_section(config, "s"), CPU)
    record = trainer.record["init"]
    assert (record["name"], record["licence"], record["loaded"]) == (
        SMALL,
        "Apache-2.0",
        "encoder and head",
    )
    for key, value in hub[SMALL].state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[key], value)


def test_a_da2k_expert_named_on_the_hub_is_named_after_its_file(hub: dict) -> None:
    expert = load_expert(SMALL, input_size=28)
    assert expert.name == "depth_anything_v2_vits@28"
    assert expert.describe()["checkpoint"] == SMALL
