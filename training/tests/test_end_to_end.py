"""A robot team's run at toy size: their teacher, their bags, their GPUs (2 CPU ranks here).

- teacher: an official-layout ``depth_anything_v2_vits.pth`` (random weights, the
  release's key names), given by path;
- data: a ``.db3`` bag with raw ``Image`` (bgr8, 56x70) plus a 16UC1 depth topic, and an
  ``.mcap`` bag with JPEG ``CompressedImage`` (70x56), written with ``rosbags``;
- pseudo-labelling sharded over ``torchrun --nproc_per_node 2``;
- the student starts from a DINOv2-layout encoder file, trains on the streaming loader
  (one DataLoader worker per rank) under torchrun, is SIGKILLed after a checkpoint and
  resumed: the saved per-step sample digests equal the order the data defines;
- RGB-D pairs of the .db3 → metric shards → finetune-metric → sharded evaluate → export,
  which loads in ``dav2 predict`` and in ``depth_node`` (one image over real DDS).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from bag_tools import compressed_msg, depth_msg, frames, image_msg, info_msg, write_bag
from dav2_train.shards import iter_split, read_split
from dav2_train.stream import SampleTransform, ShardStream
from dav2_train.train import batch_digest

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model
from dav2_ros.model.random_weights import randomize_weights_

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "dav2_train.cli"]  # fmt: skip
S = 1_000_000_000
STEPS, BATCH = 20, 2
STUDENT = {"command": "student", "encoder": "vitt6", "input_size": 28, "data": "robot_pseudo",
           "steps": STEPS, "batch_size": BATCH, "workers": 1, "checkpoint_every": 4,
           "warmup_steps": 2}  # fmt: skip


def _launch(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL torchrun, its ranks and their loader workers, by pid. (torchrun starts
    each rank in a session of its own, so killing torchrun's group would miss them.)"""
    import psutil

    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for child in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGKILL)
    process.kill()
    process.wait()


def _run(args: list[str], log: Path, timeout: float = 240) -> str:
    process = _launch(args, log)
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            _kill_tree(process)
    text = log.read_text(errors="replace")
    assert process.returncode == 0, f"{args} failed:\n{text[-4000:]}"
    return text


def _write_inputs(root: Path) -> dict:
    teacher = randomize_weights_(DepthAnythingV2("vits", "relative"), seed=1)
    torch.save(teacher.state_dict(), root / "depth_anything_v2_vits.pth")
    student = randomize_weights_(DepthAnythingV2("vitt6", "relative"), seed=2)
    encoder = {k[len("pretrained.") :]: v for k, v in student.state_dict().items()
               if k.startswith("pretrained.")}  # fmt: skip
    torch.save(encoder, root / "dinov2_vitt6_pretrain.pth")
    drive = frames(8, 56, 70, seed=3)
    v, u = np.mgrid[0:56, 0:70]
    depth_m = (1.0 + 4.0 * (55 - v) / 55 + 0.01 * u).astype(np.float32)  # floor: near at the bottom
    write_bag(root / "drive.db3", {
        "/cam/image_raw": [image_msg(f, "bgr8", S + i * S // 10) for i, f in enumerate(drive)],
        "/cam/depth": [depth_msg(depth_m, S + i * S // 10 + 2_000_000) for i in range(8)],
        "/cam/camera_info": [info_msg(S)],
    })  # fmt: skip
    walk = frames(8, 70, 56, seed=4)
    write_bag(root / "walk.mcap", {
        "/front/image/compressed": [compressed_msg(f, 5 * S + i * S // 10)
                                    for i, f in enumerate(walk)],
    })  # fmt: skip
    config = {
        "run_dir": str(root / "run"), "max_depth_m": 10.0, "seed": 0, "device": "cpu",
        "threads": 1,
        "pseudo_label": {
            "teacher": str(root / "depth_anything_v2_vits.pth"),
            "images": [{"path": str(root / "drive.db3"), "topic": "/cam/image_raw"},
                       {"path": str(root / "walk.mcap")}],
            "out": "robot_pseudo", "input_size": 28, "shard_size": 4, "batch_size": 4,
        },
        "student": {**STUDENT, "init": str(root / "dinov2_vitt6_pretrain.pth")},
        "rgbd": {"bag": str(root / "drive.db3"), "image_topic": "/cam/image_raw",
                 "depth_topic": "/cam/depth", "out": "robot_rgbd", "shard_size": 4},
        "finetune_metric": {"command": "finetune-metric", "encoder": "vitt6", "input_size": 28,
                            "data": "robot_rgbd", "init": "student", "steps": 4,
                            "batch_size": 2, "workers": 0, "warmup_steps": 1},
        "evaluate": {"models": ["finetune_metric"], "splits": ["robot_rgbd"], "prior": False},
        "export": {"model": "finetune_metric", "out": str(root / "export" / "robot"),
                   "card": {"limitations": "End-to-end test: random teacher."}},
        "pipeline": ["pseudo-label", "rgbd"],
    }  # fmt: skip
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def _expected_digests(split_dir: Path, rank: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order the data defines for ``rank`` of 2 with one loader worker each."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    transform = SampleTransform("disparity", 28, 28)
    stream = iter(ShardStream([read_split(split_dir)], transform, seed=0))
    keys = [next(stream)["key"] for _ in range(STEPS * BATCH)]
    return [batch_digest(keys[i * BATCH : (i + 1) * BATCH]) for i in range(STEPS)]


@pytest.fixture(scope="module")
def robot_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("robot")
    _write_inputs(root)
    config = ["--config", str(root / "config.yaml")]
    logs = {"label": _run([*TORCHRUN, "pipeline", *config], root / "label.log")}

    # Train, kill with SIGKILL once a checkpoint exists, resume.
    student = root / "run" / "student"
    process = _launch([*TORCHRUN, "student", *config], root / "killed.log")
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if (student / "last" / "state.pt").exists():
            break
        time.sleep(0.05)
    _kill_tree(process)
    saved = torch.load(student / "last" / "state.pt", weights_only=True)
    logs["killed"] = (root / "killed.log").read_text(errors="replace")
    finish = "pipeline"
    (root / "config.yaml").write_text(
        (root / "config.yaml")
        .read_text()
        .replace("- pseudo-label\n- rgbd\n", "- student\n- finetune-metric\n- evaluate\n- export\n")
    )
    logs["resumed"] = _run([*TORCHRUN, finish, *config], root / "resumed.log")
    return {"root": root, "saved_step": int(saved["step"]), "logs": logs}


def test_the_official_teacher_labels_both_bags_sharded_over_two_ranks(robot_run: dict) -> None:
    root = robot_run["root"]
    split = read_split(root / "run" / "data" / "robot_pseudo")
    assert split.samples == 16 and len(split.shards) == 4
    assert (
        "16 frames (drive.db3: 8, walk.mcap: 8) labelled into 4 shards"
        in (robot_run["logs"]["label"])
    )
    teacher = split.provenance["teacher"]
    assert teacher["format"] == "official" and teacher["encoder"] == "vits"
    assert teacher["path"].endswith("depth_anything_v2_vits.pth") and len(teacher["sha256"]) == 64
    samples = [sample for _, sample in iter_split(split)]
    assert {s.rgb.shape[:2] for s in samples} == {(56, 70), (70, 56)}  # two image sizes
    sources = [s.meta["source"] for s in samples]
    assert sum("drive.db3/cam/image_raw@" in k for k in sources) == 8
    assert sum("walk.mcap/front/image/compressed@" in k for k in sources) == 8
    assert all(np.isfinite(s.label).all() and s.label.shape == s.rgb.shape[:2] for s in samples)
    rgbd = read_split(root / "run" / "data" / "robot_rgbd")
    assert rgbd.kind == "depth_m" and rgbd.samples == 8


def test_the_student_starts_from_the_dinov2_encoder_file(robot_run: dict) -> None:
    encoder = torch.load(robot_run["root"] / "dinov2_vitt6_pretrain.pth", weights_only=True)
    log = robot_run["logs"]["killed"]
    count = len(encoder)  # every tensor of the vitt6 encoder, head excluded
    assert f"init: DINOv2 encoder {robot_run['root']}/dinov2_vitt6_pretrain.pth: loaded " in log
    assert f"loaded {count}/{count} encoder tensors" in log and "head starts fresh" in log
    first = load_model(robot_run["root"] / "run" / "student" / "final.safetensors")
    record = first.meta.provenance["init"]
    assert record["kind"] == "dinov2-encoder" and record["tensors_loaded"] == len(encoder)


def test_a_sigkilled_student_resumes_with_the_same_sample_order(
    robot_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, saved_step = robot_run["root"], robot_run["saved_step"]
    assert 0 < saved_step < STEPS, "the run finished before the kill; raise STEPS"
    assert (
        f"resuming from {root}/run/student/last at step {saved_step}/{STEPS}"
        in (robot_run["logs"]["resumed"])
    )
    history = json.loads((root / "run" / "student" / "history.json").read_text())
    assert [row[0] for row in history] == list(range(1, STEPS + 1))  # no step replayed or lost
    split_dir = root / "run" / "data" / "robot_pseudo"
    expected = [_expected_digests(split_dir, rank, monkeypatch) for rank in (0, 1)]
    assert [row[2] for row in history] == [list(pair) for pair in zip(*expected, strict=True)]
    meta = load_model(root / "run" / "student" / "final.safetensors").meta.provenance
    assert meta["world_size"] == 2 and meta["workers"] == 1


def test_the_export_loads_in_dav2_predict(robot_run: dict, tmp_path: Path) -> None:
    root = robot_run["root"]
    export = root / "export" / "robot.safetensors"
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), cv2.cvtColor(frames(1, 56, 70, seed=9)[0], cv2.COLOR_RGB2BGR))
    dav2 = Path(sys.executable).parent / "dav2"
    result = subprocess.run(
        [str(dav2), "predict", str(image), "--checkpoint", str(export), "--raw-out",
         str(tmp_path / "depth.npy"), "--backend", "torch"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    depth_m = np.load(tmp_path / "depth.npy")
    assert depth_m.shape == (56, 70) and np.isfinite(depth_m).all()
    assert depth_m.min() > 0 and depth_m.max() < 10.0  # metric, Sigmoid x 10 m
    card = (root / "export" / "MODEL_CARD.md").read_text()
    for fact in ("depth_anything_v2_vits.pth", "drive.db3", "walk.mcap", "topic `/cam/image_raw`",
                 "DINOv2 encoder", "8 RGB-D pairs", "2 process(es)"):  # fmt: skip
        assert fact in card, fact
    assert "Apache-2.0" in card  # the ViT-S teacher's licence is carried into the card
    metrics = json.loads((root / "run" / "evaluate" / "metrics.json").read_text())
    assert metrics["finetune_metric"]["robot_rgbd"]["images"] == 8  # both ranks' shares


@pytest.mark.ros
def test_the_export_loads_in_depth_node_and_publishes_depth(
    robot_run: dict, tmp_path: Path
) -> None:
    sys.path.insert(0, str(REPO / "test"))
    from sensor_msgs.msg import Image
    from test_ros_support import image_msg as ros_image_msg
    from test_ros_support import ros_client, running_node, stamp_ns

    export = robot_run["root"] / "export" / "robot.safetensors"
    values = {"model.checkpoint": str(export), "engine.backend": "torch", "engine.threads": 1}
    with running_node(tmp_path, values) as node, ros_client() as client:
        assert "vitt6" in node.log()
        client.subscribe("depth", Image)
        publisher = client.node.create_publisher(Image, "image", 5)
        msg = ros_image_msg(frames(1, 56, 70, seed=8)[0], "rgb8", 1_700_000_000 * S, "cam")
        depth = None
        deadline = time.monotonic() + 60
        while depth is None and time.monotonic() < deadline:
            publisher.publish(msg)  # again until discovery has matched the subscription
            depth = client.wait_for("depth", lambda m: stamp_ns(m) == stamp_ns(msg), 1.5)
    assert depth is not None, node.log()[-3000:]
    assert depth.encoding == "32FC1" and (depth.height, depth.width) == (56, 70)
    values_m = np.frombuffer(bytes(depth.data), np.float32)
    assert np.isfinite(values_m).all() and values_m.min() > 0 and values_m.max() < 10.0
