"""Inference backends behind one ``Engine`` interface (torch, onnxruntime, tensorrt)."""

from dav2_ros.engines import torch_engine  # noqa: F401 - registers the "torch" backend
from dav2_ros.engines.base import (
    Engine,
    EngineConfig,
    EngineUnavailable,
    backend_names,
    create_engine,
    register_backend,
)
from dav2_ros.engines.pipeline import DepthEstimator, Prediction

__all__ = [
    "DepthEstimator",
    "Engine",
    "EngineConfig",
    "EngineUnavailable",
    "Prediction",
    "backend_names",
    "create_engine",
    "register_backend",
]
