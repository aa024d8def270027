"""The depth node's parameter table and its checked settings (one table, one check).

``PARAMETERS`` is fixed: the core specs below followed by the metric-scale specs
(``dav2_ros.scale.settings``). The node declares exactly these (with descriptions and
ranges), and tests compare config/depth.yaml and the launch file against it. Every
value is checked once, by ``settings_from_values``, into ``NodeSettings``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dav2_ros.geometry.laserscan import ScanSettings
from dav2_ros.paramspec import ParameterError, ParamSpec, ParamValue, check_values
from dav2_ros.scale.settings import SCALE_PARAMETERS, ScaleSettings

CORE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model.checkpoint",
        "",
        "checkpoint file or directory, or hf:<owner>/<repo>[/<file>][@<revision>] from the "
        "Hugging Face cache; '' = bundled default model",
    ),
    ParamSpec(
        "model.download",
        False,
        "an hf: model.checkpoint missing from the Hugging Face cache is downloaded at start-up; "
        "false = cache only (fetch ahead with `dav2 fetch NAME`)",
    ),
    ParamSpec("model.encoder", "", "encoder size (vits, vitb, vitl, vitg, vitt, ...); '' = infer"),
    ParamSpec(
        "model.depth_type",
        "auto",
        "auto = from the checkpoint; relative (disparity) or metric (metres)",
        choices=("auto", "relative", "metric"),
    ),
    ParamSpec(
        "model.max_depth",
        0.0,
        "metric models: output range in metres; 0 = from the checkpoint",
        min_value=0.0,
        max_value=1000.0,
    ),
    ParamSpec(
        "model.confidence",
        "auto",
        "per-pixel confidence on 'depth/confidence' (32FC1 in [0, 1], 1 = trusted) and for "
        "points.min_confidence: auto = the checkpoint's confidence head if it has one, else "
        "none (no topic); head = require the head; flip = disagreement with a second pass "
        "on the mirrored image (any checkpoint, twice the inference); off = none",
        choices=("auto", "head", "flip", "off"),
    ),
    ParamSpec(
        "model.focal_correction",
        "auto",
        "metric depth × f / f_canonical, f: the camera_info focal length (geometric mean of "
        "fx, fy; P when camera.rectified) at the network input. auto: when the checkpoint "
        "records its canonical focal length or model.canonical_focal_px is set, and the "
        "frame has a calibrated camera_info; off: the network's metres as they are",
        choices=("auto", "off"),  # dav2_ros.model.focal.FOCAL_CORRECTIONS (torch-free here)
    ),
    ParamSpec(
        "model.canonical_focal_px",
        0.0,
        "the canonical camera's focal length in pixels of the network input (shorter side "
        "at the checkpoint's input_size); 0 = the checkpoint's record (none: no correction). "
        "Official metric checkpoints: docs/node.md",
        min_value=0.0,
        max_value=100000.0,
    ),
    ParamSpec(
        "engine.backend",
        "auto",
        "auto | torch | onnxruntime | openvino | tensorrt, or a plugin 'package.module:factory'",
    ),
    ParamSpec(
        "engine.device",
        "cpu",
        "cpu, cuda or cuda:N; openvino also gpu, gpu.N (Intel GPU) or npu (Intel NPU)",
    ),
    ParamSpec(
        "engine.precision",
        "auto",
        "network precision; auto = the fastest that passes the self-check "
        "(int8/bf16 only within engine.max_deviation; fp32 without the self-check)",
        choices=("auto", "fp32", "fp16", "bf16", "int8"),
    ),
    ParamSpec(
        "engine.input_size",
        0,
        "network input: shorter image side in pixels (multiple of 14); 0 = the checkpoint's",
        min_value=0,
        max_value=2058,
        step=14,
    ),
    ParamSpec(
        "engine.threads",
        0,
        "CPU threads of the engine; 0 = all cores this process may use",
        min_value=0,
        max_value=256,
        step=1,
    ),
    ParamSpec(
        "engine.self_check",
        True,
        "check every engine but fp32 torch against fp32 torch on a calibration frame "
        "when it is built (int8, fp16/bf16, compiled, TensorRT, plugins)",
    ),
    ParamSpec(
        "engine.max_deviation",
        0.02,
        "self-check limit: relative L2 deviation from fp32 torch; above it the engine "
        "is refused (auto: the next backend is tried)",
        min_value=1e-9,
        max_value=10.0,
    ),
    ParamSpec(
        "engine.allow_deviation",
        False,
        "keep an explicit engine that failed its self-check (still reported as an error)",
    ),
    ParamSpec(
        "engine.calibration",
        "",
        "int8 calibration images: a folder of images or a rosbag2 of the camera; "
        "'' = generated scenes (dav2_ros.sim)",
    ),
    ParamSpec(
        "engine.calibration_topic",
        "",
        "image topic of the engine.calibration rosbag2; '' = its only image topic",
    ),
    ParamSpec(
        "engine.warmup_width",
        640,
        "configure builds the engine and runs one frame of this size, so the first camera "
        "frame is not slow (an image of another aspect ratio builds its own); 0 = no warm-up",
        min_value=0,
        max_value=16384,
        step=1,
    ),
    ParamSpec(
        "engine.warmup_height",
        480,
        "height of the warm-up frame (engine.warmup_width); 0 = no warm-up",
        min_value=0,
        max_value=16384,
        step=1,
    ),
    ParamSpec(
        "image_transport",
        "raw",
        "raw: subscribe 'image'; compressed: subscribe 'image/compressed' (JPEG/PNG)",
        choices=("raw", "compressed"),
    ),
    ParamSpec(
        "output.resolution",
        "input",
        "input: depth at the camera's resolution; model: at the network's resolution",
        choices=("input", "model"),
        runtime=True,
    ),
    ParamSpec("points.enabled", True, "publish the organised point cloud 'points'", runtime=True),
    ParamSpec(
        "points.stride",
        1,
        "keep every n-th pixel in x and y in the point cloud",
        min_value=1,
        max_value=64,
        step=1,
        runtime=True,
    ),
    ParamSpec(
        "points.max_range",
        0.0,
        "points farther than this (metres, along Z) become NaN; 0 = no limit",
        min_value=0.0,
        max_value=1000.0,
        runtime=True,
    ),
    ParamSpec(
        "points.min_confidence",
        0.0,
        "points (and their scan beams) whose confidence is below this become NaN; 'depth' "
        "keeps every pixel. 0 = keep all; 0.8 keeps pixels whose expected depth error is "
        "below ~25 % (confidence = exp(-expected |ln d - ln d*|)); needs model.confidence",
        min_value=0.0,
        max_value=1.0,
        runtime=True,
    ),
    ParamSpec(
        "points.color",
        True,
        "add the image colour as an 'rgb' field (xyz+rgb layout)",
        runtime=True,
    ),
    ParamSpec(
        "camera.rectified",
        False,
        "the image is rectified upstream (image_proc's image_rect): points and scan use P's "
        "pinhole and ignore D; false: K and D (plumb_bob, rational_polynomial, equidistant)",
        runtime=True,
    ),
    ParamSpec(
        "scan.enabled", True, "publish 'scan' (LaserScan, depthimage_to_laserscan's)", runtime=True
    ),
    ParamSpec(
        "scan.height",
        1,
        "depth image rows around the optical centre row; each column's shortest range wins",
        min_value=1,
        max_value=4096,
        step=1,
        runtime=True,
    ),
    ParamSpec(
        "scan.range_min",
        0.45,
        "metres; shorter ranges are dropped (NaN)",
        min_value=0.0,
        max_value=1000.0,
        runtime=True,
    ),
    ParamSpec(
        "scan.range_max",
        10.0,
        "metres; longer ranges are dropped (NaN)",
        min_value=0.0,
        max_value=1000.0,
        runtime=True,
    ),
    ParamSpec(
        "scan.output_frame",
        "",
        "frame_id of the scan; '' = the depth's frame without '_optical' (REP 103, x forward)",
        runtime=True,
    ),
    ParamSpec(
        "scan.scan_time",
        0.033,
        "LaserScan.scan_time: seconds between scans (the camera's frame period)",
        min_value=0.0,
        max_value=10.0,
        runtime=True,
    ),
    ParamSpec(
        "temporal.mode",
        "align",
        "align: damp the frame-to-frame scale flicker of the depth (measured by "
        "bench/temporal.py; AbsRel unchanged, one frame of lag); none: each frame as predicted",
        choices=("none", "align"),
        runtime=True,
    ),
    ParamSpec(
        "temporal.strength",
        0.5,
        "share of the alignment to the previous output applied; lag strength/(1-strength) "
        "frames (0.5: one frame)",
        min_value=0.0,
        max_value=0.95,
        runtime=True,
    ),
    ParamSpec(
        "temporal.static_threshold",
        0.04,
        "a pixel is unchanged when its median-normalised brightness moves less than this",
        min_value=0.001,
        max_value=1.0,
        runtime=True,
    ),
    ParamSpec(
        "temporal.min_static_fraction",
        0.2,
        "fewer unchanged pixels (fast motion): the frame passes unaligned",
        min_value=0.01,
        max_value=1.0,
        runtime=True,
    ),
    ParamSpec(
        "temporal.max_gap_s",
        0.5,
        "frames further apart (stamps) start afresh, as does a change of image size",
        min_value=0.001,
        max_value=3600.0,
        runtime=True,
    ),
    ParamSpec(
        "qos.input_reliability",
        "auto",
        "image, camera_info and sparse_depth subscriptions: auto = reliable when every "
        "publisher of the topic is reliable, else best effort (re-matched as publishers "
        "come and go); reliable; best_effort",
        choices=("auto", "reliable", "best_effort"),
    ),
    ParamSpec(
        "qos.output_reliability",
        "reliable",
        "reliability of every published topic",
        choices=("reliable", "best_effort"),
    ),
)
PARAMETERS: tuple[ParamSpec, ...] = (*CORE_PARAMETERS, *SCALE_PARAMETERS)

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|gpu(\.\d+)?|npu)$")
_INTEL_DEVICE = re.compile(r"^(gpu(\.\d+)?|npu)$")
_INTEL_BACKENDS = ("openvino", "auto")


def parameter_names() -> list[str]:
    return [spec.name for spec in PARAMETERS]


@dataclass(frozen=True)
class NodeSettings:
    """Validated values of the core parameters, with units in the names."""

    checkpoint: str
    download: bool  # an hf: checkpoint missing from the cache may be downloaded
    encoder: str
    depth_type: str
    max_depth_m: float
    confidence: str  # auto | head | flip | off (dav2_ros.model.confidence)
    focal_correction: str  # auto | off (dav2_ros.model.focal)
    canonical_focal_px: float  # 0: the checkpoint's record
    backend: str
    device: str
    precision: str
    input_size: int
    threads: int
    self_check: bool
    max_deviation: float  # relative L2 of an engine's output against fp32 torch
    allow_deviation: bool
    calibration: str  # int8 calibration images: folder or rosbag2; '' = generated
    calibration_topic: str
    warmup_hw: tuple[int, int]  # (0, 0): no warm-up frame
    image_transport: str
    output_resolution: str
    points_enabled: bool
    points_stride: int
    points_max_range_m: float
    points_min_confidence: float  # 0: keep every point
    points_color: bool
    camera_rectified: bool
    scan_enabled: bool
    scan: ScanSettings
    input_reliability: str
    output_reliability: str
    scale: ScaleSettings
    # TemporalSettings keywords (mode, strength, ...): built where the model is (torch)
    temporal: dict[str, Any]


def settings_from_values(values: Mapping[str, Any]) -> NodeSettings:
    """Check every parameter once (missing ones take their default) → ``NodeSettings``."""
    checked = check_values(PARAMETERS, values)
    device, backend = checked["engine.device"], checked["engine.backend"]
    if not _DEVICE.match(device):
        raise ParameterError(
            f"parameter 'engine.device': expected cpu, cuda, cuda:N, or for the openvino "
            f"backend gpu, gpu.N or npu; got {device!r}"
        )
    if _INTEL_DEVICE.match(device) and backend not in _INTEL_BACKENDS and ":" not in backend:
        raise ParameterError(
            f"parameter 'engine.device': {device!r} is an Intel device, which only the "
            f"openvino backend runs; engine.backend is {backend!r}. Set engine.backend to "
            "openvino (or auto), or engine.device to cpu/cuda"
        )
    if not checked["engine.backend"]:
        raise ParameterError("parameter 'engine.backend': must not be empty (use 'auto')")
    return NodeSettings(
        checkpoint=checked["model.checkpoint"],
        download=checked["model.download"],
        encoder=checked["model.encoder"],
        depth_type=checked["model.depth_type"],
        max_depth_m=checked["model.max_depth"],
        confidence=checked["model.confidence"],
        focal_correction=checked["model.focal_correction"],
        canonical_focal_px=checked["model.canonical_focal_px"],
        backend=checked["engine.backend"],
        device=checked["engine.device"],
        precision=checked["engine.precision"],
        input_size=checked["engine.input_size"],
        threads=checked["engine.threads"],
        self_check=checked["engine.self_check"],
        max_deviation=checked["engine.max_deviation"],
        allow_deviation=checked["engine.allow_deviation"],
        calibration=checked["engine.calibration"],
        calibration_topic=checked["engine.calibration_topic"],
        warmup_hw=_warmup_hw(checked),
        image_transport=checked["image_transport"],
        output_resolution=checked["output.resolution"],
        points_enabled=checked["points.enabled"],
        points_stride=checked["points.stride"],
        points_max_range_m=checked["points.max_range"],
        points_min_confidence=checked["points.min_confidence"],
        points_color=checked["points.color"],
        camera_rectified=checked["camera.rectified"],
        scan_enabled=checked["scan.enabled"],
        scan=_scan_settings(checked),
        input_reliability=checked["qos.input_reliability"],
        output_reliability=checked["qos.output_reliability"],
        scale=ScaleSettings.from_checked(checked),
        temporal={
            name.removeprefix("temporal."): value
            for name, value in checked.items()
            if name.startswith("temporal.")
        },
    )


def _warmup_hw(checked: Mapping[str, Any]) -> tuple[int, int]:
    height, width = checked["engine.warmup_height"], checked["engine.warmup_width"]
    if (height == 0) != (width == 0):
        raise ParameterError(
            f"parameters 'engine.warmup_width' and 'engine.warmup_height': both 0 (no warm-up) "
            f"or both set, got {width}x{height}"
        )
    return height, width


def _scan_settings(checked: Mapping[str, Any]) -> ScanSettings:
    try:
        return ScanSettings(
            height_px=checked["scan.height"],
            range_min_m=checked["scan.range_min"],
            range_max_m=checked["scan.range_max"],
            scan_time_s=checked["scan.scan_time"],
            output_frame=checked["scan.output_frame"],
        )
    except ValueError as exc:
        raise ParameterError(f"parameters 'scan.*': {exc}") from exc


def declare_parameters(node: Any) -> dict[str, str]:
    """Declare every parameter on an rclpy node (descriptions, ranges) with the values it
    was given, unchecked: ``settings_from_values`` checks them, so a wrong YAML type gets
    the same actionable message as a wrong value (dynamic typing on the ROS side).

    A value rclpy itself refuses (outside the declared range) is declared with its
    default instead; the returned ``{name: reason}`` says which, so the node can refuse
    to configure until it is set again (a lifecycle node stays alive to be corrected).
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import ParameterException

    refused: dict[str, str] = {}
    for spec in PARAMETERS:
        when = "set while running" if spec.runtime else "read-only once configured"
        descriptor = ParameterDescriptor(
            description=f"{spec.description} ({when})", dynamic_typing=True
        )
        if spec.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
        if spec.min_value is not None and spec.max_value is not None:
            if isinstance(spec.default, float):
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=spec.min_value, to_value=spec.max_value)
                ]
            else:
                descriptor.integer_range = [
                    IntegerRange(
                        from_value=int(spec.min_value),
                        to_value=int(spec.max_value),
                        step=spec.step,
                    )
                ]
        try:
            node.declare_parameter(spec.name, spec.default, descriptor)
        except ParameterException as exc:
            refused[spec.name] = f"parameter '{spec.name}': {exc}"
            node.declare_parameter(spec.name, spec.default, descriptor, ignore_override=True)
    return refused


def parameter_values(node: Any) -> dict[str, ParamValue]:
    """The node's current values of every parameter of the table."""
    return {spec.name: node.get_parameter(spec.name).value for spec in PARAMETERS}
