"""`dav2 calibrate`: fixed a, b from disparity/image + depth pairs, written as ROS parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from dav2_ros.cli import main

A_TRUE, B_TRUE = 0.2, 0.02


def _scene(seed: int, height: int = 48, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A slanted floor plus a box: disparity and the metric depth it implies."""
    rng = np.random.default_rng(seed)
    rows = np.arange(height, dtype=np.float64)[:, None].repeat(width, axis=1)
    depth_m = 2.0 + 20.0 * (1.0 - rows / height) + rng.uniform(0, 1)
    depth_m[10:30, 20:40] = rng.uniform(1.5, 4.0)
    disparity = ((1.0 / depth_m - B_TRUE) / A_TRUE).astype(np.float32)
    return disparity, depth_m


@pytest.fixture
def pairs(tmp_path):
    """Three pairs: disparities at 64×48, depths as .npy metres and 16-bit PNG mm at 32×24."""
    disp_dir, depth_dir = tmp_path / "disp", tmp_path / "depth"
    disp_dir.mkdir()
    depth_dir.mkdir()
    for i in range(3):
        disparity, depth_m = _scene(i)
        np.save(disp_dir / f"frame{i}.npy", disparity)
        low = cv2.resize(depth_m, (32, 24), interpolation=cv2.INTER_NEAREST)
        if i == 1:
            cv2.imwrite(str(depth_dir / f"frame{i}.png"), np.round(low * 1000).astype(np.uint16))
        else:
            low[0, :] = np.nan  # invalid pixels must be skipped
            np.save(depth_dir / f"frame{i}.npy", low.astype(np.float32))
    return disp_dir, depth_dir


def test_calibrate_recovers_a_b_and_writes_a_params_file(pairs, tmp_path, capsys):
    disp_dir, depth_dir = pairs
    out = tmp_path / "scale.yaml"
    code = main(["calibrate", "--disparities", str(disp_dir), "--depths", str(depth_dir),
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    params = yaml.safe_load(out.read_text())["/**"]["ros__parameters"]["scale"]
    assert params["mode"] == "fixed"
    # 16-bit PNG rounds to 1 mm and the depth was resampled: close, not exact.
    assert params["a"] == pytest.approx(A_TRUE, rel=0.01)
    assert params["b"] == pytest.approx(B_TRUE, abs=0.002)
    printed = capsys.readouterr().out
    assert "pooled fit: a = 0.2" in printed and printed.count("frame") >= 3


def test_unequal_pair_counts_fail_with_a_clear_message(pairs, tmp_path, capsys):
    disp_dir, depth_dir = pairs
    one_depth = next(depth_dir.iterdir())
    code = main(["calibrate", "--disparities", str(disp_dir), "--depths", str(one_depth),
                 "--out", str(tmp_path / "x.yaml")])  # fmt: skip
    assert code == 2
    assert "got 3 inputs but 1 depth files" in capsys.readouterr().err


def test_eight_bit_png_is_refused_as_depth(pairs, tmp_path, capsys):
    disp_dir, _ = pairs
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        cv2.imwrite(str(bad / f"d{i}.png"), np.full((24, 32), 100, np.uint8))
    code = main(["calibrate", "--disparities", str(disp_dir), "--depths", str(bad)])
    assert code == 2
    assert "expected a single-channel 16-bit PNG in millimetres" in capsys.readouterr().err


def test_inconsistent_depth_is_rejected_and_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "disp.npy", rng.uniform(0, 1, (24, 32)).astype(np.float32))
    np.save(tmp_path / "depth.npy", rng.uniform(1, 50, (24, 32)).astype(np.float32))
    out = tmp_path / "scale.yaml"
    code = main(["calibrate", "--disparities", str(tmp_path / "disp.npy"),
                 "--depths", str(tmp_path / "depth.npy"), "--out", str(out)])  # fmt: skip
    assert code == 2
    assert "calibration rejected" in capsys.readouterr().err
    assert not out.exists()


def test_calibrate_runs_as_the_installed_command(pairs, tmp_path):
    disp_dir, depth_dir = pairs
    out = tmp_path / "scale.yaml"
    dav2 = str(Path(sys.executable).parent / "dav2")
    result = subprocess.run(
        [dav2, "calibrate", "--disparities", str(disp_dir), "--depths", str(depth_dir),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(out.read_text())["/**"]["ros__parameters"]["scale"]["mode"] == "fixed"


def test_calibrate_runs_the_relative_model_on_images(tmp_path, capsys):
    """Images through a saved relative checkpoint; depth made from that model's own output."""
    import torch

    from dav2_ros.engines import DepthEstimator, EngineSpec
    from dav2_ros.model import DepthAnythingV2
    from dav2_ros.model.checkpoints import ModelMeta, save_model

    torch.manual_seed(0)
    model = DepthAnythingV2("vitt", "relative", 10.0)
    with torch.no_grad():  # default init leaves the final ReLU dead: lift it into range
        model.depth_head.scratch.output_conv2[2].weight *= 40.0
        model.depth_head.scratch.output_conv2[2].bias.fill_(3.0)
    meta = ModelMeta(encoder="vitt", depth_type="relative", max_depth=10.0, input_size=126)
    checkpoint = save_model(model, meta, tmp_path / "tiny_relative")
    estimator = DepthEstimator(model, EngineSpec(), input_size=126)
    images, depths = tmp_path / "images", tmp_path / "depths"
    images.mkdir()
    depths.mkdir()
    for i in range(2):
        v, u = np.mgrid[0:60, 0:80]
        rgb = np.stack([u * (3 + i), v * 4, (u * v + 40 * i) % 256], -1).astype(np.uint8)
        cv2.imwrite(str(images / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        disparity = estimator.predict(rgb).values.astype(np.float64)
        np.save(depths / f"{i}.npy", (1.0 / (A_TRUE * disparity + B_TRUE)).astype(np.float32))
    out = tmp_path / "scale.yaml"
    args = ["--images", str(images), "--depths", str(depths), "--checkpoint", str(checkpoint)]
    code = main(["calibrate", *args, "--out", str(out)])  # input size 126 from the checkpoint
    assert code == 0, capsys.readouterr().err
    params = yaml.safe_load(out.read_text())["/**"]["ros__parameters"]["scale"]
    assert params["a"] == pytest.approx(A_TRUE, rel=1e-4)
    assert params["b"] == pytest.approx(B_TRUE, abs=1e-4)
