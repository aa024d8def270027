"""The ``scale.*`` parameters: their values, checks, and the YAML ``dav2 calibrate`` writes."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

SCALE_MODES = ("none", "fixed", "sparse")


@dataclass(frozen=True)
class ScaleParams:
    """How relative disparity becomes metres: not at all, a fixed (a, b), or a live fit."""

    mode: str = "none"
    a: float = 0.0  # fixed mode: metric inverse depth (1/m) = a·disparity + b
    b: float = 0.0
    timeout_s: float = 2.0  # sparse mode: keep the last good fit this long, then stop `depth`
    min_inliers: int = 15
    smoothing_tau_s: float = 0.0  # EMA time constant over fits; 0 = per-frame fit
    max_residual: float = 0.30
    inlier_threshold: float = 0.25

    def __post_init__(self) -> None:
        if self.mode not in SCALE_MODES:
            raise ValueError(f"scale.mode must be one of {SCALE_MODES}, got {self.mode!r}")
        if self.mode == "fixed" and not self.a > 0:
            raise ValueError(
                f"scale.mode 'fixed' needs scale.a > 0 (got {self.a}); run `dav2 calibrate` "
                "to estimate scale.a and scale.b from image + depth pairs"
            )


def fixed_params_yaml(a: float, b: float, node_name: str = "/**", comment: str = "") -> str:
    """A ROS 2 parameters file setting ``scale.mode: fixed`` with this a, b.

    ``/**`` matches the node under any name or namespace, so the file can be
    passed as one more ``--params-file`` after the main configuration.
    """
    body = {node_name: {"ros__parameters": {"scale": {"mode": "fixed", "a": a, "b": b}}}}
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + yaml.safe_dump(body, sort_keys=False)
