"""Launch files and config/depth.yaml name only what exists: executables of setup.py,
parameters the depth node declares (its parameter table), with valid values.

The launch files are parsed (``ast``) everywhere; they are executed for real only where
``launch_ros`` is importable (a ROS 2 install), since it has no PyPI wheel.
"""

from __future__ import annotations

import ast
import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dav2_ros.paramspec import ParameterError, ParamSpec, check_value
from dav2_ros.ros import transport
from dav2_ros.ros.parameters import PARAMETERS, parameter_names, settings_from_values
from dav2_ros.ros.params_yaml import render_depth_yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
DEPTH_YAML = ROOT / "config" / "depth.yaml"
NODE_PARAMETERS = {spec.name: spec for spec in PARAMETERS}
NODE_ACTIONS = ("Node", "LifecycleNode")
DEPTH_EXECUTABLES = ("depth_node", "depth_lifecycle_node")


def console_scripts() -> set[str]:
    """Names in setup.py's ``console_scripts`` (read from the source, not the install)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return {ast.literal_eval(v).split("=")[0].strip() for v in value.elts}
    raise AssertionError("setup.py has no console_scripts")


def node_calls(path: Path) -> list[dict[str, ast.expr]]:
    """Keyword arguments of every ``Node(...)`` and ``LifecycleNode(...)`` call of a package
    named in the launch file (a driver named by a launch argument is the user's)."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in NODE_ACTIONS:
            keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg}
            if isinstance(keywords.get("package"), ast.Constant):
                calls.append(keywords)
    return calls


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def depth_yaml_values() -> dict[str, object]:
    document = yaml.safe_load(DEPTH_YAML.read_text())
    assert list(document) == ["/**"], "depth.yaml must apply to the node in any namespace"
    return flatten(document["/**"]["ros__parameters"])


def test_there_is_a_depth_launch_file() -> None:
    assert ROOT / "launch" / "depth.launch.py" in LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_start_only_executables_from_setup_py(path: Path) -> None:
    scripts = console_scripts()
    for call in node_calls(path):
        package = ast.literal_eval(call["package"])
        executable = ast.literal_eval(call["executable"])
        if package == "dav2_ros":
            assert executable in scripts, f"{path.name}: {executable!r} is not in setup.py"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_give_depth_node_only_declared_parameters(path: Path) -> None:
    for call in node_calls(path):
        if ast.literal_eval(call["executable"]) not in DEPTH_EXECUTABLES:
            continue
        assert ast.literal_eval(call["name"]) == "dav2_depth"
        for item in getattr(call.get("parameters"), "elts", []):
            if isinstance(item, ast.Dict):  # inline overrides
                for key, value in zip(item.keys, item.values, strict=True):
                    name = ast.literal_eval(key)
                    assert name in NODE_PARAMETERS, f"{path.name}: unknown parameter {name!r}"
                    check_value(NODE_PARAMETERS[name], ast.literal_eval(value))


def calls_named(path: Path, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name
    ]


def declared_arguments(path: Path) -> set[str]:
    return {ast.literal_eval(call.args[0]) for call in calls_named(path, "DeclareLaunchArgument")}


def test_depth_launch_declares_its_arguments() -> None:
    declared = declared_arguments(ROOT / "launch" / "depth.launch.py")
    assert declared == {
        "camera",
        "params_file",
        "rviz",
        "fastdds_profile",
        "lifecycle",
        "autostart",
        "camera_package",
        "camera_executable",
        "camera_params_file",
    }


def test_depth_launch_starts_the_lifecycle_node_and_autostarts_it_once() -> None:
    """lifecycle:=true starts depth_lifecycle_node as a launch_ros LifecycleNode; autostart
    configures it and activates it when configure (not a deactivate) reaches inactive."""
    path = ROOT / "launch" / "depth.launch.py"
    (managed,) = calls_named(path, "LifecycleNode")
    keywords = {kw.arg: kw.value for kw in managed.keywords}
    assert ast.literal_eval(keywords["executable"]) == "depth_lifecycle_node"
    assert "depth_lifecycle_node" in console_scripts()
    assert ast.unparse(keywords["condition"]) == "IfCondition(lifecycle)"
    transitions = [ast.unparse(c) for c in calls_named(path, "ChangeState")]
    assert transitions == [
        "ChangeState(lifecycle_node_matcher=matches_action(managed), "
        "transition_id=Transition.TRANSITION_CONFIGURE)",
        "ChangeState(lifecycle_node_matcher=matches_action(managed), "
        "transition_id=Transition.TRANSITION_ACTIVATE)",
    ]
    (handler,) = calls_named(path, "OnStateTransition")
    states = {kw.arg: ast.literal_eval(kw.value) for kw in handler.keywords if "state" in kw.arg}
    assert states == {"start_state": "configuring", "goal_state": "inactive"}


def test_depth_launch_gives_a_camera_it_starts_the_nodes_profile() -> None:
    """The driver started by camera_executable gets the bundled profile's path in both Fast
    DDS variables (the ones dav2_ros.ros.transport names), unless fastdds_profile is off."""
    source = (ROOT / "launch" / "depth.launch.py").read_text()
    tree = ast.parse(source)
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value, (ast.Constant, ast.Tuple))
    }
    assert constants["PROFILE_VARIABLES"] == transport.PROFILE_VARIABLES
    assert constants["PROFILE_FILE"] == transport.PROFILE_FILE
    assert set(constants["OFF"]) == set(transport.SWITCH_OFF)
    assert (ROOT / "config" / transport.PROFILE_FILE).is_file()
    assert "additional_env=env" in source


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_pass_the_fastdds_profile_switch_to_the_nodes(path: Path) -> None:
    """``fastdds_profile:=off`` reaches the nodes as the variable dav2_ros.ros.transport reads
    (before rclpy.init, where a ROS parameter would come too late); its default is the
    variable's current value, else ``on``."""
    assert "fastdds_profile" in declared_arguments(path)
    tree = ast.parse(path.read_text())
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant)
    }
    assert constants.get("PROFILE_SWITCH") == transport.SWITCH_VARIABLE
    (setter,) = calls_named(path, "SetEnvironmentVariable")
    assert ast.unparse(setter.args[0]) == "PROFILE_SWITCH"
    assert ast.unparse(setter.args[1]) == "LaunchConfiguration('fastdds_profile')"
    (declaration,) = [
        call
        for call in calls_named(path, "DeclareLaunchArgument")
        if ast.literal_eval(call.args[0]) == "fastdds_profile"
    ]
    default = next(kw.value for kw in declaration.keywords if kw.arg == "default_value")
    assert ast.unparse(default) == "EnvironmentVariable(PROFILE_SWITCH, default_value='on')"
    assert "on" in transport.SWITCH_ON


def test_node_matches_the_cameras_input_qos_by_default() -> None:
    """The node's inputs take what the camera offers (auto), and no launch file
    overrides that."""
    assert depth_yaml_values()["qos.input_reliability"] == "auto"
    for path in LAUNCH_FILES:
        assert "qos.input_reliability" not in path.read_text(), path.name


def test_depth_yaml_is_what_the_parameter_table_renders() -> None:
    """config/depth.yaml is generated from the table: a parameter added to the table
    without regenerating, or a hand edit of the file, fails here."""
    assert DEPTH_YAML.read_text() == render_depth_yaml(), (
        "config/depth.yaml differs from dav2_ros/ros/parameters.py's table: run `make params`"
    )


def test_rendered_yaml_nests_a_new_parameter_in_its_group_under_its_description() -> None:
    added = ParamSpec("points.decimation", 2, "keep every n-th cloud", min_value=1, max_value=8)
    text = render_depth_yaml([*PARAMETERS, added])
    values = flatten(yaml.safe_load(text)["/**"]["ros__parameters"])
    assert values == {spec.name: spec.default for spec in PARAMETERS} | {"points.decimation": 2}
    lines = text.splitlines()
    at = lines.index("      decimation: 2")
    assert lines[at - 1] == "      # keep every n-th cloud"
    assert lines.count("    points:") == 1  # joined to the group, not a second 'points:'


def test_depth_yaml_sets_every_declared_parameter_and_nothing_else() -> None:
    assert sorted(depth_yaml_values()) == sorted(parameter_names())


def test_depth_yaml_values_pass_the_node_validation() -> None:
    settings = settings_from_values(depth_yaml_values())
    assert settings.depth_type == "auto" and settings.backend == "auto"


def test_validation_names_the_parameter_and_the_expectation() -> None:
    values = depth_yaml_values() | {"output.resolution": "half"}
    with pytest.raises(ParameterError, match=r"'output.resolution'.*one of input, model"):
        settings_from_values(values)
    with pytest.raises(ParameterError, match=r"'points.stride'.*expected a int"):
        settings_from_values(depth_yaml_values() | {"points.stride": "2"})
    with pytest.raises(ParameterError, match=r"'engine.input_size'.*multiple of 14"):
        settings_from_values(depth_yaml_values() | {"engine.input_size": 500})


def launch_skip_reason() -> str | None:
    """Why the launch file cannot be executed here, or None."""
    if importlib.util.find_spec("launch_ros") is None:
        return (
            "launch_ros is not importable (no ROS 2 install; it has no PyPI wheel): "
            "the launch file was checked by parsing instead"
        )
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("dav2_ros")
    except PackageNotFoundError:
        return "dav2_ros is not in an ament prefix (colcon build, then source install/setup.bash)"
    return None


# Run in a child process: LaunchService wants the main thread for its signal handling.
RUN_LAUNCH = """
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
include = IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]),
    launch_arguments={"camera": sys.argv[2], "params_file": sys.argv[3]}.items(),
)
service = LaunchService()
service.include_launch_description(LaunchDescription([include]))
sys.exit(service.run())
"""


@pytest.mark.ros
@pytest.mark.skipif(launch_skip_reason() is not None, reason=str(launch_skip_reason()))
def test_depth_launch_runs_the_node_in_the_camera_namespace(tmp_path: Path) -> None:
    import rclpy
    from test_ros_support import save_tiny_checkpoint, write_params

    params = write_params(
        tmp_path / "params.yaml",
        {"model.checkpoint": str(save_tiny_checkpoint(tmp_path)), "engine.backend": "torch"},
    )
    launch_file = str(ROOT / "launch" / "depth.launch.py")
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_LAUNCH, launch_file, "/launch_test", str(params)]
    )
    rclpy.init()
    probe = rclpy.create_node("launch_probe")
    try:
        deadline = time.monotonic() + 90
        found = False
        while time.monotonic() < deadline and not found and child.poll() is None:
            rclpy.spin_once(probe, timeout_sec=0.5)
            found = ("dav2_depth", "/launch_test") in probe.get_node_names_and_namespaces()
        assert found, "the launch file did not start /launch_test/dav2_depth"
    finally:
        probe.destroy_node()
        rclpy.shutdown()
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def test_rviz_config_shows_only_topics_the_node_publishes() -> None:
    """config/depth.rviz displays the node's outputs in the launch file's default namespace."""
    view = yaml.safe_load((ROOT / "config" / "depth.rviz").read_text())
    displays = view["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    published = {"/camera/depth", "/camera/depth/colored", "/camera/points", "/camera/scan"}
    assert topics == published
    classes = {d["Class"] for d in displays}
    assert {
        "rviz_default_plugins/Image",
        "rviz_default_plugins/PointCloud2",
        "rviz_default_plugins/LaserScan",
    } <= classes


def test_lifecycle_manager_example_names_the_node_and_turns_the_bond_off() -> None:
    """config/lifecycle_manager.yaml: nav2_lifecycle_manager brings up dav2_depth in the
    launch file's default namespace; rclpy has no bond, so bond_timeout must be 0.0."""
    document = yaml.safe_load((ROOT / "config" / "lifecycle_manager.yaml").read_text())
    ((name, section),) = document.items()
    values = section["ros__parameters"]
    assert values["node_names"] == ["/camera/dav2_depth"]
    assert values["bond_timeout"] == 0.0 and values["autostart"] is True
