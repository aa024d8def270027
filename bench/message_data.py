"""How to hand ``data`` to an rclpy message fastest: bytes, array.array, memoryview, numpy.

For a 640x480 xyz+rgb PointCloud2 (9.8 MB) and a 640x480 32FC1 Image (1.2 MB), each way
of filling ``msg.data`` from a numpy buffer is timed, then ``publish()`` of the result to
a best-effort reader in another process (serialisation and the Fast DDS write, with the
node's shared-memory profile; the JSON records ``RMW_FASTRTPS_PUBLICATION_MODE``) and
``rclpy.serialization.serialize_message``. The ways:

- ``bytes``: ``msg.data = array.tobytes()`` (the plain way);
- ``array.array``: ``array.array('B').frombytes(array)``, then ``msg.data =`` it (setter);
- ``memoryview`` / ``numpy``: ``msg.data = memoryview(array)`` / ``= array.view(uint8)``;
- ``set_byte_data``: numpy writes into a ``ByteBuffer`` and ``set_byte_data`` stores it
  (no copy; what the node does).

    .venv/bin/python bench/message_data.py [--iterations 15] [--out FILE.json]

Writes JSON (default ``bench/results/message-data-<date>.json``) and prints the table.
"""

from __future__ import annotations

import array
import os
import sys
import time
from pathlib import Path

import numpy as np
from _record import BenchRun, default_path, write_results
from ros_bench_support import start_reader, stop_reader
from tables import table_of

SLOW_WAYS = ("memoryview", "numpy")  # element by element in rclpy's setter: timed once


def ways(values: np.ndarray):
    """name → function(msg) that fills msg.data with ``values``' bytes."""
    from dav2_ros.geometry import ByteBuffer
    from dav2_ros.ros.conversions import set_byte_data

    reused = ByteBuffer()

    def by_bytes(msg) -> None:
        msg.data = values.tobytes()

    def by_array(msg) -> None:
        data = array.array("B")
        data.frombytes(memoryview(values).cast("B"))  # one copy, then the setter's
        msg.data = data

    def by_memoryview(msg) -> None:
        msg.data = memoryview(values).cast("B")

    def by_numpy(msg) -> None:
        msg.data = values.view(np.uint8).reshape(-1)

    def by_set_byte_data(msg) -> None:
        np.copyto(reused.view(values.shape, values.dtype), values)  # the producer's one write
        set_byte_data(msg, reused.data)

    return {
        "bytes": by_bytes,
        "array.array": by_array,
        "memoryview": by_memoryview,
        "numpy": by_numpy,
        "set_byte_data": by_set_byte_data,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    run_record = BenchRun(__file__, argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    from dav2_ros.ros.transport import use_large_data_profile

    use_large_data_profile()
    import rclpy
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image, PointCloud2

    from dav2_ros.ros.qos import output_qos

    reader = start_reader()
    rclpy.init()
    node = rclpy.create_node("message_data_bench")
    messages = {
        "points": (PointCloud2, np.ones((480, 640, 8), np.float32)),
        "depth": (Image, np.ones((480, 640), np.float32)),
    }
    publishers = {topic: node.create_publisher(kind, topic, output_qos()) for topic, (kind, _) in
                  messages.items()}  # fmt: skip
    while any(p.get_subscription_count() == 0 for p in publishers.values()):
        time.sleep(0.05)
    rows = []
    try:
        for topic, (kind, values) in messages.items():
            for name, fill in ways(values).items():
                n = 1 if name in SLOW_WAYS else args.iterations
                assign, publish, serialize = [], [], []
                for _ in range(n + (0 if name in SLOW_WAYS else 2)):
                    msg = kind()
                    t0 = time.perf_counter()
                    fill(msg)
                    t1 = time.perf_counter()
                    publishers[topic].publish(msg)
                    t2 = time.perf_counter()
                    serialize_message(msg)
                    t3 = time.perf_counter()
                    assign.append((t1 - t0) * 1e3)
                    publish.append((t2 - t1) * 1e3)
                    serialize.append((t3 - t2) * 1e3)
                    time.sleep(0.05)
                keep = slice(0 if name in SLOW_WAYS else 2, None)  # 2 warm-up rounds
                row = {
                    "topic": topic,
                    "bytes": int(values.nbytes),
                    "way": name,
                    "assign_ms": round(float(np.median(assign[keep])), 3),
                    "publish_ms": round(float(np.median(publish[keep])), 3),
                    "serialize_message_ms": round(float(np.median(serialize[keep])), 3),
                    "assign_plus_publish_ms": round(
                        float(np.median(np.add(assign[keep], publish[keep]))), 3
                    ),
                    "samples": len(assign[keep]),
                }
                rows.append(row)
                print(f"{topic} {name}: {row}", flush=True)
    finally:
        stop_reader(reader)
        node.destroy_node()
        rclpy.shutdown()
    settings = {
        "iterations": args.iterations,
        "publication_mode": os.environ.get("RMW_FASTRTPS_PUBLICATION_MODE", "(rmw default)"),
    }
    document = run_record.record(rows, settings)
    write_results(args.out or default_path("message-data"), document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
