"""Depth node for one camera: ``ros2 launch dav2_ros depth.launch.py camera:=/camera``.

Arguments:
- ``camera``: namespace of the camera's ``image``/``camera_info``; outputs appear under it.
- ``params_file``: default the installed config/depth.yaml.
- ``lifecycle``: ``true`` starts ``depth_lifecycle_node`` as a managed node; ``autostart``
  (default ``true``) then configures and activates it. With ``autostart:=false`` a
  lifecycle manager (nav2_lifecycle_manager, config/lifecycle_manager.yaml) brings it up.
- ``camera_package`` / ``camera_executable`` / ``camera_params_file``: also start the camera
  driver in the ``camera`` namespace, with the node's Fast DDS profile, so a best-effort
  camera's large images arrive whole (docs/transport.md).
- ``fastdds_profile``: default ``on``, or ``$DAV2_FASTDDS_PROFILE``: the node (and a camera
  started here) publish large messages through a shared-memory segment; ``off``: Fast DDS
  defaults.
- ``rviz``: start RViz with config/depth.rviz.
Several cameras: include this file once per camera with another ``camera``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.conditions import IfCondition, UnlessCondition
from launch.events import matches_action
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

# dav2_ros.ros.transport.SWITCH_VARIABLE: the nodes start their DDS participant with the
# bundled Fast DDS profile (config/fastdds_large_data.xml) unless it says off.
PROFILE_SWITCH = "DAV2_FASTDDS_PROFILE"
PROFILE_FILE = "fastdds_large_data.xml"
# Fast DDS 2.x (Humble, Jazzy) reads the first, 3.x the second.
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
OFF = ("off", "0", "false", "no")


def camera_driver(context, share: str) -> list:
    """The camera driver named by ``camera_executable`` (none when empty), started with
    the node's Fast DDS profile unless ``fastdds_profile`` is off."""
    executable = LaunchConfiguration("camera_executable").perform(context)
    if not executable:
        return []
    params = LaunchConfiguration("camera_params_file").perform(context)
    env = {}
    if LaunchConfiguration("fastdds_profile").perform(context).strip().lower() not in OFF:
        profile = os.path.join(share, "config", PROFILE_FILE)
        env = {variable: profile for variable in PROFILE_VARIABLES}
    return [
        Node(
            package=LaunchConfiguration("camera_package").perform(context),
            executable=executable,
            namespace=LaunchConfiguration("camera"),
            parameters=[params] if params else [],
            additional_env=env,
            output="screen",
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dav2_ros")
    camera = LaunchConfiguration("camera")
    lifecycle = LaunchConfiguration("lifecycle")
    params = [LaunchConfiguration("params_file")]
    managed = LifecycleNode(
        package="dav2_ros",
        executable="depth_lifecycle_node",
        name="dav2_depth",
        namespace=camera,
        parameters=params,
        output="screen",
        condition=IfCondition(lifecycle),
    )
    # 'lifecycle'.lower() == 'true' == 'autostart'.lower(): both true (a chained comparison)
    both = [
        "'",
        lifecycle,
        "'.lower() == 'true' == '",
        LaunchConfiguration("autostart"),
        "'.lower()",
    ]
    autostart = IfCondition(PythonExpression(both))
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
                "lifecycle",
                default_value="false",
                description="true: depth_lifecycle_node, a managed node (configure, activate)",
            ),
            DeclareLaunchArgument(
                "autostart",
                default_value="true",
                description="with lifecycle:=true: configure and activate at launch; false: "
                "wait for a lifecycle manager",
            ),
            DeclareLaunchArgument(
                "camera_package", default_value="", description="package of a camera driver"
            ),
            DeclareLaunchArgument(
                "camera_executable",
                default_value="",
                description="camera driver to start in the camera namespace ('' = none)",
            ),
            DeclareLaunchArgument(
                "camera_params_file", default_value="", description="the driver's parameters"
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
                parameters=params,
                output="screen",
                condition=UnlessCondition(lifecycle),
            ),
            managed,
            EmitEvent(
                event=ChangeState(
                    lifecycle_node_matcher=matches_action(managed),
                    transition_id=Transition.TRANSITION_CONFIGURE,
                ),
                condition=autostart,
            ),
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=managed,
                    start_state="configuring",  # not a deactivate: that one stays inactive
                    goal_state="inactive",
                    entities=[
                        EmitEvent(
                            event=ChangeState(
                                lifecycle_node_matcher=matches_action(managed),
                                transition_id=Transition.TRANSITION_ACTIVATE,
                            )
                        )
                    ],
                ),
                condition=autostart,
            ),
            OpaqueFunction(function=camera_driver, args=[share]),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "config", "depth.rviz")],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
