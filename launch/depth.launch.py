"""Depth node for one camera: ``ros2 launch dav2_ros depth.launch.py camera:=/camera``.

Arguments: ``camera`` (namespace of the camera's ``image``/``camera_info``; outputs
appear under it), ``params_file`` (default: the installed config/depth.yaml), ``rviz``,
``fastdds_profile`` (default ``on``, or ``$DAV2_FASTDDS_PROFILE``: the node publishes large
messages through a shared-memory segment; ``off``: Fast DDS defaults).
Several cameras: include this file once per camera with another ``camera``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

# dav2_ros.ros.transport.SWITCH_VARIABLE: the nodes start their DDS participant with the
# bundled Fast DDS profile (config/fastdds_large_data.xml) unless it says off.
PROFILE_SWITCH = "DAV2_FASTDDS_PROFILE"


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
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value=EnvironmentVariable(PROFILE_SWITCH, default_value="on"),
                description="on: shared-memory Fast DDS profile for large messages; off: "
                "Fast DDS defaults (a profile named in FASTRTPS_DEFAULT_PROFILES_FILE wins)",
            ),
            SetEnvironmentVariable(PROFILE_SWITCH, LaunchConfiguration("fastdds_profile")),
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
