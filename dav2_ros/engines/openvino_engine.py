"""OpenVINO backend: the project's static ONNX graph compiled by OpenVINO, fp32, bf16 or
int8 (post-training quantised on calibration images), on a CPU or an Intel GPU/NPU.

The compiled model is exported (``CompiledModel.export_model``) into the engine cache,
keyed by the graph (weights, size, exporter versions), the precision, the device and
its capabilities, the OpenVINO version and, for int8, the quantisation recipe, NNCF's
version and the calibration images' fingerprint. A second start imports it: no
export, no quantisation, no compilation. The ONNX graph is the one the onnxruntime
backend caches, so the two share one export.

Threads: one inference at a time, intra-op parallel on ``threads`` threads (one
stream, latency hint, no hyper-threading); threads are not pinned to cores by default,
so two processes sharing the cores do not both claim the same ones (docs/engines.md,
"contention").
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from dav2_ros.engines.base import Engine, EngineConfig, EngineUnavailable, register_backend
from dav2_ros.engines.cache import ArtifactCache, CacheResult
from dav2_ros.engines.calibration_images import (
    DEFAULT_FRAMES,
    CalibrationSource,
    calibration_batches,
)
from dav2_ros.engines.input_check import checked_batch
from dav2_ros.engines.onnx_export import DEFAULT_OPSET, cached_onnx_graph, onnx_cache_fields
from dav2_ros.engines.threads import default_threads
from dav2_ros.model import DepthAnythingV2

log = logging.getLogger(__name__)

DEVICE_PATTERN = re.compile(r"^(cpu|gpu(\.\d+)?|npu)$")
# What OPTIMIZATION_CAPABILITIES must list for each precision, and the inference
# precision OpenVINO runs it at (int8: the layers left in floating point).
NEEDED_CAPABILITY = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16", "int8": "INT8"}
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise EngineUnavailable(
            f"openvino backend: the openvino package is not installed ({exc}); "
            "pip install -r requirements/base.txt"
        ) from exc
    return openvino


def openvino_device(device: str) -> str:
    """``cpu`` → ``CPU``, ``gpu`` / ``gpu.1`` → ``GPU`` / ``GPU.1``, ``npu`` → ``NPU``."""
    if not DEVICE_PATTERN.match(device):
        raise EngineUnavailable(
            f"openvino backend runs on device cpu, gpu, gpu.N (an Intel GPU) or npu, "
            f"got {device!r}; use the tensorrt, onnxruntime or torch backend for CUDA"
        )
    return device.upper()


def capabilities_of(core: Any, ov_device: str) -> list[str]:
    """The device's ``OPTIMIZATION_CAPABILITIES`` (``FP32``, ``BF16``, ``INT8``, …)."""
    return list(core.get_property(ov_device, "OPTIMIZATION_CAPABILITIES"))


def precision_refusal(precision: str, ov_device: str, capabilities: list[str]) -> str | None:
    """Why ``precision`` cannot run on this device, or None. OpenVINO itself would quietly
    fall back to f32 for a hint the hardware lacks; an engine that says bf16 and runs f32
    would misreport itself, so it is refused instead."""
    needed = NEEDED_CAPABILITY.get(precision)
    if needed is None:
        return f"openvino backend runs precisions {', '.join(NEEDED_CAPABILITY)}, got {precision!r}"
    if needed in capabilities:
        return None
    return (
        f"openvino backend: precision {precision} needs {needed} support, and {ov_device} "
        f"reports only {', '.join(capabilities) or 'nothing'} (OPTIMIZATION_CAPABILITIES; "
        f"{'a CPU with AVX-512 BF16 or AMX' if needed == 'BF16' else 'other hardware'}). "
        "Use precision fp32, or auto to take the fastest precision this device has"
    )


def cpu_identity(core: Any, ov_device: str) -> dict[str, Any]:
    """What a compiled blob depends on besides the model: the device and what it offers."""
    return {
        "device": ov_device,
        "name": core.get_property(ov_device, "FULL_DEVICE_NAME"),
        "capabilities": sorted(capabilities_of(core, ov_device)),
    }


class OpenVinoEngine(Engine):
    """Options: ``threads`` (default: the cores this process may use), ``pinning`` (pin
    threads to cores; default off), and for int8 ``calibration`` (a folder of images or
    a rosbag2; '' = generated scenes), ``calibration_topic``, ``calibration_frames``."""

    backend = "openvino"

    def __init__(self, model: DepthAnythingV2, config: EngineConfig) -> None:
        super().__init__(config)
        ov = _import_openvino()
        self.core = ov.Core()
        self.ov_device = openvino_device(config.device)
        available = list(self.core.available_devices)
        family = self.ov_device.split(".")[0]
        if not any(d == self.ov_device or d.split(".")[0] == self.ov_device for d in available):
            raise EngineUnavailable(
                f"openvino backend: device {config.device!r} ({self.ov_device}) is not present; "
                f"OpenVINO sees {', '.join(available) or 'no device'}"
            )
        refusal = precision_refusal(
            config.precision, self.ov_device, capabilities_of(self.core, self.ov_device)
        )
        if refusal:
            raise EngineUnavailable(refusal)
        self.threads = int(config.options.get("threads") or default_threads())
        self.pinning = bool(config.options.get("pinning", False))
        self.opset = int(config.options.get("opset", DEFAULT_OPSET))
        self.calibration = None
        if config.precision == "int8":
            self.calibration = CalibrationSource(
                str(config.options.get("calibration", "")),
                str(config.options.get("calibration_topic", "")),
                int(config.options.get("calibration_frames", DEFAULT_FRAMES)),
            )
        self.is_cpu = family == "CPU"
        cache = ArtifactCache(config.cache_dir)
        result = self._cached_blob(model, cache)
        if result.built:
            log.info(
                "openvino: built %s %s for %s in %.1f s (cached at %s; later starts import it)",
                config.precision,
                "x".join(map(str, config.input_hw)),
                self.ov_device,
                result.build_s,
                result.path,
            )
        self.compiled = result.value
        self.cache_result = result
        self.request = self.compiled.create_infer_request()
        self.outputs = len(self.compiled.outputs)  # 2 with a confidence head

    def _cached_blob(self, model: DepthAnythingV2, cache: ArtifactCache) -> CacheResult:
        fields: dict[str, Any] = {
            "kind": "openvino",
            "graph": onnx_cache_fields(model, self.config.input_hw, self.opset, None),
            "precision": self.config.precision,
            "target": cpu_identity(self.core, self.ov_device),
            "openvino": importlib.metadata.version("openvino"),
        }
        if self.calibration is not None:
            from dav2_ros.engines.openvino_int8 import INT8_RECIPE

            fields["int8"] = {
                "recipe": INT8_RECIPE,
                "nncf": _version("nncf"),
                "calibration": self.calibration.fingerprint(),
            }
        return cache.get_or_build(
            fields,
            ".ovblob",
            build=lambda path: self._build(model, cache, path),
            load=self._import,
        )

    def _build(self, model: DepthAnythingV2, cache: ArtifactCache, path: Path) -> None:
        """Export (or reuse) the ONNX graph, quantise it for int8, compile, export."""
        graph = cached_onnx_graph(model, self.config.input_hw, cache, self.opset)
        ov_model = self.core.read_model(str(graph.path))
        if self.calibration is not None:
            from dav2_ros.engines.openvino_int8 import quantize_int8

            batches = calibration_batches(self.calibration, self.config.input_hw)
            log.info("openvino: quantising to int8 on %s", self.calibration.describe())
            ov_model = quantize_int8(ov_model, batches)
        properties = {**self._runtime_properties(), **self._compile_properties()}
        compiled = self.core.compile_model(ov_model, self.ov_device, properties)
        path.write_bytes(compiled.export_model().getvalue())

    def _compile_properties(self) -> dict[str, Any]:
        float_precision = self.float_precision()
        if float_precision is None:
            return {}  # GPU/NPU int8: the device's own default for the float layers
        return {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[float_precision]}

    def float_precision(self) -> str | None:
        """The precision of the layers in floating point: the configured one, and for
        int8 on a CPU bf16 where the CPU has it (faster, within the self-check's bound)."""
        if self.config.precision != "int8":
            return self.config.precision
        if not self.is_cpu:
            return None
        return "bf16" if "BF16" in capabilities_of(self.core, self.ov_device) else "fp32"

    def _runtime_properties(self) -> dict[str, Any]:
        """What applies at import as well as at compilation: threads and scheduling."""
        if not self.is_cpu:
            return {"PERFORMANCE_HINT": "LATENCY"}
        return {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": self.threads,
            "ENABLE_HYPER_THREADING": False,
            "ENABLE_CPU_PINNING": self.pinning,
        }

    def _import(self, path: Path) -> Any:
        # The CPU plugin rebuilds its graph from the blob with these properties: without
        # the precision hint it would take its default (bf16 on a BF16 CPU).
        properties = {**self._runtime_properties(), **self._compile_properties()}
        return self.core.import_model(path.read_bytes(), self.ov_device, properties)

    def options_in_effect(self) -> dict[str, Any]:
        options: dict[str, Any] = {**self.config.options, "threads": self.threads}
        if self.is_cpu:
            options["pinning"] = self.pinning
        if self.calibration is not None:  # reported: follows from the device
            options["float_precision"] = self.float_precision() or "device default"
            options["calibration"] = self.calibration.path
            options["calibration_frames"] = self.calibration.frames
            if self.calibration.topic:
                options["calibration_topic"] = self.calibration.topic
        return options

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = checked_batch(self.backend, self.config.input_hw, batch)
        self.request.infer({0: batch})
        # Depth, then a confidence head's expected error when the graph has one (a plane
        # each, as the other engines return them); copies: the request reuses its buffers.
        planes = [self.request.get_output_tensor(i).data.copy() for i in range(self.outputs)]
        return planes[0] if len(planes) == 1 else np.concatenate(planes, axis=0)

    def close(self) -> None:
        self.request = None
        self.compiled = None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


register_backend("openvino", OpenVinoEngine)
