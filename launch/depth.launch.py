"""Depth node for one camera: ``ros2 launch dav2_ros depth.launch.py camera:=/camera``.

Arguments: ``camera`` (namespace of the camera's ``image``/``camera_info``; outputs
appear under it), ``params_file`` (default: the installed config/depth.yaml), ``rviz``.
Several cameras: include this file once per camera with another ``camera``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dav2_ros")
    camera = LaunchConfiguration("camera")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "camera", default_value="/camera", description="namespace of the camera topics"
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "depth.yaml"),
                description="parameters of dav2_depth",
            ),
            DeclareLaunchArgument("rviz", default_value="false", description="start RViz"),
            Node(
                package="dav2_ros",
                executable="depth_node",
                name="dav2_depth",
                namespace=camera,
                parameters=[LaunchConfiguration("params_file")],
                output="screen",
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "config", "depth.rviz")],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
