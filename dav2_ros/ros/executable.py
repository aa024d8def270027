"""How a depth node process starts and ends (``depth_node``, ``depth_lifecycle_node``).

The process ends as soon as the node is cleaned up: the interpreter's own teardown
(torch, Open3D, DDS modules) takes seconds, and SIGINT/SIGTERM must stop the node
within 2 s. Nothing is lost: the worker is joined and logs are flushed first.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from dav2_ros.engines.cache import discard_unfinished_builds
from dav2_ros.ros.startup import StartupError
from dav2_ros.ros.transport import log_choice, use_large_data_profile


def run_executable(make_node: Callable[[], Any], name: str, args: list[str] | None) -> int:
    """Spin the node until shutdown and end the process: exit 0 on shutdown, 1 if the
    node cannot start."""
    code = spin(make_node, name, args)
    discard_unfinished_builds()  # a cache build cut short by the exit leaves no temp file
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)  # rcutils writes through C stdio
    os._exit(code)


def spin(make_node: Callable[[], Any], name: str, args: list[str] | None = None) -> int:
    """Start the node and spin until shutdown; 0 on shutdown, 1 if it cannot start."""
    transport = use_large_data_profile()  # before rclpy.init: the participant reads it
    rclpy.init(args=args)
    log_choice(rclpy.logging.get_logger(name), transport)
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except StartupError as exc:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
