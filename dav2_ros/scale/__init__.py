"""Metric depth from relative models: scale-and-shift recovery in inverse-depth space (no ROS).

``fit`` fits ``1/depth = a·disparity + b`` robustly, ``sparse`` turns depth images
and point clouds into samples, ``tracker`` decides which (a, b) to use over time,
``settings`` holds the ``scale.*`` parameters, and ``source`` (imported on its own: it
needs ``geometry``) puts it all together for the node, frame by frame.
"""

from dav2_ros.scale.fit import (
    FitConfig,
    ScaleFit,
    align_least_squares,
    apply_scale,
    fit_scale_shift,
)
from dav2_ros.scale.settings import (
    SCALE_MODES,
    SCALE_PARAMETERS,
    ScaleSettings,
    fixed_params_yaml,
)
from dav2_ros.scale.sparse import (
    SparseSamples,
    samples_from_depth_image,
    samples_from_points,
    transform_from_quaternion,
    transform_from_xyz_rpy,
)
from dav2_ros.scale.tracker import (
    HOLDING,
    REJECTED,
    STALE,
    TRACKING,
    WAITING,
    ScaleEstimate,
    ScaleTracker,
)

__all__ = [
    "HOLDING",
    "REJECTED",
    "SCALE_MODES",
    "SCALE_PARAMETERS",
    "STALE",
    "TRACKING",
    "WAITING",
    "FitConfig",
    "ScaleEstimate",
    "ScaleFit",
    "ScaleSettings",
    "ScaleTracker",
    "SparseSamples",
    "align_least_squares",
    "apply_scale",
    "fit_scale_shift",
    "fixed_params_yaml",
    "samples_from_depth_image",
    "samples_from_points",
    "transform_from_quaternion",
    "transform_from_xyz_rpy",
]
