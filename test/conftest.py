"""Test-wide settings: DDS stays on loopback and this run gets its own domain id."""

from __future__ import annotations

import os

# Set before any test imports rclpy, and inherited by every node process a test
# starts: discovery never leaves loopback, and parallel runs never see each other.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
os.environ.setdefault("OMP_NUM_THREADS", "2")
