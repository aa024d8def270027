"""QoS of the node's inputs (matched to the camera by default) and outputs (reliable).

``qos.input_reliability: auto`` subscribes with what the publishers offer: reliable when
every publisher on the topic offers reliable, best effort otherwise (and while there is
none: a best-effort reader connects to any publisher that comes). A best-effort reader
of a reliable camera over Fast DDS's default UDP transport loses any large image that
loses one fragment (docs/transport.md: 6 % of a 1280×720 camera's frames arrived); a
reliable reader gets them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

AUTO = "auto"
RELIABLE = "reliable"
BEST_EFFORT = "best_effort"
Callback = Callable[[Any], None]
_RELIABILITY = {RELIABLE: ReliabilityPolicy.RELIABLE, BEST_EFFORT: ReliabilityPolicy.BEST_EFFORT}

INPUT_DEPTH = 5  # as SensorDataQoS; the mailbox keeps only the newest anyway
OUTPUT_DEPTH = 2  # shallow: depth_image_proc and RViz connect, nobody gets a backlog


def _keep_last(depth: int, reliability: str) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def input_qos(reliability: str = BEST_EFFORT) -> QoSProfile:
    """SensorDataQoS (keep last 5, volatile) with ``reliable`` or ``best_effort``."""
    return _keep_last(INPUT_DEPTH, reliability)


def output_qos(reliability: str = RELIABLE) -> QoSProfile:
    """Keep last 2, volatile, with the configured reliability."""
    return _keep_last(OUTPUT_DEPTH, reliability)


def reliability_name(policy: ReliabilityPolicy) -> str:
    """``reliable`` or ``best_effort`` for what a publisher offers (graph info)."""
    return RELIABLE if policy == ReliabilityPolicy.RELIABLE else BEST_EFFORT


def matched_reliability(offered: Sequence[str]) -> str:
    """``auto``'s choice for a topic whose publishers offer ``offered``: reliable only
    when every publisher is reliable (a reliable reader cannot hear a best-effort one)."""
    return RELIABLE if offered and all(o == RELIABLE for o in offered) else BEST_EFFORT


def describe_offered(offered: Sequence[str]) -> str:
    """``2 publishers: reliable, best_effort`` / ``no publisher yet``."""
    if not offered:
        return "no publisher yet"
    plural = "s" if len(offered) > 1 else ""
    return f"{len(offered)} publisher{plural}: {', '.join(offered)}"


@dataclass
class InputPort:
    """One input topic of the node: its subscription (held by the node), the reliability
    it was made with and what its publishers offer (refreshed once a second)."""

    topic: str
    msg_type: type
    callback: Callback
    choice: str  # qos.input_reliability: auto, reliable or best_effort
    reliability: str = ""  # of the current subscription
    offered: list[str] = field(default_factory=list)
    handle: Any = None  # the rclpy Subscription

    def matched(self) -> str:
        return matched_reliability(self.offered)

    def compatible(self) -> bool:
        """Every publisher can feed this subscription (best effort hears them all)."""
        return self.reliability == BEST_EFFORT or all(o == RELIABLE for o in self.offered)

    def choice_text(self) -> str:
        """``image: reliable (auto; 1 publisher: reliable)``."""
        return f"{self.topic}: {self.reliability} ({self.choice}; {describe_offered(self.offered)})"

    def incompatible_text(self) -> str:
        return (
            f"{self.topic}: a publisher's QoS is incompatible with this {self.reliability} "
            f"subscription ({describe_offered(self.offered)}), so its messages never arrive; "
            "a best-effort camera needs qos.input_reliability auto or best_effort"
        )


def input_ports(
    settings: Any, on_image: Callback, on_camera_info: Callback, on_sparse: Callback
) -> list[InputPort]:
    """The node's inputs for ``settings`` (``NodeSettings``): the image (raw or
    compressed) first, camera_info, and sparse_depth in ``scale.mode: sparse`` (a LiDAR
    or depth camera: a sensor stream like the camera, with the same QoS choice)."""
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

    choice = settings.input_reliability
    compressed = settings.image_transport == "compressed"
    image = ("image/compressed", CompressedImage) if compressed else ("image", Image)
    ports = [
        InputPort(*image, on_image, choice),
        InputPort("camera_info", CameraInfo, on_camera_info, choice),
    ]
    if settings.scale.mode == "sparse":
        sparse_type = Image if settings.scale.sparse_type == "image" else PointCloud2
        ports.append(InputPort("sparse_depth", sparse_type, on_sparse, choice))
    return ports
