"""What a configured depth node holds, built by configure and released by cleanup: the
model's engine, the frame pipeline, the node's publishers and input ports, the worker's
mailbox and statistics. Plain data: the node creates and destroys the handles in it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dav2_ros.ros.frame_pipeline import FramePipeline
from dav2_ros.ros.mailbox import LatestMailbox
from dav2_ros.ros.parameters import NodeSettings
from dav2_ros.ros.qos import InputPort
from dav2_ros.ros.stats import NodeStats


@dataclass
class Frame:
    msg: Any  # sensor_msgs Image or CompressedImage
    received_s: float  # time.monotonic() at the callback


@dataclass
class Configured:
    settings: NodeSettings
    model_name: str
    engine: Any  # EngineSupervisor
    pipeline: FramePipeline
    publishers: dict[str, Any]  # topic → rclpy Publisher
    ports: list[InputPort]
    stopping: threading.Event  # set at cleanup: the engine's back-off stops waiting
    mailbox: LatestMailbox[Frame] = field(default_factory=LatestMailbox)
    stats: NodeStats = field(default_factory=NodeStats)
    frame_lock: threading.Lock = field(default_factory=threading.Lock)  # held per frame
    worker: threading.Thread | None = None

    def start_worker(self, work: Callable[[Configured], None]) -> None:
        """The one thread that runs ``work(self)``: the frames, until the mailbox closes."""
        self.worker = threading.Thread(target=work, args=(self,), name="dav2_worker", daemon=True)
        self.worker.start()
