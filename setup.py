"""ament_python package dav2_ros: installable with pip (editable) and with colcon."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dav2_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["weights/*.safetensors", "weights/*.json", "weights/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        # *.xml: the Fast DDS profile that dav2_ros.ros.transport finds in share/dav2_ros/config
        (
            f"share/{PACKAGE}/config",
            glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml"),
        ),
    ],
    install_requires=["setuptools"],
    extras_require={"tensorrt": ["torch-tensorrt"]},
    zip_safe=False,
    maintainer="dav2_ros maintainers",
    maintainer_email="dav2-ros@example.org",
    description="Monocular metric depth for ROS 2 with Depth Anything V2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "dav2 = dav2_ros.cli:main",
            "depth_node = dav2_ros.ros.node:main",
            "depth_lifecycle_node = dav2_ros.ros.node:main_lifecycle",
            "dav2_demo_camera = dav2_ros.demo.camera:main",
            "dav2_demo_monitor = dav2_ros.demo.monitor:main",
        ],
    },
)
