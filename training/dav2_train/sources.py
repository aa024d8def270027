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

import bisect
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


def source_listing(path: Path) -> dict[str, Any]:
    """Names and sizes of a source's files (its fingerprint input; contents are not read)."""
    from dav2_train.fingerprint import listing

    path = Path(path).expanduser()
    return listing(path, None if is_bag(path) else IMAGE_SUFFIXES)


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
    path: Path,
    reader: Any,
    topic: str | None,
    wanted: tuple[str, ...],
    role: str,
    exclude: tuple[str, ...] = (),
) -> list:
    """The connections of ``topic`` (checked to be of a ``wanted`` type); without a
    topic, the only one of a wanted type (``exclude`` left out)."""
    topics = bag_topics(reader)
    found = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "no topics"
    if topic is None:
        candidates = [t for t, m in topics.items() if m in wanted and t not in exclude]
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


# --- RGB-D recordings ---------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRGBD:
    key: str
    rgb: np.ndarray  # HxWx3 uint8 RGB
    depth_m: np.ndarray  # HxW float32 metres at the image's size, NaN where the sensor had none
    stamp_ns: int  # the image's header stamp


@dataclass(frozen=True)
class RGBDRecord:
    index: int  # pair number, in image-stamp order
    key: str
    decode: Callable[[], SourceRGBD]


def depth_to_metres(msg: Any, path: Path, topic: str) -> np.ndarray:
    """A depth ``Image`` (32FC1 metres or 16UC1 millimetres, 0 = none) → float32 metres, NaN."""
    from rosbags.image import message_to_cvimage

    from dav2_ros.scale import depth_image_to_metres

    if msg.encoding not in ("32FC1", "16UC1"):
        raise SourceError(
            f"{path}: depth topic {topic!r} has encoding {msg.encoding!r}; expected 32FC1 "
            "(metres) or 16UC1 (millimetres), as REP 118 depth images are"
        )
    return depth_image_to_metres(message_to_cvimage(msg), msg.encoding).astype(np.float32)


def register_depth(depth_m: np.ndarray, height: int, width: int, where: str) -> np.ndarray:
    """Depth at the image's size: nearest neighbour from a registered depth image of the
    same field of view (the same aspect ratio), so no depth is invented."""
    if depth_m.shape == (height, width):
        return depth_m
    if abs(depth_m.shape[1] / depth_m.shape[0] - width / height) > 0.01 * width / height:
        raise SourceError(
            f"{where}: depth is {depth_m.shape[1]}x{depth_m.shape[0]}, the image {width}x{height}"
            ": not the same field of view. Record the depth registered to the colour camera "
            "(e.g. aligned_depth_to_color)"
        )
    return cv2.resize(depth_m, (width, height), interpolation=cv2.INTER_NEAREST)


def pair_by_stamp(
    image_stamps: list[int], depth_stamps: list[int], max_offset_ns: int
) -> list[tuple[int, int]]:
    """(image index, depth index): each image with the depth nearest in stamp, if close enough."""
    order = sorted(range(len(depth_stamps)), key=depth_stamps.__getitem__)
    sorted_stamps = [depth_stamps[i] for i in order]
    pairs = []
    for image_index, stamp in enumerate(image_stamps):
        at = bisect.bisect_left(sorted_stamps, stamp)
        candidates = [c for c in (at - 1, at) if 0 <= c < len(sorted_stamps)]
        if not candidates:
            continue
        best = min(candidates, key=lambda c: abs(sorted_stamps[c] - stamp))
        if abs(sorted_stamps[best] - stamp) <= max_offset_ns:
            pairs.append((image_index, order[best]))
    return pairs


def iter_rgbd_records(
    path: str | Path,
    image_topic: str | None,
    depth_topic: str,
    max_offset_ns: int = 20_000_000,
    every: int = 1,
) -> Iterator[RGBDRecord]:
    """Image + depth pairs of a rosbag2, matched by header stamp, lazily decoded.

    Pass 1 reads the stamps; pass 2 keeps the raw bytes of a message until its
    partner arrives, so memory holds only messages within the pairing offset.
    """
    path = Path(path).expanduser()
    if not is_bag(path):
        raise SourceError(f"{path}: not a rosbag2 (a directory with metadata.yaml, .db3 or .mcap)")
    decoders, decode_errors = _decoders(), _decode_error_types()
    reader = open_bag(path)
    try:
        depths = pick_topic(path, reader, depth_topic, (DEPTH_TYPE,), "depth image")
        images = pick_topic(path, reader, image_topic, IMAGE_TYPES, "camera image", (depth_topic,))
        image_name, depth_name = images[0].topic, depths[0].topic
        stamps: dict[str, list[int]] = {image_name: [], depth_name: []}
        for index, (connection, _, raw) in enumerate(reader.messages(images + depths)):
            msg = deserialize(reader, path, connection, raw, index)
            stamps[connection.topic].append(header_stamp_ns(msg))
        pairs = pair_by_stamp(stamps[image_name], stamps[depth_name], max_offset_ns)
        if not pairs:
            raise SourceError(
                f"{path}: no {image_name!r} frame has a {depth_name!r} frame within "
                f"{max_offset_ns / 1e6:g} ms ({len(stamps[image_name])} images, "
                f"{len(stamps[depth_name])} depth images); raise max_offset_ms"
            )
        pairs = pairs[:: int(every)]
        wanted_image = {i: n for n, (i, _) in enumerate(pairs)}
        wanted_depth: dict[int, list[int]] = {}
        for n, (_, d) in enumerate(pairs):
            wanted_depth.setdefault(d, []).append(n)
        pending: dict[int, dict[str, tuple[Any, bytes]]] = {}
        complete: dict[int, RGBDRecord] = {}  # finished pairs waiting for their turn
        next_pair = 0
        seen = {image_name: 0, depth_name: 0}
        for connection, _, raw in reader.messages(images + depths):
            index = seen[connection.topic]
            seen[connection.topic] += 1
            if connection.topic == image_name:
                targets = [wanted_image[index]] if index in wanted_image else []
            else:
                targets = wanted_depth.get(index, [])
            for n in targets:
                parts = pending.setdefault(n, {})
                parts[connection.topic] = (connection, raw)
                if len(parts) < 2:
                    continue
                del pending[n]
                (image_conn, image_raw), (depth_conn, depth_raw) = (
                    parts[image_name],
                    parts[depth_name],
                )
                key = f"{path.name}{image_name}@{stamps[image_name][pairs[n][0]]}"

                def decode(
                    key=key,
                    image_conn=image_conn,
                    image_raw=image_raw,
                    depth_conn=depth_conn,
                    depth_raw=depth_raw,
                    n=n,
                ) -> SourceRGBD:
                    image_msg = deserialize(reader, path, image_conn, image_raw, pairs[n][0])
                    depth_msg = deserialize(reader, path, depth_conn, depth_raw, pairs[n][1])
                    try:
                        rgb = decoders[image_conn.msgtype](image_msg)
                    except decode_errors as err:
                        raise SourceError(f"{path}: topic {image_name!r}: {err}") from None
                    depth_m = depth_to_metres(depth_msg, path, depth_name)
                    where = f"{path} {image_name} + {depth_name}"
                    depth_m = register_depth(depth_m, rgb.shape[0], rgb.shape[1], where)
                    return SourceRGBD(
                        key, np.ascontiguousarray(rgb), depth_m, header_stamp_ns(image_msg)
                    )

                complete[n] = RGBDRecord(n, key, decode)
            while next_pair in complete:  # in pair order, whatever order partners arrived in
                yield complete.pop(next_pair)
                next_pair += 1
    finally:
        reader.close()
