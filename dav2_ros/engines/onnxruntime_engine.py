"""ONNX Runtime backend: a cached static-shape ONNX graph per input size.

The graph is exported once per (weights, size, opset, quantisation, exporter
versions) and reused from the engine cache; see ``onnx_export`` for why it is static.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np

from dav2_ros.engines.base import Engine, EngineConfig, EngineUnavailable, register_backend
from dav2_ros.engines.cache import ArtifactCache, resolve_cache_dir
from dav2_ros.engines.devices import require_cpu_or_cuda
from dav2_ros.engines.input_check import checked_batch
from dav2_ros.engines.onnx_export import (
    DEFAULT_OPSET,
    FUSION_RECIPE,
    QUANTIZE_MODES,
    export_onnx,
    fuse_for_cpu,
    onnx_cache_fields,
    parsed_onnx_path,
    quantize_encoder_int8,
)
from dav2_ros.engines.threads import default_threads
from dav2_ros.model import DepthAnythingV2

log = logging.getLogger(__name__)

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise EngineUnavailable(
            f"onnxruntime backend: the onnxruntime package is not installed ({exc}); "
            "pip install -r requirements/base.txt"
        ) from exc
    return onnxruntime


def choose_providers(ort, config: EngineConfig) -> list:
    """Execution providers for ``config.device``: CPU, or TensorRT/CUDA EPs on a GPU."""
    require_cpu_or_cuda("onnxruntime", config.device)
    if config.device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    gpu = [p for p in _GPU_PROVIDERS if p in available]
    if not config.device.startswith("cuda") or not gpu:
        raise EngineUnavailable(
            f"onnxruntime backend: device {config.device!r} needs onnxruntime-gpu "
            f"(CUDAExecutionProvider); this onnxruntime offers {available}. "
            "Use device 'cpu' or install onnxruntime-gpu"
        )
    device_id = int(config.device.partition(":")[2] or 0)
    providers: list = []
    if "TensorrtExecutionProvider" in gpu:
        cache = str(resolve_cache_dir(config.cache_dir) / "ort-trt")
        providers.append(
            (
                "TensorrtExecutionProvider",
                {
                    "device_id": device_id,
                    "trt_fp16_enable": config.precision == "fp16",
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": cache,
                },
            )
        )
    if "CUDAExecutionProvider" in gpu:
        providers.append(("CUDAExecutionProvider", {"device_id": device_id}))
    return [*providers, "CPUExecutionProvider"]


class OnnxRuntimeEngine(Engine):
    backend = "onnxruntime"

    def __init__(self, model: DepthAnythingV2, config: EngineConfig) -> None:
        super().__init__(config)
        ort = _import_onnxruntime()
        # precision int8 is the dynamic int8 encoder (the same as option quantize: int8)
        self.quantize = config.options.get("quantize") or (
            "int8" if config.precision == "int8" else None
        )
        if self.quantize is not None and self.quantize not in QUANTIZE_MODES:
            raise ValueError(
                f"onnxruntime option quantize must be one of {QUANTIZE_MODES}, "
                f"got {self.quantize!r}"
            )
        self.providers = choose_providers(ort, config)
        uses_trt_ep = any(
            isinstance(p, tuple) and p[0] == "TensorrtExecutionProvider" for p in self.providers
        )
        runs_graph_precision = config.precision in ("fp32", "int8")
        if not runs_graph_precision and not (config.precision == "fp16" and uses_trt_ep):
            raise EngineUnavailable(
                f"onnxruntime backend runs the fp32 graph (int8: its dynamic int8 encoder); "
                f"precision {config.precision!r} needs the TensorRT execution provider (fp16). "
                "Use precision fp32 or int8, or the openvino/torch/tensorrt backend"
            )
        self.threads = int(config.options.get("threads") or default_threads())
        self.opset = int(config.options.get("opset", DEFAULT_OPSET))
        # CPU-only contrib-op fusions; the TensorRT/CUDA EPs get the plain graph.
        self.fuse = bool(config.options.get("fuse", config.device == "cpu"))
        # Spinning workers burn cores that other nodes on a small robot computer need.
        self.spin = bool(config.options.get("spin", False))
        result = self._cached_graph(ort, model, ArtifactCache(config.cache_dir))
        if result.built:
            log.info("onnxruntime: exported %s in %.1f s", result.path, result.build_s)
        self.session = result.value
        self.cache_result = result
        self.model_path = result.path
        self.active_provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        # depth, then (a confidence head's graph) expected_error
        self.output_names = [output.name for output in self.session.get_outputs()]

    def _cached_graph(self, ort, model: DepthAnythingV2, cache: ArtifactCache):
        """Export → (int8) → (fuse), each step cached and built from the previous one,
        so an int8 or fused graph never costs a second export."""
        hw = self.config.input_hw
        fields = onnx_cache_fields(model, hw, self.opset, None)
        steps = [(fields, partial(export_onnx, model, hw, opset=self.opset))]
        if self.quantize:
            fields = {**fields, "quantize": self.quantize}
            steps.append((fields, quantize_encoder_int8))
        if self.fuse:
            fields = {**fields, "fused": FUSION_RECIPE}
            steps.append((fields, partial(fuse_for_cpu, spec=model.spec)))
        previous = None
        for index, (step_fields, make) in enumerate(steps):
            last = index == len(steps) - 1
            build = make if previous is None else partial(make, previous)
            load = partial(self._open_session, ort) if last else parsed_onnx_path
            result = cache.get_or_build(step_fields, ".onnx", build=build, load=load)
            previous = result.path
        return result

    def _open_session(self, ort, path: Path):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1  # one frame at a time: parallelism is intra-op
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if not self.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only; the node logs what matters
        return ort.InferenceSession(str(path), options, providers=self.providers)

    def options_in_effect(self) -> dict:
        options = {**self.config.options, "threads": self.threads, "fuse": self.fuse}
        if self.quantize:
            options["quantize"] = self.quantize
        # Follows from the device and what is installed: reported, not configurable.
        options["provider"] = self.active_provider.replace("ExecutionProvider", "")
        return options

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = checked_batch(self.backend, self.config.input_hw, batch)
        planes = self.session.run(self.output_names, {self.input_name: batch})
        return planes[0] if len(planes) == 1 else np.concatenate(planes, axis=0)

    def close(self) -> None:
        self.session = None  # frees the arena; the cached graph stays on disk


register_backend("onnxruntime", OnnxRuntimeEngine)
