"""A known RGB image as a camera driver publishes it, in every colour encoding the node reads
(no tests here).

Computed with numpy from each encoding's definition, independently of the decoder under
test and of OpenCV's YUV and Bayer converters (grey is OpenCV's RGB2GRAY): BT.601
limited-range YUV with shared chroma averaged (4:2:2 over pixel pairs, 4:2:0 over 2x2
blocks), Bayer mosaics sampled at the phase the ROS name spells, 16-bit values ``257 * v``
plus an offset of at most 128 that the 16 → 8-bit rule (round(v / 257)) must remove.
The reference decoders compare with are at the end: OpenCV's conversion of the raw planes
with the code cv_bridge uses, then cv_bridge's 16 → 8-bit rule.
"""

from __future__ import annotations

import cv2
import numpy as np

# BT.601: luma weights of R and B, and the limited ranges (Y 16..235, U and V 16..240).
KR, KB = 0.299, 0.114
Y_SCALE, C_SCALE = 219 / 255, 224 / 255
YUV_422 = {"yuv422": "UYVY", "uyvy": "UYVY", "yuv422_yuy2": "YUYV", "yuyv": "YUYV"}
YUV = (*YUV_422, "nv21", "nv24")
BAYER = ("rggb", "bggr", "gbrg", "grbg")
CHANNEL_ORDER = {"rgb": [0, 1, 2], "bgr": [2, 1, 0], "rgba": [0, 1, 2, 3], "bgra": [2, 1, 0, 3]}
# Largest error |decoded - known| each kind of encoding allows on the images below (the
# codec's own rounding): YUV quantises Y to 219 and chroma to 224 levels; 8 and 16-bit
# RGB/mono are exact.
YUV_ROUNDING = 2


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB → HxWx3 float Y, U, V (BT.601 limited range, not rounded)."""
    r, g, b = (rgb[:, :, c].astype(np.float64) for c in range(3))
    luma = KR * r + (1 - KR - KB) * g + KB * b
    y = 16 + Y_SCALE * luma
    u = 128 + C_SCALE * (b - luma) / (2 * (1 - KB))
    v = 128 + C_SCALE * (r - luma) / (2 * (1 - KR))
    return np.stack([y, u, v], -1)


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """The inverse of ``rgb_to_yuv`` in floating point: HxWx3 Y, U, V → HxWx3 float RGB."""
    luma = (yuv[:, :, 0] - 16) / Y_SCALE
    b_minus_luma = (yuv[:, :, 1] - 128) / C_SCALE * 2 * (1 - KB)
    r_minus_luma = (yuv[:, :, 2] - 128) / C_SCALE * 2 * (1 - KR)
    r, b = luma + r_minus_luma, luma + b_minus_luma
    g = (luma - KR * r - KB * b) / (1 - KR - KB)
    return np.stack([r, g, b], -1)


def _u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """HxW uint8 grey, as a mono camera sees ``rgb`` (OpenCV's RGB2GRAY: the mono8 tests
    compare with it)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def to_16_bit(values: np.ndarray) -> np.ndarray:
    """uint8 values → uint16 ``257 * v`` plus a fixed pattern of offsets in [-128, 128]."""
    offsets = (np.arange(values.size).reshape(values.shape) * 37) % 257 - 128
    return np.clip(values.astype(np.int64) * 257 + offsets, 0, 65535).astype(np.uint16)


def bayer_mosaic(rgb: np.ndarray, phase: str) -> np.ndarray:
    """HxW mosaic: each pixel keeps the channel the ROS phase (``rggb`` …) names for its
    place in the 2x2 tile (``phase[0]`` at row 0 column 0, ``phase[3]`` at row 1 column 1)."""
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for index, colour in enumerate(phase):
        row, column = divmod(index, 2)
        mosaic[row::2, column::2] = rgb[row::2, column::2, channel[colour]]
    return mosaic


def encode(rgb: np.ndarray, encoding: str) -> list[np.ndarray]:
    """HxWx3 uint8 RGB → the planes of ``encoding``, values of its element type: one
    HxW / HxWxC array for interleaved encodings; NV21: Y (HxW) and V,U (H/2 x W/2 x 2);
    NV24: Y (HxW) and U,V (HxWx2)."""
    base = encoding.rstrip("0123456789")
    if encoding in ("mono8", "mono16"):
        grey = grey_of(rgb)
        return [grey if encoding == "mono8" else to_16_bit(grey)]
    if base in CHANNEL_ORDER:
        channels = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
        pixels = channels[:, :, CHANNEL_ORDER[base]]
        return [pixels if encoding.endswith("8") else to_16_bit(pixels)]
    if encoding.startswith("bayer_"):
        mosaic = bayer_mosaic(rgb, encoding[6:10])
        return [mosaic if encoding.endswith("8") else to_16_bit(mosaic)]
    yuv = rgb_to_yuv(rgb)
    height, width = rgb.shape[:2]
    if encoding in YUV_422:
        chroma = yuv[:, :, 1:].reshape(height, width // 2, 2, 2).mean(axis=2)  # per pair
        y = yuv[:, :, 0].reshape(height, width // 2, 2)
        u, v = chroma[:, :, 0], chroma[:, :, 1]
        if YUV_422[encoding] == "YUYV":
            order = [y[:, :, 0], u, y[:, :, 1], v]
        else:
            order = [u, y[:, :, 0], v, y[:, :, 1]]
        return [_u8(np.stack(order, -1)).reshape(height, width, 2)]
    if encoding == "nv21":
        blocks = yuv[:, :, 1:].reshape(height // 2, 2, width // 2, 2, 2).mean(axis=(1, 3))
        return [_u8(yuv[:, :, 0]), _u8(blocks[:, :, ::-1])]  # V before U
    if encoding == "nv24":
        return [_u8(yuv[:, :, 0]), _u8(yuv[:, :, 1:])]
    raise ValueError(f"no encoder for {encoding!r}")


def shown_rgb(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """What a faithful decoder shows for ``rgb`` sent as ``encoding``: grey for mono."""
    if encoding.startswith("mono"):
        return np.repeat(grey_of(rgb)[:, :, None], 3, axis=2)
    return rgb


def frame_bytes(
    planes: list[np.ndarray], row_padding: int = 0, big_endian: bool = False
) -> tuple[bytes, int]:
    """Planes → (the message's ``data``, its ``step``): rows of the first plane padded with
    ``row_padding`` bytes, later planes' rows padded in proportion to their length (an NV24
    chroma row, twice a luma row, gets twice the padding)."""
    rows = []
    for plane in planes:
        stored = plane.astype(plane.dtype.newbyteorder(">" if big_endian else "<"))
        rows.append(np.ascontiguousarray(stored).view(np.uint8).reshape(plane.shape[0], -1))
    luma_bytes = rows[0].shape[1]
    padded = [
        np.concatenate(
            [r, np.full((r.shape[0], row_padding * r.shape[1] // luma_bytes), 7, np.uint8)], 1
        )
        for r in rows
    ]
    return b"".join(p.tobytes() for p in padded), luma_bytes + row_padding


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A gentle HxWx3 gradient (at most 3 levels between neighbours, no wrap): demosaicing
    interpolates it almost exactly away from the borders. Red rises and blue falls to the
    right, so a red/blue swap is large."""
    v, u = np.mgrid[0:height, 0:width]
    red = 30 + 180 * u / max(width - 1, 1)
    green = 60 + 120 * v / max(height - 1, 1)
    blue = 220 - 170 * u / max(width - 1, 1)
    return _u8(np.stack([red, green, blue], -1))


def blocky(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with each pixel repeated into a 2x2 block: 4:2:2 and 4:2:0 chroma sharing
    loses nothing on it, only the codec's rounding remains."""
    return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)


# ---- The reference: OpenCV's conversion, as cv_bridge does it ---------------------------
# ROS encoding → the OpenCV code cv_bridge converts it with (None: already RGB). Bayer: ROS
# names the first 2x2 tile, OpenCV the pixels 1 and 2 of row 1: rggb is OpenCV's "BG".
OPENCV_CODES = {
    "rgb8": None, "bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB, "mono8": cv2.COLOR_GRAY2RGB,
    "rgb16": None, "bgr16": cv2.COLOR_BGR2RGB, "rgba16": cv2.COLOR_RGBA2RGB,
    "bgra16": cv2.COLOR_BGRA2RGB, "mono16": cv2.COLOR_GRAY2RGB,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
    "nv21": cv2.COLOR_YUV2RGB_NV21,
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB, "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB, "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
    "bayer_rggb16": cv2.COLOR_BayerBG2RGB, "bayer_bggr16": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg16": cv2.COLOR_BayerGR2RGB, "bayer_grbg16": cv2.COLOR_BayerGB2RGB,
}  # fmt: skip


def cv_bridge_8_bit(values: np.ndarray) -> np.ndarray:
    """cv_bridge's 16 → 8 bits, ``convertTo(CV_8U, 255. / 65535.)``: round to nearest."""
    return np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)


def opencv_reference(planes: list[np.ndarray], encoding: str) -> np.ndarray:
    """OpenCV's conversion of the raw planes (contiguous, native order), then cv_bridge's
    16 → 8-bit rule."""
    if encoding == "nv21":  # OpenCV's NV21 layout: the luma rows, then the V,U rows
        height, width = planes[0].shape
        raw = np.concatenate([planes[0], planes[1].reshape(height // 2, width)])
    else:
        raw = planes[0]
    code = OPENCV_CODES[encoding]
    rgb = raw if code is None else cv2.cvtColor(raw, code)
    return cv_bridge_8_bit(rgb) if rgb.dtype == np.uint16 else rgb
