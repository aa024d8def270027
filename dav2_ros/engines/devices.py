"""Which device names each backend takes: CUDA for torch, onnxruntime and tensorrt; Intel
GPU/NPU names (``gpu``, ``gpu.N``, ``npu``) for openvino only."""

from __future__ import annotations

import re

from dav2_ros.engines.base import EngineUnavailable

CUDA_OR_CPU = re.compile(r"^(cpu|cuda(:\d+)?)$")
INTEL = re.compile(r"^(gpu(\.\d+)?|npu)$")


def require_cpu_or_cuda(backend: str, device: str) -> None:
    """EngineUnavailable unless ``device`` is ``cpu``, ``cuda`` or ``cuda:N``."""
    if CUDA_OR_CPU.match(device):
        return
    hint = (
        "Intel gpu/npu devices run with the openvino backend"
        if INTEL.match(device)
        else "check engine.device"
    )
    raise EngineUnavailable(
        f"{backend} backend runs on device cpu, cuda or cuda:N, got {device!r}; {hint}"
    )
