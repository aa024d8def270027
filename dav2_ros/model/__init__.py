"""Depth Anything V2 network, sizes, transforms and checkpoint formats (no ROS)."""

from dav2_ros.model.dpt import DEPTH_TYPES, DepthAnythingV2, DepthType
from dav2_ros.model.sizes import EncoderSpec, encoder_names, get_encoder_spec, register_encoder

__all__ = [
    "DEPTH_TYPES",
    "DepthAnythingV2",
    "DepthType",
    "EncoderSpec",
    "encoder_names",
    "get_encoder_spec",
    "register_encoder",
]
