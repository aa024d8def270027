"""Export a Depth Anything V2 network to a static-shape ONNX graph (and int8 variant).

Why static: the official position-embedding interpolation computes its bicubic
``scale_factor`` from the input size, and the exporter bakes those factors into the
graph. A graph exported with dynamic height/width runs at the traced size but gives
wrong shapes or numbers at any other size, so we export one graph per input size
(a camera has one resolution) and cache it by size; TensorRT wants static shapes too.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import io
import logging
import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import torch
from torch import nn

from dav2_ros.engines.cache import ArtifactCache, CacheResult, weights_fingerprint
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.confidence import MAPPING
from dav2_ros.model.dpt import DepthAndError
from dav2_ros.model.sizes import EncoderSpec

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # ≥ 17 (LayerNormalization); what torch's dynamo exporter targets natively
INPUT_NAME = "image"
OUTPUT_NAME = "depth"
ERROR_OUTPUT_NAME = "expected_error"  # the second output of a model with a confidence head
_PROTOBUF_LIMIT_BYTES = 2**31 - 1  # one .onnx file cannot hold more (vitg does not fit)
QUANTIZE_MODES = ("int8",)
FUSION_RECIPE = "ort-mha-transformers-vit-v2"  # bump when fuse_for_cpu changes


def cpu_fp32_copy(model: nn.Module) -> nn.Module:
    """The model itself if it is already CPU fp32 (no copy), else a CPU fp32 copy."""
    params = list(model.parameters())
    if all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params):
        return model.eval()
    return copy.deepcopy(model).to("cpu", torch.float32).eval()


def export_onnx(
    model: DepthAnythingV2,
    input_hw: tuple[int, int],
    path: Path | str,
    opset: int = DEFAULT_OPSET,
) -> None:
    """Write a single-file ONNX graph: ``image`` 1×3×h×w float32 → ``depth`` 1×h×w, and
    ``expected_error`` 1×h×w for a model with a confidence head."""
    if opset < 17:
        raise ValueError(f"opset must be >= 17 (LayerNormalization), got {opset}")
    param_bytes = sum(p.numel() * 4 for p in model.parameters())
    if param_bytes > _PROTOBUF_LIMIT_BYTES:
        raise ValueError(
            f"encoder {model.encoder_name!r} has {param_bytes / 2**30:.1f} GiB of fp32 "
            "weights, more than one ONNX file holds (2 GiB); use the torch or tensorrt backend"
        )
    net = cpu_fp32_copy(model)
    outputs = [OUTPUT_NAME]
    if model.has_confidence_head:
        net, outputs = DepthAndError(net), [OUTPUT_NAME, ERROR_OUTPUT_NAME]
    height, width = input_hw
    example = torch.zeros(1, 3, height, width)
    with _quiet_exporter():
        program = torch.onnx.export(
            net,
            (example,),
            None,
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=outputs,
            verbose=False,
        )
    # Describe the graph so a shipped file is self-explanatory.
    program.model.metadata_props.update(
        {
            "dav2.encoder": model.encoder_name,
            "dav2.depth_type": model.depth_type,
            "dav2.max_depth": str(model.max_depth),
            "dav2.input_hw": f"{height}x{width}",
            "dav2.normalisation": "RGB/255, mean (0.485,0.456,0.406), std (0.229,0.224,0.225)",
        }
    )
    if model.has_confidence_head:
        program.model.metadata_props["dav2.expected_error"] = f"second output; {MAPPING}"
    program.save(str(path), external_data=False)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter prints progress lines and warns about optional torchvision ops."""
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    previous_level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        registration_log.setLevel(previous_level)


def encoder_linear_nodes(onnx_model) -> list[str]:
    """Names of the MatMul/Gemm nodes that are the encoder's linear layers.

    A linear layer multiplies by a weight initializer; the attention products
    (activation × activation) and the DPT head's convolutions are left alone.
    """
    initializers = {init.name for init in onnx_model.graph.initializer}
    names = []
    for node in onnx_model.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        if node.input[1] not in initializers:
            continue
        scope = " ".join(p.value for p in node.metadata_props if p.key == "namespace")
        if scope and "pretrained" not in scope:
            continue  # exported with scope info and not in the encoder
        names.append(node.name)
    return names


def quantize_encoder_int8(src: Path | str, dst: Path | str) -> int:
    """Dynamic int8 quantisation (weights int8, activations per call) of the encoder's
    linear layers only; returns how many nodes were quantised."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = encoder_linear_nodes(onnx.load(str(src), load_external_data=False))
    if not nodes:
        raise ValueError(f"{src}: found no encoder MatMul/Gemm with constant weights to quantise")
    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_quantize=nodes,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    log.info("quantised %d encoder linear layers to int8", len(nodes))
    return len(nodes)


def fuse_for_cpu(src: Path | str, dst: Path | str, spec: EncoderSpec) -> None:
    """Fused attention (``onnx_attention``) plus ONNX Runtime's transformer fusions
    (SkipLayerNorm, BiasGelu, …) for the CPU EP.

    The result uses com.microsoft contrib ops: right for onnxruntime, not for trtexec,
    so ``dav2 export`` never applies it.
    """
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    from dav2_ros.engines.onnx_attention import fuse_attention

    graph = onnx.load(str(src))
    fuse_attention(graph, spec.num_heads)
    optimizer_log = logging.getLogger("onnxruntime.transformers.optimizer")
    previous_level = optimizer_log.level
    optimizer_log.setLevel(logging.ERROR)  # it warns that an int8 graph's producer is not torch
    try:
        optimised = optimize_model(
            graph,
            model_type="vit",
            num_heads=spec.num_heads,
            hidden_size=spec.embed_dim,
            opt_level=0,  # graph fusions only; ORT applies its own levels at session start
        )
    finally:
        optimizer_log.setLevel(previous_level)
    optimised.save_model_to_file(str(dst))


def build_onnx(
    model: DepthAnythingV2,
    input_hw: tuple[int, int],
    path: Path | str,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
) -> None:
    """Export (and optionally quantise) to ``path``: the one recipe the cache and
    ``dav2 export`` share."""
    if quantize is None:
        export_onnx(model, input_hw, path, opset)
        return
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES} or None, got {quantize!r}")
    fp32_path = Path(str(path) + ".fp32.onnx")
    try:
        export_onnx(model, input_hw, fp32_path, opset)
        quantize_encoder_int8(fp32_path, path)
    finally:
        fp32_path.unlink(missing_ok=True)


def onnx_cache_fields(
    model: DepthAnythingV2, input_hw: tuple[int, int], opset: int, quantize: str | None
) -> dict:
    """Everything that changes the exported graph (the cache key is made from this)."""
    return {
        "kind": "onnx",
        "weights": weights_fingerprint(model),
        "encoder": model.encoder_name,
        "depth_type": model.depth_type,
        "max_depth": model.max_depth,
        "input_hw": list(input_hw),
        "opset": opset,
        "precision": "fp32",
        "quantize": quantize,
        "torch": torch.__version__,
        "onnxscript": importlib.metadata.version("onnxscript"),
    }


def cached_onnx_graph(
    model: DepthAnythingV2,
    input_hw: tuple[int, int],
    cache: ArtifactCache,
    opset: int = DEFAULT_OPSET,
) -> CacheResult[Path]:
    """The plain static fp32 graph of ``model`` at ``input_hw`` from the engine cache,
    exported first if absent: the one entry the ONNX Runtime and OpenVINO backends share."""
    return cache.get_or_build(
        onnx_cache_fields(model, input_hw, opset, None),
        ".onnx",
        build=partial(export_onnx, model, input_hw, opset=opset),
        load=parsed_onnx_path,
    )


def parsed_onnx_path(path: Path) -> Path:
    """An intermediate graph's path once it parses, so the cache rebuilds an unreadable one
    instead of the next step failing on it at every start."""
    import onnx

    onnx.load_model(str(path), load_external_data=False)
    return path
