"""Start, spin and stop one of the demo's nodes the same way every time."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from dav2_ros.ros.transport import log_choice, use_large_data_profile


def run_node(
    make_node: Callable[[], Node],
    name: str,
    argv: list[str] | None = None,
    large_data_profile: bool = False,
) -> int:
    """Spin until the node sets ``done`` or Ctrl-C/SIGINT; then its ``finish()``, if any.

    ``large_data_profile``: a node that publishes large messages starts its participant
    with the bundled Fast DDS profile, as the depth node does (``dav2_ros.ros.transport``).
    Exit status: the node's ``exit_code`` (default 0); 2 when it refuses its
    parameters (``ValueError``, message printed); 1 when it could not be built.
    """
    transport = use_large_data_profile() if large_data_profile else None
    rclpy.init(args=argv if argv is not None else sys.argv)
    if transport is not None:
        log_choice(rclpy.logging.get_logger(name), transport)
    node = None
    try:
        node = make_node()
        while rclpy.ok() and not getattr(node, "done", False):
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C or the orchestrator's SIGINT: finish normally
    except ValueError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            finish = getattr(node, "finish", None)
            if finish is not None:
                finish()  # e.g. the monitor still writes what it measured
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return getattr(node, "exit_code", 0) if node is not None else 1
