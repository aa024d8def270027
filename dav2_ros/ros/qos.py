"""QoS of the node's inputs (sensor data by default) and outputs (reliable by default)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {
    "reliable": ReliabilityPolicy.RELIABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
}

INPUT_DEPTH = 5  # as SensorDataQoS; the mailbox keeps only the newest anyway
OUTPUT_DEPTH = 2  # shallow: depth_image_proc and RViz connect, nobody gets a backlog


def _keep_last(depth: int, reliability: str) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def input_qos(reliability: str = "best_effort") -> QoSProfile:
    """SensorDataQoS (keep last 5, volatile) with the configured reliability."""
    return _keep_last(INPUT_DEPTH, reliability)


def output_qos(reliability: str = "reliable") -> QoSProfile:
    """Keep last 2, volatile, with the configured reliability."""
    return _keep_last(OUTPUT_DEPTH, reliability)
