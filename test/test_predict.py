"""`dav2 predict` end to end on a tiny saved checkpoint (ViT-Tiny student, small inputs)."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import open3d as o3d
import pytest
import torch
import torch.nn.functional as F
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)

from dav2_ros.cli import main
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, load_model, save_model
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import prepare_input

INPUT_SIZE = 126
FX, FY, CX, CY = 150.0, 140.0, 70.0, 52.0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    metric = randomize_weights_(DepthAnythingV2("vitt", "metric", 10.0), seed=21)
    save_model(metric, ModelMeta("vitt", "metric", 10.0, input_size=INPUT_SIZE), root / "metric")
    relative = randomize_weights_(DepthAnythingV2("vitt", "relative"), seed=22)
    save_model(relative, ModelMeta("vitt", "relative", 20.0, input_size=INPUT_SIZE), root / "rel")
    headed = randomize_weights_(DepthAnythingV2("vitt", "metric", 10.0, True), seed=23)
    save_model(headed, ModelMeta("vitt", "metric", 10.0, input_size=INPUT_SIZE), root / "headed")
    rng = np.random.default_rng(0)
    for name, (height, width) in {"wide.png": (100, 150), "tall.jpg": (130, 90)}.items():
        smooth = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (width, height))
        cv2.imwrite(str(root / name), smooth)
    return root


def infer_image_equivalent(checkpoint, image_path, input_size) -> np.ndarray:
    """The official ``infer_image`` steps, in torch: imread, BGR→RGB, net, bilinear back."""
    model = load_model(checkpoint).model
    image_rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    height, width = image_rgb.shape[:2]
    with torch.inference_mode():
        depth = model(torch.from_numpy(prepare_input(image_rgb, input_size)))
        depth = F.interpolate(depth[:, None], (height, width), mode="bilinear", align_corners=True)
    return depth[0, 0].numpy()


def test_predict_writes_raw_colour_and_cloud_for_several_images(workdir):
    out = workdir / "out"
    command = [
        sys.executable, "-m", "dav2_ros.cli", "predict",
        str(workdir / "wide.png"), str(workdir / "tall.jpg"),
        "--checkpoint", str(workdir / "metric.safetensors"),
        "--raw-out", str(out / "depth.npy"), "--out", str(out / "view.png"),
        "--ply", str(out / "cloud.ply"),
        "--fx", str(FX), "--fy", str(FY), "--cx", str(CX), "--cy", str(CY),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see _torch_threads
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "[1/2]" in result.stderr and "[2/2]" in result.stderr

    for stem in ("wide", "tall"):
        image_path = next(workdir.glob(f"{stem}.*"))
        height, width = cv2.imread(str(image_path)).shape[:2]
        raw = np.load(out / f"depth_{stem}.npy")
        assert raw.dtype == np.float32 and raw.shape == (height, width)
        expected = infer_image_equivalent(workdir / "metric.safetensors", image_path, INPUT_SIZE)
        np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-5)
        assert raw.min() > 0 and raw.max() < 10.0 and raw.std() > 1e-3

        view = cv2.imread(str(out / f"view_{stem}.png"))
        assert view.shape == (height, width, 3) and view.std() > 1

        cloud = o3d.io.read_point_cloud(str(out / f"cloud_{stem}.ply"))
        points = np.asarray(cloud.points)
        assert len(points) == height * width  # every metric pixel is valid
        assert cloud.has_colors()
        v, u = np.mgrid[0:height, 0:width]
        expected_xyz = np.stack([(u - CX) * raw / FX, (v - CY) * raw / FY, raw], axis=-1).reshape(
            -1, 3
        )
        np.testing.assert_allclose(points, expected_xyz, rtol=1e-5, atol=1e-5)


def test_single_image_relative_raw_output_at_another_input_size(workdir, capsys):
    raw_path = workdir / "rel.npy"
    code = main(
        [
            "predict", str(workdir / "tall.jpg"), "--checkpoint", str(workdir / "rel"),
            "--input-size", "140", "--raw-out", str(raw_path),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    expected = infer_image_equivalent(workdir / "rel.safetensors", workdir / "tall.jpg", 140)
    np.testing.assert_allclose(np.load(raw_path), expected, rtol=1e-5, atol=1e-5)
    assert "network 140x196" in capsys.readouterr().err


def test_ply_from_a_relative_model_is_refused(workdir, capsys):
    ply = workdir / "never.ply"
    code = main(
        [
            "predict", str(workdir / "wide.png"), "--checkpoint", str(workdir / "rel"),
            "--ply", str(ply), "--fx", "100", "--fy", "100",
        ]
    )  # fmt: skip
    assert code == 2
    assert "relative model" in capsys.readouterr().err
    assert not ply.exists()


def test_confidence_out_is_the_heads_map_at_the_depths_size_and_the_view_shows_it(workdir, capsys):
    out = workdir / "confident"
    code = main(
        [
            "predict", str(workdir / "wide.png"), "--checkpoint", str(workdir / "headed"),
            "--raw-out", str(out / "depth.npy"), "--confidence-out", str(out / "conf.npy"),
            "--out", str(out / "view.png"), "--confidence-panel",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    depth, confidence = np.load(out / "depth.npy"), np.load(out / "conf.npy")
    assert confidence.dtype == np.float32 and confidence.shape == depth.shape == (100, 150)
    model = load_model(workdir / "headed.safetensors").model
    image_rgb = cv2.cvtColor(cv2.imread(str(workdir / "wide.png")), cv2.COLOR_BGR2RGB)
    with torch.inference_mode():
        _, log_error = model.depth_and_log_error(
            torch.from_numpy(prepare_input(image_rgb, INPUT_SIZE))
        )
        error = F.interpolate(
            log_error.exp()[:, None], (100, 150), mode="bilinear", align_corners=True
        )
    np.testing.assert_allclose(confidence, np.exp(-error[0, 0].numpy()), rtol=1e-5, atol=1e-6)
    view = cv2.imread(str(out / "view.png"))
    assert view.shape == (100, 300, 3)  # the colour view, then the confidence in grey
    grey = view[:, 150:]
    assert (grey[..., 0] == grey[..., 1]).all()
    np.testing.assert_allclose(grey[..., 0] / 255.0, confidence, atol=1 / 255 + 1e-6)


def test_a_checkpoint_without_a_head_gives_confidence_only_by_flip(workdir, capsys):
    conf = workdir / "flip_conf.npy"
    argv = ["predict", str(workdir / "wide.png"), "--checkpoint", str(workdir / "metric")]
    assert main([*argv, "--confidence-out", str(conf)]) == 2
    assert "--confidence flip" in capsys.readouterr().err and not conf.exists()
    assert main([*argv, "--confidence-out", str(conf), "--confidence", "flip"]) == 0
    flipped = np.load(conf)
    assert flipped.shape == (100, 150) and 0.0 < flipped.min() < flipped.max() <= 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ply", "c.ply"], "--fx and --fy"),
        (["--raw-out", "depth.png"], "--raw-out must name a .npy file"),
        (["--confidence-out", "c.png"], "--confidence-out must name a .npy file"),
        (["--confidence-panel"], "pass --out FILE.png"),
    ],
)
def test_bad_options_are_explained_before_any_work(workdir, capsys, extra, message):
    code = main(["predict", str(workdir / "wide.png"), "--checkpoint", "/nonexistent", *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_unreadable_image_is_named(workdir, capsys):
    broken = workdir / "broken.png"
    broken.write_bytes(b"not an image")
    code = main(["predict", str(broken), "--checkpoint", str(workdir / "metric")])
    assert code == 2
    assert "broken.png: OpenCV cannot decode" in capsys.readouterr().err
