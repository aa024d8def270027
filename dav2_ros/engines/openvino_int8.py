"""Post-training int8 quantisation of an OpenVINO model with NNCF, calibrated on images.

What is quantised: the linear layers with constant weights (the encoder's MatMuls: qkv,
projection, MLP), per channel, with activation ranges from the calibration images
(NNCF's min-max statistics and fast bias correction). Left in floating point:

- the attention products (activation × activation): quantising the tokens × tokens
  scores cost the most accuracy for the least time;
- convolutions (the patch embedding and the DPT head): the head turns features into
  depth, and its errors land in the output directly;
- SmoothQuant is off: on these networks it made the deviation worse, not better.

These choices come from the deviation and speed measured on ViT-S at 518×686 (see
docs/engines.md, "OpenVINO"). ``INT8_RECIPE`` names them for the engine cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when ``quantize_int8`` changes what it produces (the engine cache keys on it).
INT8_RECIPE = "nncf-linear-weights-mixed-nosq-v1"
_FLOAT_OPS = ["Convolution", "ConvolutionBackpropData", "GroupConvolution"]


def attention_products(ov_model: Any) -> list[str]:
    """Names of the MatMuls whose both inputs are activations (``q·kᵀ``, ``·v``)."""
    found = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        if not any(_is_constant(op.input_value(i).get_node()) for i in range(2)):
            found.append(op.get_friendly_name())
    return found


def quantize_int8(ov_model: Any, batches: Sequence[np.ndarray]) -> Any:
    """The int8 model (FakeQuantize on the linear layers) of ``ov_model``, calibrated on
    ``batches`` (``1x3xhxw`` float32 network inputs)."""
    if not batches:
        raise ValueError("int8 calibration needs at least one image")
    try:
        import nncf
    except ImportError as exc:
        raise ImportError(
            f"int8 quantisation needs the nncf package ({exc}); "
            "pip install -r requirements/base.txt"
        ) from exc
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    # Its per-step chatter; the logger's level only (nncf.set_log_level also changes the
    # levels of handlers it finds, which may be the application's).
    logging.getLogger("nncf").setLevel(logging.ERROR)
    ignored = nncf.IgnoredScope(
        types=_FLOAT_OPS, names=attention_products(ov_model), validate=False
    )
    return nncf.quantize(
        ov_model,
        nncf.Dataset(list(batches)),
        subset_size=len(batches),
        preset=nncf.QuantizationPreset.MIXED,
        model_type=nncf.ModelType.TRANSFORMER,
        ignored_scope=ignored,
        advanced_parameters=AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1)
        ),
    )


def _is_constant(node: Any) -> bool:
    """A weight: a Constant, possibly behind a Convert/Reshape/Transpose."""
    while node.get_type_name() in ("Convert", "Reshape", "Transpose") and node.inputs():
        node = node.input_value(0).get_node()
    return node.get_type_name() == "Constant"
