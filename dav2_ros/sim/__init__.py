"""ROS-free synthetic camera: procedural 3D scenes ray cast with Open3D.

``make_scene(seed, style)`` builds a scene, ``render(scene, intrinsics, pose_c2w)``
returns a ``Frame`` (RGB uint8, metric z-depth with NaN where invalid, valid mask,
K). Used by the training package for data and by the demo's synthetic camera.
"""

from dav2_ros.sim.camera import (
    Intrinsics,
    look_at,
    random_intrinsics,
    random_pose,
    smooth_trajectory,
)
from dav2_ros.sim.render import Frame, render
from dav2_ros.sim.scene import HELD_OUT_STYLES, SCENE_KINDS, STYLES, Scene, make_scene

__all__ = [
    "HELD_OUT_STYLES",
    "SCENE_KINDS",
    "STYLES",
    "Frame",
    "Intrinsics",
    "Scene",
    "look_at",
    "make_scene",
    "random_intrinsics",
    "random_pose",
    "render",
    "smooth_trajectory",
]
