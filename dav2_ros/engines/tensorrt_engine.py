"""Torch-TensorRT backend (dynamo path): ``torch.export`` → TensorRT, cached on disk.

The compiled program is static-shape (one per input size, like the ONNX graphs),
fp16 by default on the command line, and serialised with ``torch_tensorrt.save``
(ExportedProgram format) so the next start only loads it. The first build takes
minutes on a Jetson; its duration is logged once.
"""

from __future__ import annotations

import copy
import importlib.metadata
import logging
from pathlib import Path

import numpy as np
import torch

from dav2_ros.engines.base import Engine, EngineConfig, EngineUnavailable, register_backend
from dav2_ros.engines.cache import ArtifactCache, weights_fingerprint
from dav2_ros.engines.devices import require_cpu_or_cuda
from dav2_ros.engines.torch_engine import stacked_planes
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.dpt import DepthAndError

log = logging.getLogger(__name__)

TRT_PRECISIONS = {"fp16": torch.float16, "fp32": torch.float32}
DEFAULT_TRT_PRECISION = "fp16"


def export_program(
    model: DepthAnythingV2,
    input_hw: tuple[int, int],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.export.ExportedProgram:
    """The exact program Torch-TensorRT compiles: strict ``torch.export`` (no graph
    breaks allowed) of the network at one static ``1×3×h×w`` shape; a model with a
    confidence head returns (depth, expected error)."""
    height, width = input_hw
    example = torch.zeros(1, 3, height, width, device=device, dtype=dtype)
    net = DepthAndError(model.eval()) if model.has_confidence_head else model.eval()
    return torch.export.export(net, (example,), strict=True)


def require_tensorrt(device: str) -> object:
    """Import ``torch_tensorrt`` or raise ``EngineUnavailable`` naming what is missing."""
    require_cpu_or_cuda("tensorrt", device)
    missing = []
    if not device.startswith("cuda"):
        missing.append(f"device 'cuda' (configured device is {device!r})")
    elif not torch.cuda.is_available():
        missing.append(f"a CUDA device (torch {torch.__version__} sees none)")
    try:
        import torch_tensorrt
    except ImportError:
        torch_tensorrt = None
        missing.append("the torch_tensorrt package (pip install '.[tensorrt]')")
    if missing:
        raise EngineUnavailable("tensorrt backend needs " + " and ".join(missing))
    return torch_tensorrt


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def compile_tensorrt(
    model: DepthAnythingV2, input_hw: tuple[int, int], precision: str, device: str, path: Path
) -> None:
    """Compile with Torch-TensorRT and save the program (ExportedProgram) to ``path``."""
    torch_tensorrt = require_tensorrt(device)
    dtype = TRT_PRECISIONS[precision]
    # A private copy: casting the caller's model to fp16 would change it under them.
    net = copy.deepcopy(model).to(device, dtype).eval()
    program = export_program(net, input_hw, device, dtype)
    example = torch.zeros(1, 3, *input_hw, device=device, dtype=dtype)
    try:
        compiled = torch_tensorrt.dynamo.compile(
            program, [example], enabled_precisions={dtype}, truncate_double=True
        )
    except TypeError:  # newer releases type explicitly from the program's dtypes
        compiled = torch_tensorrt.dynamo.compile(program, [example])
    torch_tensorrt.save(compiled, str(path), output_format="exported_program", inputs=[example])


class TensorRTEngine(Engine):
    backend = "tensorrt"

    def __init__(self, model: DepthAnythingV2, config: EngineConfig) -> None:
        super().__init__(config)
        if config.precision not in TRT_PRECISIONS:
            raise ValueError(
                f"tensorrt backend supports precisions {sorted(TRT_PRECISIONS)}, "
                f"got {config.precision!r}"
            )
        torch_tensorrt = require_tensorrt(config.device)
        self.device = torch.device(config.device)
        self.dtype = TRT_PRECISIONS[config.precision]
        props = torch.cuda.get_device_properties(self.device)
        fields = {
            "kind": "tensorrt",
            "weights": weights_fingerprint(model),
            "encoder": model.encoder_name,
            "depth_type": model.depth_type,
            "max_depth": model.max_depth,
            "input_hw": list(config.input_hw),
            "precision": config.precision,
            "gpu": f"{props.name} sm{props.major}{props.minor}",  # engines are per GPU
            "torch": torch.__version__,
            "torch_tensorrt": getattr(torch_tensorrt, "__version__", _version("torch-tensorrt")),
            "tensorrt": _version("tensorrt"),
        }
        result = ArtifactCache(config.cache_dir).get_or_build(
            fields,
            ".ep",
            build=lambda path: compile_tensorrt(
                model, config.input_hw, config.precision, config.device, path
            ),
            load=lambda path: torch_tensorrt.load(str(path)).module(),
        )
        if result.built:
            log.warning(
                "tensorrt: built %s %s engine in %.1f s (cached at %s; later starts load it)",
                config.precision,
                "x".join(map(str, config.input_hw)),
                result.build_s,
                result.path,
            )
        self.module = result.value
        self.cache_result = result

    @torch.inference_mode()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device, self.dtype)
        return stacked_planes(self.module(x)).float().cpu().numpy()


register_backend("tensorrt", TensorRTEngine)
