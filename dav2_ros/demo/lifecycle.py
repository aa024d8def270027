"""Start, spin and stop one of the demo's nodes the same way every time."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], name: str, argv: list[str] | None = None) -> int:
    """Spin until the node sets ``done`` or Ctrl-C/SIGINT; then its ``finish()``, if any.

    Exit status: the node's ``exit_code`` (default 0); 2 when it refuses its
    parameters (``ValueError``, message printed); 1 when it could not be built.
    """
    rclpy.init(args=argv if argv is not None else sys.argv)
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
