"""Test-wide settings: DDS stays on loopback, this run gets its own domain id, and the
processes tests start can be interrupted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# Set before any test imports rclpy, and inherited by every node process a test
# starts: discovery never leaves loopback, and parallel runs never see each other.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Tests press Ctrl-C on the processes they start (SIGINT). A suite started as a background
# job of a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored, and an
# ignored signal stays ignored across exec, so those processes would never see it. A
# handler in this process is reset to the default in every child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def bundled_engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One engine cache for the bundled model's ONNX graphs (fp32, int8), shared by the
    test modules that build them: each export and quantisation costs ~10-25 s of CPU."""
    return tmp_path_factory.mktemp("bundled-engine-cache")
