"""Same random weights in this model and in transformers' DepthAnythingForDepthEstimation.

The weights travel through the checkpoint converter both ways (official .pth → ours,
ours → transformers directory → ``from_pretrained``; transformers' own
``save_pretrained`` → ours). At 518×518 the position embeddings are not
interpolated, so both implementations must agree to float precision.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from _torch_threads import one_torch_thread  # noqa: F401  (autouse)
from safetensors.torch import save_file
from transformers import DepthAnythingForDepthEstimation

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import load_model, save_hf_model
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import prepare_input

MAX_DEPTH_M = 20.0


def synthetic_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth scene with edges and texture (uint8 RGB), not noise or a flat colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(7 * xx + 2 * yy), np.cos(5 * yy - 3 * xx), (xx - 0.5) * (yy - 0.3)], -1)
    blobs = cv2.resize(rng.normal(0, 0.4, (12, 12, 3)), (width, height), cv2.INTER_LINEAR)
    image = 0.5 + 0.35 * base + blobs
    image[height // 3 : height // 2, width // 4 : width // 2] = (0.9, 0.1, 0.2)  # a hard edge
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def relative_l2(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).norm() / reference.norm())


def load_reference(directory) -> DepthAnythingForDepthEstimation:
    reference, info = DepthAnythingForDepthEstimation.from_pretrained(
        directory, output_loading_info=True
    )
    # transformers would silently randomise a tensor it could not place: forbid that.
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    return reference.eval()


@pytest.mark.parametrize(
    ("encoder", "depth_type"),
    [
        ("vits", "relative"),
        ("vits", "metric"),
        ("vitb", "metric"),
        pytest.param("vitb", "relative", marks=pytest.mark.slow),
    ],
)
def test_outputs_match_transformers_at_518(tmp_path, encoder, depth_type):
    source = randomize_weights_(DepthAnythingV2(encoder, depth_type, MAX_DEPTH_M), seed=7)
    official = tmp_path / f"depth_anything_v2_{encoder}.pth"
    torch.save(source.state_dict(), official)
    save_hf_model(source, tmp_path / "hf")  # 4.x names, as the files on the hub
    del source

    ours = load_model(official, depth_type=depth_type, max_depth=MAX_DEPTH_M).model
    reference = load_reference(tmp_path / "hf")
    batch = torch.from_numpy(prepare_input(synthetic_rgb(600, 600), 518))
    assert batch.shape == (1, 3, 518, 518)
    with torch.inference_mode():
        ours_out = ours(batch)
        reference_out = reference(pixel_values=batch).predicted_depth

    assert ours_out.shape == reference_out.shape == (1, 518, 518)
    # Non-trivial: varied over the image, not clipped to zero or saturated.
    spread = float(reference_out.std() / reference_out.abs().mean())
    assert spread > 0.05, f"degenerate reference output (std/mean {spread:.3g})"
    assert float((reference_out > 0).float().mean()) > 0.5
    if depth_type == "metric":
        assert float(reference_out.max()) < MAX_DEPTH_M
    assert relative_l2(ours_out, reference_out) < 1e-4


@pytest.mark.parametrize("written_by", ["save_pretrained", "5.x state_dict"])
def test_transformers_files_load_into_the_same_tensors(tmp_path, written_by):
    """Files written by transformers itself map back exactly, in either tensor spelling.

    ``save_pretrained`` (5.24) writes the hub's 4.x names; the in-memory 5.x model
    names q/k/v/o ``q_proj`` … ``o_proj``, which a user may also save directly.
    """
    source = randomize_weights_(DepthAnythingV2("vitt", "metric", 80.0), seed=3)
    save_hf_model(source, tmp_path / "hf4")
    reference = load_reference(tmp_path / "hf4")
    target = tmp_path / "written"
    if written_by == "save_pretrained":
        reference.save_pretrained(target)
    else:
        target.mkdir()
        tensors = {k: v.contiguous() for k, v in reference.state_dict().items()}
        assert any(".attention.q_proj." in n for n in tensors)
        save_file(tensors, str(target / "weights.safetensors"))
        shutil.copy(tmp_path / "hf4" / "config.json", target / "config.json")
        target = target / "weights.safetensors"  # a safetensors file with config.json beside

    loaded = load_model(target)
    assert loaded.meta.format == "hf"
    assert (loaded.meta.encoder, loaded.meta.depth_type) == ("vitt", "metric")
    assert loaded.meta.max_depth == 80.0
    expected = source.state_dict()
    got = loaded.model.state_dict()
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)
