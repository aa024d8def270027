"""dav2_train: the training package that produces the weights dav2_ros deploys."""

from setuptools import find_packages, setup

setup(
    name="dav2_train",
    version="0.1.0",
    description="Synthetic data, teacher/student training and export for dav2_ros",
    packages=find_packages(include=["dav2_train", "dav2_train.*"]),
    python_requires=">=3.10",
    # Versions are pinned in requirements/{base,train}.txt; dav2_ros brings torch,
    # numpy, opencv, open3d, pyyaml and safetensors.
    install_requires=["dav2_ros", "tensorboard", "tqdm", "webdataset", "torchdata"],
    entry_points={"console_scripts": ["dav2-train = dav2_train.cli:main"]},
)
