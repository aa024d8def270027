"""The two ways to install agree: a ROS 2 install gets from rosdep (package.xml) what it
has and from requirements/ros.txt only what rosdep lacks; the pip environment
(requirements/base.txt) is the same set with ROS as wheels. Every third-party module the
deployable package imports is provided both ways, at one pinned version."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
# rosdep keys of package.xml → the pip distribution the pip environment pins instead.
ROSDEP_TO_PIP = {
    "python3-numpy": "numpy",
    "python3-opencv": "opencv-python-headless",
    "python3-yaml": "pyyaml",
}
# Import name → pip distribution, where they differ.
MODULE_TO_PIP = {
    "cv2": "opencv-python-headless",
    "yaml": "pyyaml",
    "open3d": "open3d-cpu",
    "rosbags": "rosbags-image",
}
# Imported only behind an optional extra (setup.py extras_require) or a ROS install.
OPTIONAL_MODULES = {"torch_tensorrt": "setup.py extra 'tensorrt'"}
# ROS packages the wheels do not provide here, used only where importable (find_spec).
ROS_ONLY = {"tf2_ros", "launch", "launch_ros"}


def pins(path: Path) -> dict[str, str]:
    """``name → version`` of a requirements file and the files it includes (``-r``)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^\s;]+)", line)
        assert match, f"{path.name}: {line!r} is not pinned as name==version"
        found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


def exec_depends() -> set[str]:
    return {e.text.strip() for e in ET.parse(ROOT / "package.xml").getroot().iter("exec_depend")}


def imported_modules() -> set[str]:
    """Top-level third-party modules ``dav2_ros`` imports (anywhere, lazily too)."""
    found: set[str] = set()
    for path in (ROOT / "dav2_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "dav2_ros"}


def ros_wheel_package(distribution: str) -> str | None:
    """``ros-jazzy-sensor-msgs`` → ``sensor_msgs``; None for other distributions."""
    if not distribution.startswith("ros-jazzy-"):
        return None
    return distribution.removeprefix("ros-jazzy-").replace("-", "_")


def test_ros_txt_holds_only_what_rosdep_lacks() -> None:
    ros = pins(REQUIREMENTS / "ros.txt")
    assert ros, "requirements/ros.txt pins nothing"
    assert not [name for name in ros if name.startswith("ros-")], "ROS comes from the install"
    assert not set(ros) & set(ROSDEP_TO_PIP.values()), "rosdep provides these (package.xml)"


def test_base_is_ros_txt_plus_ros_wheels_plus_the_rosdep_packages_same_versions() -> None:
    base, ros = pins(REQUIREMENTS / "base.txt"), pins(REQUIREMENTS / "ros.txt")
    assert {name: base.get(name) for name in ros} == ros, "one version for both installs"
    rest = set(base) - set(ros)
    wheels = {name for name in rest if ros_wheel_package(name)}
    assert rest - wheels == set(ROSDEP_TO_PIP.values())
    # Each ROS wheel is a package the ROS install declares in package.xml, and back.
    assert {ros_wheel_package(name) for name in wheels} <= exec_depends()
    for key, distribution in ROSDEP_TO_PIP.items():
        assert key in exec_depends() and distribution in base, key


def test_every_module_the_package_imports_is_provided_by_both_installs() -> None:
    ros, base = pins(REQUIREMENTS / "ros.txt"), pins(REQUIREMENTS / "base.txt")
    rosdep = {ROSDEP_TO_PIP[key] for key in exec_depends() if key in ROSDEP_TO_PIP}
    ros_packages = exec_depends()
    wheel_packages = {ros_wheel_package(name) for name in base if ros_wheel_package(name)}
    missing = []
    for module in sorted(imported_modules() - set(OPTIONAL_MODULES)):
        distribution = MODULE_TO_PIP.get(module, module).lower().replace("_", "-")
        on_ros = module in ros_packages or distribution in rosdep | set(ros)
        # In the pip environment the message packages rclpy's wheel brings are there too.
        on_pip = distribution in base or module in wheel_packages or module in ROS_PIP_EXTRAS
        if module in ROS_ONLY:
            on_pip = True  # imported only where a ROS install has it (find_spec)
        if not (on_ros and on_pip):
            missing.append(f"{module} (ROS install: {on_ros}, pip environment: {on_pip})")
    assert missing == []


# Message and index packages that ros-jazzy-rclpy's wheel installs as its dependencies.
ROS_PIP_EXTRAS = {"rcl_interfaces", "ament_index_python", "rclpy"}


def test_the_training_package_adds_only_what_the_node_lacks() -> None:
    train, base = pins(REQUIREMENTS / "train.txt"), pins(REQUIREMENTS / "base.txt")
    assert not set(train) & set(base), "one pin per package"
