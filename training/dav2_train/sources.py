"""Where unlabelled images come from: an image folder or a rosbag2 recording.

``open_image_source(path, topic, every)`` yields ``SourceImage(key, rgb, stamp_ns)``
for
- a folder: every PNG/JPEG/BMP below it (recursive, sorted, so ranks agree);
- a rosbag2: a bag directory (``metadata.yaml``), or a bare ``.db3`` / ``.mcap`` file,
  read with ``rosbags`` (no ROS install). ``topic`` is a ``sensor_msgs/Image`` (any
  encoding the node accepts) or ``sensor_msgs/CompressedImage`` topic; it may be left
  out when the bag has exactly one image topic. ``every`` keeps every n-th frame.

Messages are decoded by the depth node's own decoders, so training accepts and
refuses exactly what the node does, with the same messages. Errors name the file,
the topic and what was found. Nothing here imports rclpy.

``iter_records`` is the lazy form (decode on demand), used where most frames are
skipped (a rank labelling its share of a long recording).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
BAG_SUFFIXES = (".db3", ".mcap")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
DEPTH_TYPE = "sensor_msgs/msg/Image"


class SourceError(ValueError):
    """A source that cannot be read; the message names the file, topic and what was found."""


@dataclass(frozen=True)
class SourceImage:
    key: str  # stable name of the frame within its source (file path or bag/topic@time)
    rgb: np.ndarray  # HxWx3 uint8 RGB
    stamp_ns: int | None  # header stamp for bag frames, None for files


@dataclass(frozen=True)
class SourceRecord:
    """A frame not decoded yet; ``decode()`` is valid until the iterator moves on."""

    key: str
    decode: Callable[[], SourceImage]


def is_bag(path: Path) -> bool:
    path = Path(path)
    if path.is_file():
        return path.suffix in BAG_SUFFIXES
    return (path / "metadata.yaml").is_file()


def open_image_source(
    path: str | Path, topic: str | None = None, every: int = 1
) -> Iterator[SourceImage]:
    """Decoded frames of an image folder or a rosbag2 (see the module docstring)."""
    for record in iter_records(path, topic, every):
        yield record.decode()


def iter_records(
    path: str | Path, topic: str | None = None, every: int = 1
) -> Iterator[SourceRecord]:
    path = Path(path).expanduser()
    if int(every) < 1:
        raise SourceError(f"{path}: `every` must be >= 1, got {every}")
    if not path.exists():
        raise SourceError(f"{path}: no such image folder or rosbag2")
    if is_bag(path):
        yield from _bag_records(path, topic, int(every))
    elif path.is_dir():
        if topic:
            raise SourceError(f"{path}: an image folder has no topics (topic {topic!r} given)")
        yield from _folder_records(path, int(every))
    else:
        raise SourceError(
            f"{path}: neither an image folder nor a rosbag2 (a directory with metadata.yaml, "
            f"or a {'/'.join(BAG_SUFFIXES)} file)"
        )


# --- image folders ------------------------------------------------------------------------


def read_image_file(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"{path}: cannot be read as an image (not an image, or truncated)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _folder_records(folder: Path, every: int) -> Iterator[SourceRecord]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SourceError(f"{folder}: no {'/'.join(IMAGE_SUFFIXES)} images below this folder")
    for path in paths[::every]:
        key = path.relative_to(folder).as_posix()
        yield SourceRecord(key, lambda p=path, k=key: SourceImage(k, read_image_file(p), None))


# --- rosbag2 ------------------------------------------------------------------------------


def _decoders() -> dict[str, Callable[[Any], np.ndarray]]:
    # The node's decoders, rclpy-free and duck-typed: rosbags' messages have the same fields.
    from dav2_ros.ros.image_decode import compressed_to_rgb, image_to_rgb

    return {
        "sensor_msgs/msg/Image": image_to_rgb,
        "sensor_msgs/msg/CompressedImage": compressed_to_rgb,
    }


def _decode_error_types() -> tuple[type[Exception], ...]:
    from dav2_ros.ros.image_decode import ImageDecodeError

    return (ImageDecodeError,)


def open_bag(path: Path) -> Any:
    """An open ``rosbags`` AnyReader (use as a context manager), or a SourceError."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.typesys import Stores, get_typestore

    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except (AnyReaderError, OSError, ValueError, KeyError) as err:
        raise SourceError(
            f"{path}: cannot be read as a rosbag2 ({err or type(err).__name__})"
        ) from None
    except Exception as err:  # sqlite3 / mcap parsers raise their own types on damaged files
        raise SourceError(
            f"{path}: cannot be read as a rosbag2 ({type(err).__name__}: {err})"
        ) from None
    return reader


def bag_topics(reader: Any) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def pick_topic(
    path: Path, reader: Any, topic: str | None, wanted: tuple[str, ...], role: str
) -> list:
    """The connections of ``topic`` (checked to be of a ``wanted`` type)."""
    topics = bag_topics(reader)
    found = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "no topics"
    if topic is None:
        candidates = [t for t, m in topics.items() if m in wanted]
        if len(candidates) != 1:
            raise SourceError(
                f"{path}: {len(candidates)} {role} topics ({' or '.join(wanted)}) in the bag; "
                f"name one with `topic:`. Found: {found}"
            )
        topic = candidates[0]
    if topic not in topics:
        raise SourceError(f"{path}: topic {topic!r} is not in the bag. Found: {found}")
    if topics[topic] not in wanted:
        raise SourceError(
            f"{path}: topic {topic!r} carries {topics[topic]}, not a {role} "
            f"({' or '.join(wanted)}). Found: {found}"
        )
    return [c for c in reader.connections if c.topic == topic]


def header_stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def deserialize(reader: Any, path: Path, connection: Any, raw: bytes, index: int) -> Any:
    try:
        return reader.deserialize(raw, connection.msgtype)
    except Exception as err:  # rosbags raises its own types for damaged messages
        raise SourceError(
            f"{path}: topic {connection.topic!r} message {index} cannot be deserialised as "
            f"{connection.msgtype} ({type(err).__name__}: {err})"
        ) from None


def _bag_records(path: Path, topic: str | None, every: int) -> Iterator[SourceRecord]:
    decoders, decode_errors = _decoders(), _decode_error_types()
    reader = open_bag(path)
    try:
        connections = pick_topic(path, reader, topic, IMAGE_TYPES, "camera image")
        name = connections[0].topic
        count = 0
        for index, (connection, log_time_ns, raw) in enumerate(reader.messages(connections)):
            if index % every:
                continue
            count += 1

            def decode(
                connection=connection, raw=raw, index=index, key=f"{path.name}{name}@{log_time_ns}"
            ):
                msg = deserialize(reader, path, connection, raw, index)
                try:
                    rgb = decoders[connection.msgtype](msg)
                except decode_errors as err:
                    raise SourceError(
                        f"{path}: topic {name!r} message {index} ({connection.msgtype}): {err}"
                    ) from None
                return SourceImage(key, np.ascontiguousarray(rgb), header_stamp_ns(msg))

            yield SourceRecord(f"{path.name}{name}@{log_time_ns}", decode)
        if count == 0:
            raise SourceError(f"{path}: topic {name!r} has no messages")
    finally:
        reader.close()
