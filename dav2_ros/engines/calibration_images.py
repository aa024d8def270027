"""The images int8 post-training quantisation calibrates on: a folder of images, a rosbag2
recording, or (the default) scenes rendered by the project's generator (``dav2_ros.sim``).

Calibration sets the int8 ranges of the activations, so it should see what the camera
sees: point ``engine.calibration`` at a folder or a recording of the robot's camera. The
generated default (rooms, streets, clutter) is what the bundled model was trained on.

``CalibrationSource.fingerprint()`` names the files without decoding them (names, sizes,
modification times), so the engine cache can tell a second start that it already holds
the quantised model without reading a single image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dav2_ros.model.transforms import prepare_input

DEFAULT_FRAMES = 8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
BAG_SUFFIXES = (".db3", ".mcap")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
# Bump when the generated frames change (the scenes, poses or sizes below).
GENERATED_RECIPE = "sim-a-room-street-clutter-v1"
_GENERATED_SEED = 7000  # scene seeds distinct from the self-check's and the benches'


class CalibrationError(ValueError):
    """The calibration images cannot be read; the message names the path and what to do."""


@dataclass(frozen=True)
class CalibrationSource:
    """Where the calibration images come from (``engine.calibration*`` parameters)."""

    path: str = ""  # '' = generated scenes; else a folder of images or a rosbag2
    topic: str = ""  # rosbag2 image topic; '' = the bag's only image topic
    frames: int = DEFAULT_FRAMES  # at most this many, spread evenly over the source

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise CalibrationError(f"calibration frames must be >= 1, got {self.frames}")
        if self.topic and not self.path:
            raise CalibrationError(
                f"calibration topic {self.topic!r} given without a rosbag2 path; "
                "set engine.calibration to the recording"
            )

    @property
    def kind(self) -> str:
        """``generated``, ``folder`` or ``rosbag2``; CalibrationError if unusable."""
        if not self.path:
            return "generated"
        path = Path(self.path).expanduser()
        if not path.exists():
            raise CalibrationError(
                f"calibration source {str(path)!r} does not exist; give a folder of "
                f"{'/'.join(IMAGE_SUFFIXES)} images or a rosbag2 (engine.calibration), or '' "
                "for generated scenes"
            )
        if _is_bag(path):
            return "rosbag2"
        if path.is_dir():
            if self.topic:
                raise CalibrationError(
                    f"calibration source {str(path)!r} is an image folder: it has no topic "
                    f"{self.topic!r}; clear engine.calibration_topic"
                )
            return "folder"
        raise CalibrationError(
            f"calibration source {str(path)!r} is neither an image folder nor a rosbag2 "
            f"(a directory with metadata.yaml, or a {'/'.join(BAG_SUFFIXES)} file)"
        )

    def describe(self) -> str:
        if not self.path:
            return f"{self.frames} generated scenes"
        topic = f" topic {self.topic}" if self.topic else ""
        return f"{self.frames} frames of {self.kind} {self.path}{topic}"

    def fingerprint(self) -> dict[str, Any]:
        """What the calibration set is made of, for cache keys (no image is decoded)."""
        kind = self.kind
        if kind == "generated":
            return {"source": "generated", "recipe": GENERATED_RECIPE, "frames": self.frames}
        path = Path(self.path).expanduser().resolve()
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        if kind == "folder":
            files = _spread(_image_files(path), self.frames)
        listing = [[f.relative_to(path).as_posix() if f != path else f.name,
                    f.stat().st_size, f.stat().st_mtime_ns] for f in files]  # fmt: skip
        return {"source": kind, "path": str(path), "topic": self.topic,
                "frames": self.frames, "files": listing}  # fmt: skip

    def images(self, image_hw: tuple[int, int]) -> list[np.ndarray]:
        """Up to ``frames`` HxWx3 uint8 RGB images (generated ones at ``image_hw``)."""
        kind = self.kind
        if kind == "generated":
            return generated_images(self.frames, *image_hw)
        path = Path(self.path).expanduser()
        if kind == "folder":
            return [_read_image(p) for p in _spread(_image_files(path), self.frames)]
        return bag_images(path, self.topic, self.frames)


def calibration_batches(source: CalibrationSource, input_hw: tuple[int, int]) -> list[np.ndarray]:
    """The network inputs (``1x3xhxw`` float32, normalised as ``infer_image``) of the
    source's images at exactly ``input_hw``: an image of another aspect ratio is
    stretched to it (the ranges of the activations are what matters here)."""
    height, width = input_hw
    batches = []
    for image in source.images(input_hw):
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        batches.append(prepare_input(image, min(height, width)))
    return batches


def generated_images(count: int, height: int, width: int) -> list[np.ndarray]:
    """``count`` RGB frames of generated rooms, streets and clutter at ``height x width``."""
    from dav2_ros.sim import Intrinsics, make_scene, random_pose, render

    intrinsics = Intrinsics.from_fov(width, height, 70.0)
    kinds = ("room", "street", "clutter")
    images = []
    for index in range(count):
        seed = _GENERATED_SEED + index
        scene = make_scene(seed, "a", kinds[index % len(kinds)])
        pose = random_pose(scene, np.random.default_rng(seed))
        images.append(render(scene, intrinsics, pose, noise_seed=seed).rgb)
    return images


def bag_images(path: Path, topic: str, count: int) -> list[np.ndarray]:
    """Up to ``count`` RGB frames of a rosbag2 image topic, spread over the recording."""
    from rosbags.highlevel import AnyReader
    from rosbags.image import message_to_cvimage
    from rosbags.typesys import Stores, get_typestore

    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # sqlite3 / mcap parsers raise their own types on damaged files
        raise CalibrationError(
            f"calibration source {str(path)!r} cannot be read as a rosbag2 "
            f"({type(exc).__name__}: {exc})"
        ) from None
    try:
        connections = _image_connections(path, reader, topic)
        total = sum(c.msgcount for c in connections)
        wanted = set(_spread(list(range(total)), count))
        images = []
        for index, (connection, _, raw) in enumerate(reader.messages(connections)):
            if index not in wanted:
                continue
            msg = reader.deserialize(raw, connection.msgtype)
            try:
                rgb = message_to_cvimage(msg, "rgb8")
            except Exception as exc:  # rosbags-image raises its own error types
                raise CalibrationError(
                    f"calibration source {str(path)!r}: topic {connection.topic!r} message "
                    f"{index} cannot be decoded as an RGB image ({exc})"
                ) from None
            images.append(np.ascontiguousarray(rgb))
    finally:
        reader.close()
    if not images:
        raise CalibrationError(f"calibration source {str(path)!r}: the image topic is empty")
    return images


def _image_connections(path: Path, reader: Any, topic: str) -> list:
    topics = {c.topic: c.msgtype for c in reader.connections}
    found = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "no topics"
    if not topic:
        images = [t for t, m in topics.items() if m in IMAGE_TYPES]
        if len(images) != 1:
            raise CalibrationError(
                f"calibration source {str(path)!r} has {len(images)} image topics; name one "
                f"with engine.calibration_topic. Found: {found}"
            )
        topic = images[0]
    if topics.get(topic) not in IMAGE_TYPES:
        raise CalibrationError(
            f"calibration source {str(path)!r}: topic {topic!r} is not a sensor_msgs Image or "
            f"CompressedImage topic of the bag. Found: {found}"
        )
    return [c for c in reader.connections if c.topic == topic]


def _is_bag(path: Path) -> bool:
    return path.suffix in BAG_SUFFIXES if path.is_file() else (path / "metadata.yaml").is_file()


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(
            f"calibration folder {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} images"
        )
    return files


def _spread(items: list, count: int) -> list:
    """At most ``count`` items, evenly spaced over ``items`` (first and last included)."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return items[:1]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CalibrationError(f"calibration image {str(path)!r} cannot be read as an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
