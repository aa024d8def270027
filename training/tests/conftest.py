"""Training tests: small thread counts (the machine is shared); DDS stays on loopback."""

from __future__ import annotations

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# The end-to-end test starts depth_node: this run gets its own domain (as test/conftest.py).
os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest's hook signature
    # torchdata 0.11's StatefulDataLoader calls an API torch 2.13 deprecated; harmless.
    config.addinivalue_line("filterwarnings", "ignore:'set_vital' is deprecated:UserWarning")
