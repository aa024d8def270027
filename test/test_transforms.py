"""Pre/post-processing against a transcription of the official ``infer_image`` path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dav2_ros.model.transforms import model_input_size, prepare_input, resize_output


# --- transcription of depth_anything_v2/util/transform.py (Resize, NormalizeImage,
# PrepareForNet) as image2tensor configures them: lower_bound, multiple of 14, cubic.
def _constrain_to_multiple_of(x, multiple_of=14, min_val=0, max_val=None):
    y = (np.round(x / multiple_of) * multiple_of).astype(int)
    if max_val is not None and y > max_val:
        y = (np.floor(x / multiple_of) * multiple_of).astype(int)
    if y < min_val:
        y = (np.ceil(x / multiple_of) * multiple_of).astype(int)
    return y


def _official_get_size(width, height, target=518):
    scale_height = target / height
    scale_width = target / width
    if scale_width > scale_height:  # keep_aspect_ratio, lower_bound
        scale_height = scale_width
    else:
        scale_width = scale_height
    new_height = _constrain_to_multiple_of(scale_height * height, min_val=target)
    new_width = _constrain_to_multiple_of(scale_width * width, min_val=target)
    return new_width, new_height


def official_image2tensor(raw_bgr: np.ndarray, input_size: int = 518) -> torch.Tensor:
    image = cv2.cvtColor(raw_bgr, cv2.COLOR_BGR2RGB) / 255.0
    width, height = _official_get_size(image.shape[1], image.shape[0], input_size)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    image = (image - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    image = np.transpose(image, (2, 0, 1))
    image = np.ascontiguousarray(image).astype(np.float32)
    return torch.from_numpy(image).unsqueeze(0)


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "expected_hw"),
    [
        (480, 640, (518, 686)),
        (720, 1280, (518, 924)),
        (640, 480, (686, 518)),
        (518, 518, (518, 518)),
        (100, 100, (518, 518)),
    ],
)
def test_model_input_size_follows_lower_bound_rule(height, width, expected_hw):
    assert model_input_size(height, width, 518) == expected_hw


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 4000),
    width=st.integers(1, 4000),
    input_size=st.sampled_from([126, 266, 518]),
)
def test_model_input_size_equals_official_get_size(height, width, input_size):
    official_w, official_h = _official_get_size(width, height, input_size)
    assert model_input_size(height, width, input_size) == (official_h, official_w)


@pytest.mark.parametrize(("height", "width"), [(480, 640), (97, 131), (300, 200)])
def test_prepare_input_equals_official_image2tensor(height, width):
    rng = np.random.default_rng(height * width)
    image_bgr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = official_image2tensor(image_bgr, 266).numpy()
    ours = prepare_input(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), 266)
    assert ours.dtype == np.float32 and ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)


def test_prepare_input_rejects_grey_images_with_a_clear_message():
    with pytest.raises(ValueError, match="HxWx3 RGB"):
        prepare_input(np.zeros((10, 10), dtype=np.uint8))


def test_model_input_size_rejects_input_size_not_multiple_of_14():
    with pytest.raises(ValueError, match="multiple of 14"):
        model_input_size(480, 640, 500)


@settings(max_examples=40, deadline=None)
@given(
    src=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    dst=st.tuples(st.integers(1, 90), st.integers(1, 90)),
    seed=st.integers(0, 1000),
)
def test_resize_output_equals_torch_bilinear_align_corners(src, dst, seed):
    pred = np.random.default_rng(seed).normal(3.0, 1.0, src).astype(np.float32)
    expected = F.interpolate(
        torch.from_numpy(pred)[None, None], dst, mode="bilinear", align_corners=True
    )[0, 0].numpy()
    ours = resize_output(pred, *dst)
    assert ours.dtype == np.float32 and ours.shape == dst
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    # The separable resize is the four-neighbour formula's float32 arithmetic, bit for bit.
    np.testing.assert_array_equal(ours, four_neighbour_bilinear(pred, *dst))


def four_neighbour_bilinear(pred: np.ndarray, height: int, width: int) -> np.ndarray:
    """The textbook align_corners bilinear, pixel by pixel in float32 scalars."""
    src_h, src_w = pred.shape
    scale_y = (src_h - 1) / (height - 1) if height > 1 else 0.0
    scale_x = (src_w - 1) / (width - 1) if width > 1 else 0.0
    one = np.float32(1)
    out = np.empty((height, width), np.float32)
    for i in range(height):
        y = i * scale_y
        y0 = int(np.floor(y))
        y1, wy = min(y0 + 1, src_h - 1), np.float32(y - y0)
        for j in range(width):
            x = j * scale_x
            x0 = int(np.floor(x))
            x1, wx = min(x0 + 1, src_w - 1), np.float32(x - x0)
            top = pred[y0, x0] * (one - wx) + pred[y0, x1] * wx
            bottom = pred[y1, x0] * (one - wx) + pred[y1, x1] * wx
            out[i, j] = top * (one - wy) + bottom * wy
    return out
