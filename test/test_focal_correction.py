"""The canonical-camera focal correction at inference: the focal length at the network
input, which canonical focal length applies (auto, off, set by hand), ``DepthEstimator``
and ``dav2 predict --fx/--fy`` on a real (tiny, random) metric model."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)

from dav2_ros.cli import main
from dav2_ros.engines import DepthEstimator, EngineSpec
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import ModelMeta, load_model, save_model
from dav2_ros.model.focal import choose_canonical_focal, focal_scale, network_focal_px
from dav2_ros.model.random_weights import randomize_weights_

INPUT_SIZE = 126
CANONICAL_PX = 100.0
HEIGHT, WIDTH = 90, 120  # network 126 x 168: both sides scale by exactly 1.4


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("focal")
    model = randomize_weights_(DepthAnythingV2("vitt", "metric", 10.0), seed=5)
    canonical = ModelMeta("vitt", "metric", 10.0, INPUT_SIZE, canonical_focal_px=CANONICAL_PX)
    save_model(model, canonical, root / "canon")
    save_model(model, ModelMeta("vitt", "metric", 10.0, INPUT_SIZE), root / "plain")
    rng = np.random.default_rng(1)
    image = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (WIDTH, HEIGHT))
    cv2.imwrite(str(root / "frame.png"), image)
    return root


def test_network_focal_length_scales_with_the_resize_to_the_input_size() -> None:
    # 640x480 at input 168 is 224x168: both sides x 0.35.
    assert network_focal_px(525.0, 525.0, (480, 640), 168) == pytest.approx(183.75)
    # 1280x720 at 518 is 924x518: fx scales by 924/1280, fy by 518/720; geometric mean.
    expected = math.sqrt(900.0 * 924 / 1280 * 880.0 * 518 / 720)
    assert network_focal_px(900.0, 880.0, (720, 1280), 518) == pytest.approx(expected)
    # The official metric training cameras (docs/node.md): Hypersim and Virtual KITTI 2.
    assert network_focal_px(886.81, 886.81, (768, 1024), 518) == pytest.approx(596.1, abs=0.05)
    assert network_focal_px(725.0087, 725.0087, (375, 1242), 518) == pytest.approx(1003.3, abs=0.05)


def test_focal_scale_is_camera_over_canonical_and_refuses_bad_focal_lengths() -> None:
    assert focal_scale((525.0, 525.0), (480, 640), 168, 168.0) == pytest.approx(183.75 / 168)
    for bad in [(0.0, 500.0), (500.0, -1.0), (math.nan, 500.0), (math.inf, 500.0)]:
        with pytest.raises(ValueError, match="finite and > 0"):
            focal_scale(bad, (480, 640), 168, 168.0)
    with pytest.raises(ValueError, match="canonical focal"):
        focal_scale((500.0, 500.0), (480, 640), 168, 0.0)


@pytest.mark.parametrize(
    ("depth_type", "recorded", "mode", "override", "expected"),
    [
        ("metric", 168.0, "auto", 0.0, 168.0),  # auto: the checkpoint's record
        ("metric", None, "auto", 0.0, None),  # no record: no correction (official files)
        ("metric", None, "auto", 596.1, 596.1),  # set by hand
        ("metric", 168.0, "auto", 200.0, 200.0),  # the hand-set value wins
        ("metric", 168.0, "off", 200.0, None),  # off wins over everything
        ("relative", 168.0, "auto", 200.0, None),  # no metres to correct
    ],
)
def test_which_canonical_focal_length_applies(depth_type, recorded, mode, override, expected):
    choice = choose_canonical_focal(depth_type, recorded, mode, override)
    assert choice.canonical_focal_px == expected
    assert choice.enabled == (expected is not None)
    assert choice.reason.startswith("on" if expected else "off")


def test_estimator_multiplies_metres_by_the_camera_focal_over_the_canonical(workdir) -> None:
    loaded = load_model(workdir / "canon")
    spec = EngineSpec("torch", "cpu")
    corrected = DepthEstimator(
        loaded.model, spec, INPUT_SIZE, canonical_focal_px=loaded.meta.canonical_focal_px
    )
    plain = DepthEstimator(loaded.model, spec, INPUT_SIZE)
    rgb = cv2.cvtColor(cv2.imread(str(workdir / "frame.png")), cv2.COLOR_BGR2RGB)
    network_m = plain.predict(rgb, focal_px=(200.0, 200.0)).values  # no canonical: as is
    assert np.array_equal(corrected.predict(rgb).values, network_m)  # no focal: as is
    for fx in (100.0, 250.0):
        prediction = corrected.predict(rgb, focal_px=(fx, fx))
        assert prediction.focal_scale == pytest.approx(fx * 1.4 / CANONICAL_PX)
        np.testing.assert_allclose(prediction.values, network_m * fx * 1.4 / CANONICAL_PX, 1e-6)
    with pytest.raises(ValueError, match="relative"):
        relative = DepthAnythingV2("vitt", "relative")
        DepthEstimator(relative, spec, INPUT_SIZE, canonical_focal_px=CANONICAL_PX)


def predict_raw(workdir, capsys, checkpoint: str, *extra: str) -> tuple[np.ndarray, str]:
    out = workdir / "raw.npy"
    args = ["predict", str(workdir / "frame.png"), "--checkpoint", str(workdir / checkpoint)]
    code = main([*args, "--raw-out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return np.load(out), err


def test_predict_fx_gives_metres_in_the_ratio_of_the_focal_lengths(workdir, capsys) -> None:
    near, err = predict_raw(workdir, capsys, "canon", "--fx", "120", "--fy", "120")
    assert "focal correction: on, metres x f / 100 px (the checkpoint's" in err
    far, _ = predict_raw(workdir, capsys, "canon", "--fx", "360")  # --fy defaults to --fx
    np.testing.assert_allclose(far / near, 3.0, rtol=1e-5)
    uncorrected, err = predict_raw(workdir, capsys, "canon")
    assert "no --fx: the metres are the canonical camera's" in err
    np.testing.assert_allclose(near, uncorrected * 120 * 1.4 / CANONICAL_PX, rtol=1e-5)
    off, err = predict_raw(workdir, capsys, "canon", "--fx", "120", "--focal-correction", "off")
    assert "focal correction: off" in err
    np.testing.assert_array_equal(off, uncorrected)


def test_predict_corrects_a_checkpoint_without_record_only_when_set_by_hand(
    workdir, capsys
) -> None:
    as_is, err = predict_raw(workdir, capsys, "plain", "--fx", "120")
    assert "records no canonical focal length" in err
    uncorrected, _ = predict_raw(workdir, capsys, "canon")  # same weights
    np.testing.assert_array_equal(as_is, uncorrected)
    set_by_hand, err = predict_raw(
        workdir, capsys, "plain", "--fx", "120", "--canonical-focal", "84"
    )
    assert "canonical focal set by hand" in err
    np.testing.assert_allclose(set_by_hand, uncorrected * 120 * 1.4 / 84, rtol=1e-5)


def test_predict_refuses_a_focal_length_that_is_not_positive(workdir, capsys) -> None:
    code = main(["predict", str(workdir / "frame.png"), "--fx", "0"])
    assert code == 2
    assert "finite and > 0" in capsys.readouterr().err
