"""Inference backends behind one ``Engine`` interface (torch, onnxruntime, openvino,
tensorrt, auto)."""

# Importing a backend module registers it; heavy optional packages (onnxruntime,
# openvino, torch_tensorrt) are only imported when an engine of that kind is built.
from dav2_ros.engines import (  # noqa: F401
    auto,
    onnxruntime_engine,
    openvino_engine,
    tensorrt_engine,
    torch_engine,
)
from dav2_ros.engines.auto import resolve_engine
from dav2_ros.engines.base import (
    Engine,
    EngineConfig,
    EngineIdentity,
    EngineSpec,
    EngineUnavailable,
    backend_names,
    register_backend,
    resolve_backend,
)
from dav2_ros.engines.cache import default_cache_dir, weights_fingerprint
from dav2_ros.engines.create import create_engine
from dav2_ros.engines.pipeline import DepthEstimator, Prediction
from dav2_ros.engines.supervisor import EngineSupervisor

__all__ = [
    "DepthEstimator",
    "Engine",
    "EngineConfig",
    "EngineIdentity",
    "EngineSpec",
    "EngineSupervisor",
    "EngineUnavailable",
    "Prediction",
    "backend_names",
    "create_engine",
    "default_cache_dir",
    "register_backend",
    "resolve_backend",
    "resolve_engine",
    "weights_fingerprint",
]
