"""The ``scale.*`` parameters as data, and the checked ``ScaleSettings`` they give (no ROS).

The node's parameter table (``dav2_ros.ros.parameters``) is its core specs followed by
``SCALE_PARAMETERS``; ``dav2 calibrate`` writes a params file for ``scale.mode: fixed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dav2_ros.paramspec import (
    ParameterError,
    ParamSpec,
    ParamValue,
    check_values,
    params_file_yaml,
)
from dav2_ros.scale.fit import FitConfig
from dav2_ros.scale.sparse import transform_from_xyz_rpy

SCALE_MODES = ("none", "fixed", "sparse")
_EXTRINSIC = ("x", "y", "z", "roll", "pitch", "yaw")
SCALE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "scale.mode",
        "none",
        "none (relative models: depth/relative only), fixed (scale.a, scale.b) or sparse "
        "(fit against the sparse_depth topic); a metric model's inverse depth is re-scaled",
        choices=SCALE_MODES,
    ),
    ParamSpec(
        "scale.a", 0.0, "fixed mode: metric inverse depth (1/m) = a * disparity + b", runtime=True
    ),
    ParamSpec("scale.b", 0.0, "fixed mode: shift of the metric inverse depth (1/m)", runtime=True),
    ParamSpec(
        "scale.sparse_type",
        "image",
        "sparse_depth message type: image (32FC1 m / 16UC1 mm, registered to the camera) "
        "or points (PointCloud2 in any frame)",
        choices=("image", "points"),
    ),
    ParamSpec(
        "scale.timeout_s",
        2.0,
        "keep the last good fit this long without a new one, then stop publishing depth",
        min_value=0.01,
        max_value=3600.0,
        runtime=True,
    ),
    ParamSpec(
        "scale.max_time_offset_s",
        0.1,
        "pair a sparse message with an image only if their stamps differ by at most this",
        min_value=0.0,
        max_value=10.0,
        runtime=True,
    ),
    ParamSpec(
        "scale.min_inliers",
        15,
        "fewest agreeing samples for a fit",
        min_value=2,
        max_value=10**7,
        runtime=True,
    ),
    ParamSpec(
        "scale.inlier_threshold",
        0.25,
        "relative inverse-depth residual under which a sample agrees with a fit",
        min_value=1e-4,
        max_value=1.0,
        runtime=True,
    ),
    ParamSpec(
        "scale.max_residual",
        0.30,
        "reject a fit whose median relative residual over all samples exceeds this",
        min_value=1e-4,
        max_value=1.0,
        runtime=True,
    ),
    ParamSpec(
        "scale.smoothing_tau_s",
        0.0,
        "EMA time constant over accepted fits in seconds; 0 = use each frame's own fit",
        min_value=0.0,
        max_value=3600.0,
        runtime=True,
    ),
    ParamSpec(
        "scale.use_tf",
        True,
        "points: take the cloud-to-camera transform from TF2 when tf2_ros is importable",
    ),
    *(
        ParamSpec(
            f"scale.extrinsic.{name}",
            0.0,
            f"points without TF2: pose of the cloud's frame in the camera optical frame, "
            f"{name} in {unit}",
            runtime=True,
        )
        for name, unit in zip(_EXTRINSIC, ["m"] * 3 + ["rad (fixed axes X, Y, Z)"] * 3, strict=True)
    ),
)


@dataclass(frozen=True)
class ScaleSettings:
    """How relative disparity becomes metres: not at all, a fixed (a, b), or a live fit."""

    mode: str
    a: float
    b: float
    sparse_type: str
    timeout_s: float
    max_time_offset_s: float
    smoothing_tau_s: float
    use_tf: bool
    T_camera_from_cloud: np.ndarray
    fit: FitConfig

    @classmethod
    def from_checked(cls, v: Mapping[str, ParamValue]) -> ScaleSettings:
        """From values already checked against ``SCALE_PARAMETERS``; only the rule that
        spans two parameters is checked here."""
        if v["scale.mode"] == "fixed" and not v["scale.a"] > 0:
            raise ParameterError(
                f"parameter 'scale.a': scale.mode 'fixed' needs a > 0, got {v['scale.a']}; "
                "estimate it with `dav2 calibrate` and pass the file it writes as --params-file"
            )
        extrinsic = [v[f"scale.extrinsic.{name}"] for name in _EXTRINSIC]
        return cls(
            mode=v["scale.mode"],
            a=v["scale.a"],
            b=v["scale.b"],
            sparse_type=v["scale.sparse_type"],
            timeout_s=v["scale.timeout_s"],
            max_time_offset_s=v["scale.max_time_offset_s"],
            smoothing_tau_s=v["scale.smoothing_tau_s"],
            use_tf=v["scale.use_tf"],
            T_camera_from_cloud=transform_from_xyz_rpy(extrinsic[:3], extrinsic[3:]),
            fit=FitConfig(
                min_inliers=v["scale.min_inliers"],
                inlier_threshold=v["scale.inlier_threshold"],
                max_residual=v["scale.max_residual"],
            ),
        )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ScaleSettings:
        """Check ``scale.*`` values (missing → default); ParameterError names the culprit."""
        return cls.from_checked(check_values(SCALE_PARAMETERS, values))


def fixed_params_yaml(a: float, b: float, comment: str = "") -> str:
    """A params file for every node (``/**``) setting ``scale.mode: fixed`` with this a, b."""
    return params_file_yaml({"scale.mode": "fixed", "scale.a": a, "scale.b": b}, comment=comment)
