"""dav2_train: the training package that produces the weights dav2_ros deploys."""

from setuptools import find_packages, setup

setup(
    name="dav2_train",
    version="0.1.0",
    packages=find_packages(include=["dav2_train", "dav2_train.*"]),
    install_requires=["dav2_ros"],
    entry_points={"console_scripts": ["dav2-train = dav2_train.cli:main"]},
)
