"""QoS of the node's inputs (sensor data by default) and outputs (reliable by default)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {
    "reliable": ReliabilityPolicy.RELIABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
}

INPUT_DEPTH = 5  # as SensorDataQoS; the mailbox keeps only the newest anyway
OUTPUT_DEPTH = 2


def input_qos(reliability: str = "best_effort") -> QoSProfile:
    """SensorDataQoS (keep last, volatile) with the configured reliability."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=INPUT_DEPTH,
        reliability=_RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def output_qos(reliability: str = "reliable") -> QoSProfile:
    """Keep-last, shallow: depth_image_proc and RViz connect, nobody gets a backlog."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=OUTPUT_DEPTH,
        reliability=_RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )
