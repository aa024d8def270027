"""PyTorch backend: CPU or CUDA, fp32/fp16/bf16, inference mode, optional torch.compile."""

from __future__ import annotations

import numpy as np
import torch

from dav2_ros.engines.base import Engine, EngineConfig, EngineUnavailable, register_backend
from dav2_ros.engines.devices import require_cpu_or_cuda
from dav2_ros.engines.threads import default_threads
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.dpt import DepthAndError

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchEngine(Engine):
    """Eager (or ``options["compile"]``-compiled) PyTorch.

    Options: ``threads`` (CPU intra-op threads, default: all cores),
    ``channels_last`` (default on CUDA, where cuDNN's convolutions prefer NHWC),
    ``compile`` (``torch.compile`` with a static shape).
    """

    backend = "torch"

    def __init__(self, model: DepthAnythingV2, config: EngineConfig) -> None:
        super().__init__(config)
        require_cpu_or_cuda(self.backend, config.device)
        if config.precision not in _DTYPES:
            raise EngineUnavailable(
                f"torch backend runs precisions {', '.join(_DTYPES)}, got {config.precision!r}; "
                "int8 runs with the openvino or onnxruntime backend"
            )
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineUnavailable("torch backend: device 'cuda' requested but CUDA is absent")
        if config.device == "cpu" and config.precision == "fp16":
            raise EngineUnavailable("torch backend: fp16 is not supported on CPU; use fp32 or bf16")
        self.device = torch.device(config.device)
        self.dtype = _DTYPES[config.precision]
        if self.device.type == "cpu":
            # torch's pool is process-wide; set it once so every engine agrees.
            self.threads = int(config.options.get("threads") or default_threads())
            torch.set_num_threads(self.threads)
        self.channels_last = bool(config.options.get("channels_last", self.device.type == "cuda"))
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, self.dtype, memory_format=memory_format)
        # A confidence head's model returns (depth, expected error): both planes.
        self._forward = DepthAndError(self.model) if self.model.has_confidence_head else self.model
        if config.options.get("compile"):
            self._forward = torch.compile(self._forward, dynamic=False)

    def options_in_effect(self) -> dict:
        options = dict(self.config.options)
        if self.device.type == "cpu":
            options["threads"] = self.threads
        options["channels_last"] = self.channels_last
        return options

    @torch.inference_mode()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device, self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return stacked_planes(self._forward(x)).float().cpu().numpy()


def stacked_planes(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A network's output as ``Engine.infer`` returns it: the planes on the first axis."""
    return torch.cat(tuple(output), 0) if isinstance(output, (tuple, list)) else output


register_backend("torch", TorchEngine)
