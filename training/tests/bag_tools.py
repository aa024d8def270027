"""Writing rosbag2 recordings for tests with ``rosbags`` (no ROS install), no tests here.

``write_bag(path, topics)``: ``path`` ending in ``.db3`` or ``.mcap`` gives that bare
storage file (the bag directory ``rosbags`` makes is unwrapped); any other path gives
a bag directory (metadata.yaml + storage). ``topics`` maps a topic to a list of
messages made by ``image_msg`` / ``compressed_msg`` / ``depth_msg`` / ``info_msg``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
_T = TYPESTORE.types
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
INFO = "sensor_msgs/msg/CameraInfo"


def _header(stamp_ns: int, frame_id: str = "camera_optical") -> Any:
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return _T["std_msgs/msg/Header"](
        stamp=_T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def image_msg(rgb: np.ndarray, encoding: str, stamp_ns: int, row_padding: int = 0) -> Any:
    """A raw Image holding ``rgb`` (HxWx3 uint8) converted to ``encoding``."""
    codes = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA,
             "bgra8": cv2.COLOR_RGB2BGRA, "mono8": cv2.COLOR_RGB2GRAY}  # fmt: skip
    if encoding in codes:
        pixels = rgb if codes[encoding] is None else cv2.cvtColor(rgb, codes[encoding])
    else:  # any other encoding: the raw bytes as given (for refusal tests)
        pixels = rgb
    height, width = rgb.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, -1)
    if row_padding:
        rows = np.concatenate([rows, np.full((height, row_padding), 7, np.uint8)], axis=1)
    return _T[IMAGE](
        header=_header(stamp_ns), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=rows.shape[1], data=np.ascontiguousarray(rows).reshape(-1),
    )  # fmt: skip


def raw_msg(
    rows: np.ndarray, width: int, encoding: str, stamp_ns: int, big_endian: bool = False
) -> Any:
    """A raw Image of ``width`` pixels whose data are the byte ``rows`` as they are (one
    row of ``step`` bytes per image row): an interleaved encoding laid out by the caller."""
    return _T[IMAGE](
        header=_header(stamp_ns), height=rows.shape[0], width=width, encoding=encoding,
        is_bigendian=int(big_endian), step=rows.shape[1],
        data=np.ascontiguousarray(rows, np.uint8).reshape(-1),
    )  # fmt: skip


def compressed_msg(rgb: np.ndarray, stamp_ns: int, fmt: str = "jpeg") -> Any:
    ok, data = cv2.imencode(
        ".jpg" if fmt == "jpeg" else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    )
    assert ok
    return _T[COMPRESSED](header=_header(stamp_ns), format=fmt, data=data.reshape(-1))


def depth_msg(depth_m: np.ndarray, stamp_ns: int, encoding: str = "16UC1") -> Any:
    """A depth Image: 16UC1 millimetres (NaN → 0) or 32FC1 metres."""
    if encoding == "16UC1":
        values = np.nan_to_num(depth_m * 1000.0, nan=0.0).round().astype("<u2")
    else:
        values = depth_m.astype("<f4")
    height, width = depth_m.shape
    return _T[IMAGE](
        header=_header(stamp_ns), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=width * values.itemsize,
        data=np.frombuffer(values.tobytes(), np.uint8),
    )  # fmt: skip


def info_msg(stamp_ns: int) -> Any:
    return _T[INFO](
        header=_header(stamp_ns), height=48, width=64, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.eye(3).reshape(-1), r=np.eye(3).reshape(-1),
        p=np.zeros(12), binning_x=0, binning_y=0,
        roi=_T["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )  # fmt: skip


def write_bag(path: Path, topics: dict[str, list[Any]]) -> Path:
    """Write messages (each topic's list, log time = header stamp) as a rosbag2."""
    path = Path(path)
    bare = path.suffix in (".db3", ".mcap")
    plugin = StoragePlugin.MCAP if path.suffix == ".mcap" else StoragePlugin.SQLITE3
    directory = path.with_suffix("") if bare else path
    with Writer(directory, version=9, storage_plugin=plugin) as writer:
        events = []
        for topic, messages in topics.items():
            msgtype = messages[0].__msgtype__
            connection = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            for msg in messages:
                stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                events.append((stamp, connection, TYPESTORE.serialize_cdr(msg, msgtype)))
        for stamp, connection, data in sorted(events, key=lambda e: e[0]):
            writer.write(connection, stamp, data)
    if not bare:
        return directory
    storage = next(directory.glob(f"*{path.suffix}"))
    shutil.move(storage, path)
    shutil.rmtree(directory)
    return path


def frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB frames (JPEG-friendly), HxWx3 uint8."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
        out.append(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))
    return out
