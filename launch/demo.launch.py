"""The demo on a ROS 2 install: ``ros2 launch dav2_ros demo.launch.py``.

Synthetic camera (``dav2_demo_camera``) + depth node (``depth_node``) in the
``/camera`` namespace, and RViz with config/depth.rviz (it shows /camera/depth,
/camera/depth/colored and /camera/points in ``camera_optical_frame``). Arguments:
``rate`` (Hz), ``width``, ``height``, ``params_file``, ``rviz``, ``fastdds_profile``
(``off``: camera and node start without the shared-memory profile), and ``monitor``
(also start ``dav2_demo_monitor``, which scores depth against the ground truth
and writes panels, a PLY and summary.json to ``out_dir``).
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

NAMESPACE = "/camera"  # what config/depth.rviz displays


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dav2_ros")
    arg = LaunchConfiguration
    return LaunchDescription(
        [
            DeclareLaunchArgument("rate", default_value="10.0", description="camera rate, Hz"),
            DeclareLaunchArgument("width", default_value="640", description="image width"),
            DeclareLaunchArgument("height", default_value="480", description="image height"),
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
            DeclareLaunchArgument("rviz", default_value="true", description="start RViz"),
            DeclareLaunchArgument(
                "monitor", default_value="false", description="also score depth vs ground truth"
            ),
            DeclareLaunchArgument(
                "out_dir", default_value="demo_out", description="where the monitor writes"
            ),
            Node(
                package="dav2_ros",
                executable="dav2_demo_camera",
                name="dav2_demo_camera",
                namespace=NAMESPACE,
                parameters=[
                    {"rate_hz": arg("rate"), "width": arg("width"), "height": arg("height")}
                ],
                output="screen",
            ),
            Node(
                package="dav2_ros",
                executable="depth_node",
                name="dav2_depth",
                namespace=NAMESPACE,
                # The camera publishes best effort (SensorDataQoS), the node's default input.
                parameters=[arg("params_file")],
                output="screen",
            ),
            Node(
                package="dav2_ros",
                executable="dav2_demo_monitor",
                name="dav2_demo_monitor",
                namespace=NAMESPACE,
                parameters=[{"out_dir": arg("out_dir"), "duration_s": 1e9}],
                output="screen",
                condition=IfCondition(arg("monitor")),
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "config", "depth.rviz")],
                condition=IfCondition(arg("rviz")),
            ),
        ]
    )
