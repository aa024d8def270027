"""``colcon build`` of the package in a scratch workspace (colcon from PyPI, as on CI)
installs the node, the launch files and the config into the ament layout."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).parent / "colcon"
PACKAGE_FILES = ["setup.py", "setup.cfg", "package.xml", "resource", "dav2_ros", "launch", "config"]


@pytest.mark.skipif(not COLCON.exists(), reason=f"colcon is not installed at {COLCON}")
def test_colcon_build_installs_launch_config_and_node(tmp_path: Path) -> None:
    source = tmp_path / "src" / "dav2_ros"
    source.mkdir(parents=True)
    for name in PACKAGE_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    env = dict(os.environ, PATH=f"{COLCON.parent}{os.pathsep}{os.environ['PATH']}")
    # --base-paths: never let colcon crawl the virtualenv (ament_package's package.xml).
    result = subprocess.run(
        [str(COLCON), "build", "--base-paths", "src"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    prefix = tmp_path / "install" / "dav2_ros"
    share = prefix / "share" / "dav2_ros"
    for relative in [
        "package.xml",
        "launch/depth.launch.py",
        "config/depth.yaml",
        "config/depth.rviz",
        "config/fastdds_large_data.xml",
    ]:
        assert (share / relative).is_file(), f"{relative} missing from share/dav2_ros"
    assert (share / "config" / "depth.yaml").read_text() == (ROOT / "config/depth.yaml").read_text()
    index = prefix / "share" / "ament_index" / "resource_index" / "packages" / "dav2_ros"
    assert index.is_file(), "not registered in the ament index: ros2 launch cannot find it"
    assert (prefix / "lib" / "dav2_ros" / "depth_node").is_file(), "ros2 run needs lib/dav2_ros"
    # The installed node finds its Fast DDS profile in share/ (not in a source checkout).
    site = next((prefix / "lib").glob("python3*/site-packages"))
    found = subprocess.run(
        [sys.executable, "-c", FIND_PROFILE],
        cwd=tmp_path,
        env=dict(env, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(prefix)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.split() == [str(site / "dav2_ros"), str(share / "config" / PROFILE)]
    check_console_scripts(prefix, dict(env, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(prefix)))


def check_console_scripts(prefix: Path, env: dict[str, str]) -> None:
    """The installed executables run the installed package with the interpreter that built
    them (a virtualenv's, when colcon runs from one: docs/install.md)."""
    scripts = prefix / "lib" / "dav2_ros"
    for name in ("dav2", "depth_node", "depth_lifecycle_node"):
        interpreter = Path((scripts / name).read_text().splitlines()[0].removeprefix("#!"))
        assert interpreter.parent == Path(sys.executable).parent, (name, interpreter)
    done = subprocess.run([str(scripts / "dav2"), "--help"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "predict" in done.stdout, done.stderr[-2000:]
    # The node refuses a missing checkpoint with the parameter's name and exit status 1.
    missing = ["--ros-args", "-p", "model.checkpoint:=/nowhere/model.safetensors"]
    done = subprocess.run([str(scripts / "depth_node"), *missing], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "model.checkpoint" in done.stdout + done.stderr
    # The lifecycle node starts unconfigured (nothing to load) and stops on SIGINT.
    node = subprocess.Popen(
        [str(scripts / "depth_lifecycle_node"), *missing],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(8.0)
        assert node.poll() is None, node.communicate()[0][-2000:]
    finally:
        node.send_signal(signal.SIGINT)
        output = node.communicate(timeout=20)[0]
    assert node.returncode == 0 and "Traceback" not in output, output[-2000:]


PROFILE = "fastdds_large_data.xml"
FIND_PROFILE = """
import dav2_ros
from pathlib import Path
from dav2_ros.ros.transport import bundled_profile
print(Path(dav2_ros.__file__).parent, bundled_profile())
"""
