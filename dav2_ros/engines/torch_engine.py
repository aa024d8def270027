"""PyTorch backend: CPU or CUDA, fp32/fp16/bf16, inference mode."""

from __future__ import annotations

import numpy as np
import torch

from dav2_ros.engines.base import Engine, EngineConfig, EngineUnavailable, register_backend
from dav2_ros.model import DepthAnythingV2

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchEngine(Engine):
    backend = "torch"

    def __init__(self, model: DepthAnythingV2, config: EngineConfig) -> None:
        super().__init__(config)
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineUnavailable("torch backend: device 'cuda' requested but CUDA is absent")
        if config.device == "cpu" and config.precision == "fp16":
            raise EngineUnavailable("torch backend: fp16 is not supported on CPU; use fp32")
        self.device = torch.device(config.device)
        self.dtype = _DTYPES[config.precision]
        self.model = model.eval().to(self.device, self.dtype)
        if config.options.get("compile"):
            self.model = torch.compile(self.model)

    @torch.inference_mode()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device, self.dtype)
        return self.model(x).float().cpu().numpy()


register_backend("torch", TorchEngine)
