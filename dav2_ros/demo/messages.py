"""The few message ↔ numpy conversions the demo's own nodes need.

Only what the demo publishes and consumes: rgb8 and 32FC1 images, the xyz
(+ rgb) fields of a PointCloud2, and those points as a PLY file. Messages are
read by duck typing (``height``, ``width``, ``step``, ``data``, ``fields``…) so
these functions are testable without DDS.
"""

from __future__ import annotations

import numpy as np

_CHANNELS = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "32FC1": (np.float32, 1)}


def image_to_array(msg) -> np.ndarray:
    """rgb8 / bgr8 / 32FC1 ``sensor_msgs/Image`` → H×W×3 uint8 (RGB) or H×W float32."""
    if msg.encoding not in _CHANNELS:
        raise ValueError(
            f"demo images must be one of {sorted(_CHANNELS)}, got encoding {msg.encoding!r}"
        )
    dtype, channels = _CHANNELS[msg.encoding]
    row_bytes = msg.width * channels * np.dtype(dtype).itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise ValueError(
            f"image {msg.width}x{msg.height} {msg.encoding}: step {msg.step} and "
            f"{len(msg.data)} data bytes are too small (need step >= {row_bytes})"
        )
    rows = np.frombuffer(msg.data, np.uint8, msg.step * msg.height).reshape(msg.height, -1)
    pixels = (
        rows[:, :row_bytes]
        .copy()
        .view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    )
    array = pixels.reshape(msg.height, msg.width, channels).astype(dtype, copy=False)
    if msg.encoding == "bgr8":
        array = array[..., ::-1]
    return array[..., 0] if channels == 1 else np.ascontiguousarray(array)


def fill_image(msg, array: np.ndarray) -> None:
    """Write an H×W×3 uint8 RGB (rgb8) or H×W float32 metres (32FC1) array into ``msg``."""
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        msg.encoding = "rgb8"
    elif array.dtype == np.float32 and array.ndim == 2:
        msg.encoding = "32FC1"
    else:
        raise ValueError(f"expected HxWx3 uint8 or HxW float32, got {array.dtype} {array.shape}")
    contiguous = np.ascontiguousarray(array)
    msg.height, msg.width = contiguous.shape[:2]
    msg.is_bigendian = 0
    msg.step = contiguous.strides[0]
    msg.data = contiguous.tobytes()


def cloud_to_points(msg) -> tuple[np.ndarray, np.ndarray | None]:
    """PointCloud2 → (N×3 float32 xyz of the finite points, N×3 uint8 rgb or None).

    Fields are located by name and offset, so xyz-only (point_step 16) and
    xyz+rgb (packed float ``rgb`` at 16, point_step 32) layouts both work.
    """
    offsets = {f.name: f.offset for f in msg.fields}
    missing = {"x", "y", "z"} - offsets.keys()
    if missing:
        raise ValueError(f"point cloud lacks field(s) {sorted(missing)}; has {sorted(offsets)}")
    count = msg.width * msg.height
    endian = ">" if msg.is_bigendian else "<"
    rows = np.frombuffer(msg.data, np.uint8, msg.row_step * msg.height).reshape(msg.height, -1)
    raw = rows[:, : msg.width * msg.point_step].reshape(count, msg.point_step)

    def column(name: str, dtype: str) -> np.ndarray:
        start = offsets[name]
        return raw[:, start : start + 4].copy().view(endian + dtype)[:, 0]

    xyz = np.stack([column(axis, "f4") for axis in "xyz"], axis=1)
    finite = np.isfinite(xyz).all(axis=1)
    rgb = None
    if "rgb" in offsets:
        packed = column("rgb", "u4")[finite]  # rgb packed as 0x00RRGGBB in a float32's bits
        rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
        rgb = rgb.astype(np.uint8)
    return xyz[finite], rgb


def write_ply(path, xyz_m: np.ndarray, rgb: np.ndarray | None = None) -> None:
    """Binary little-endian PLY of N points (float32 x y z, optional uchar colours)."""
    count = len(xyz_m)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {count}"]
    header += [f"property float {axis}" for axis in "xyz"]
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if rgb is not None:
        header += [f"property uchar {c}" for c in ("red", "green", "blue")]
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    records = np.empty(count, dtype=fields)
    for i, axis in enumerate("xyz"):
        records[axis] = xyz_m[:, i]
    if rgb is not None:
        for i, channel in enumerate(("red", "green", "blue")):
            records[channel] = rgb[:, i]
    with open(path, "wb") as stream:
        stream.write(("\n".join([*header, "end_header"]) + "\n").encode("ascii"))
        stream.write(records.tobytes())
