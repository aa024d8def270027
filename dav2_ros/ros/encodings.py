"""The ``sensor_msgs/Image`` encodings the node reads: per encoding, how its bytes are laid
out and how its pixels become RGB (colour) or metres (depth).

Colour follows cv_bridge (``imgmsg_to_cv2(msg, "rgb8")``), which converts with OpenCV, so
each colour encoding names the OpenCV code cv_bridge uses. Which drivers publish which
encoding, and the rules in words: docs/encodings.md. Plain numpy and OpenCV: no messages
here (``conversions`` reads them), no rclpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

U8, U16 = np.dtype(np.uint8), np.dtype(np.uint16)
# cv_bridge turns 16-bit into 8-bit images after the colour conversion, with
# ``convertTo(CV_8U, 255. / 65535.)`` (cv_bridge.cpp, toCvCopyImpl): v * 255 / 65535 = v / 257,
# rounded to nearest (never a tie: 257 is odd), so 65535 → 255 and 257·k → k.
SCALE_16_TO_8 = 255.0 / 65535.0
# Rows of ``step`` bytes per image row, as (numerator, denominator), for each plane layout:
# interleaved: one row per image row; yuv420sp (NV21): the luma plane, then height / 2 rows of
# V,U pairs; yuv444sp (NV24): the luma plane, then height rows of U,V pairs, each twice as
# long as a luma row (V4L2 / libcamera NV24: the chroma stride is twice the luma stride).
PLANE_ROWS = {"interleaved": (1, 1), "yuv420sp": (3, 2), "yuv444sp": (3, 1)}


def yuv444_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 (Y, U, V per pixel, BT.601 limited range) → HxWx3 uint8 RGB.

    OpenCV has no NV24 code, and its ``COLOR_YUV2RGB`` is full range. So each pixel becomes
    a YUYV pair of two equal pixels with its own U and V (a YUYV image twice as wide) and
    OpenCV's YUYV decoder, the one ``yuv422_yuy2`` uses, converts it: the same limited-range
    arithmetic as the 4:2:2 and 4:2:0 encodings, every pixel its own chroma. Then every
    second column is kept. (``mixChannels`` moves the bytes: with numpy's strided copies
    the decode took 7x as long at 1280x720.)
    """
    height, width = yuv.shape[:2]
    pairs = np.empty((height, width, 4), np.uint8)
    cv2.mixChannels([yuv], [pairs], [0, 0, 1, 1, 0, 2, 2, 3])  # Y U Y V
    doubled = cv2.cvtColor(pairs.reshape(height, 2 * width, 2), cv2.COLOR_YUV2RGB_YUY2)
    rgb = np.empty((height, width, 3), np.uint8)
    cv2.mixChannels([doubled.reshape(height, width, 6)], [rgb], [0, 0, 1, 1, 2, 2])
    return rgb


@dataclass(frozen=True)
class Encoding:
    dtype: np.dtype  # of one stored value
    channels: int  # values per pixel in a row (semi-planar: in the luma plane)
    # Colour: the OpenCV code to RGB, or a function for what OpenCV lacks; None: already RGB
    # (colour) or not colour (depth).
    to_rgb: int | Callable[[np.ndarray], np.ndarray] | None = None
    planes: str = "interleaved"  # a key of PLANE_ROWS
    # The width and the height must be multiples of these: pixels that share chroma samples.
    pixel_block: tuple[int, int] = (1, 1)
    metres_per_unit: float | None = None  # depth encodings only
    zero_is_invalid: bool = False  # 16UC1: 0 = no measurement (REP 118)

    def frame_rows(self, height: int) -> int:
        """Rows of ``step`` bytes an image ``height`` rows high fills (all planes)."""
        numerator, denominator = PLANE_ROWS[self.planes]
        return height * numerator // denominator

    def pixels(self, rows: np.ndarray, width: int, height: int, big_endian: bool) -> np.ndarray:
        """The ``frame_rows`` x step uint8 ``rows`` → this encoding's pixels in native byte
        order: HxW or HxWxC values (a read-only view where no byte swap is needed), NV21 as
        OpenCV's (3H/2)xW layout (a view, the step kept as row stride), NV24 as HxWx3 Y, U, V.
        """
        if self.planes == "yuv420sp":
            return rows[:, :width]
        if self.planes == "yuv444sp":
            chroma = rows[height:].reshape(height, 2 * rows.shape[1])[:, : 2 * width]
            yuv = np.empty((height, width, 3), np.uint8)
            planes = [rows[:height, :width], chroma.reshape(height, width, 2)]
            cv2.mixChannels(planes, [yuv], [0, 0, 1, 1, 2, 2])
            return yuv
        pixels = rows[:, : width * self.channels * self.dtype.itemsize]
        if self.dtype.itemsize > 1:
            stored = self.dtype.newbyteorder(">" if big_endian else "<")
            # A view needs aligned, contiguous rows; the copy is one image, only for padded rows.
            pixels = np.ascontiguousarray(pixels).view(stored).astype(self.dtype, copy=False)
        return pixels.reshape((height, width) + ((self.channels,) if self.channels > 1 else ()))

    def rgb_of(self, pixels: np.ndarray) -> np.ndarray:
        """This colour encoding's ``pixels`` → HxWx3 uint8 RGB (rgb8: ``pixels`` itself).

        As cv_bridge: the colour conversion at the source depth, then 16 → 8 bits."""
        convert = self.to_rgb
        if convert is None:
            rgb = pixels
        elif callable(convert):
            rgb = convert(pixels)
        else:
            rgb = cv2.cvtColor(pixels, convert)
        if rgb.dtype == U16:
            rgb = cv2.convertScaleAbs(rgb, alpha=SCALE_16_TO_8)
        return rgb


_YUYV = Encoding(U8, 2, to_rgb=cv2.COLOR_YUV2RGB_YUY2, pixel_block=(2, 1))
_UYVY = Encoding(U8, 2, to_rgb=cv2.COLOR_YUV2RGB_UYVY, pixel_block=(2, 1))
# ROS names a Bayer mosaic by its first two pixels of rows 0 and 1 (rggb: R G / G B), OpenCV
# by the second and third pixels of row 1 (the same mosaic is "BG"): a wrong pairing swaps
# red and blue.
_BAYER_CODES = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}
ENCODINGS: dict[str, Encoding] = {
    "rgb8": Encoding(U8, 3),
    "bgr8": Encoding(U8, 3, to_rgb=cv2.COLOR_BGR2RGB),
    "rgba8": Encoding(U8, 4, to_rgb=cv2.COLOR_RGBA2RGB),
    "bgra8": Encoding(U8, 4, to_rgb=cv2.COLOR_BGRA2RGB),
    "mono8": Encoding(U8, 1, to_rgb=cv2.COLOR_GRAY2RGB),
    "rgb16": Encoding(U16, 3),
    "bgr16": Encoding(U16, 3, to_rgb=cv2.COLOR_BGR2RGB),
    "rgba16": Encoding(U16, 4, to_rgb=cv2.COLOR_RGBA2RGB),
    "bgra16": Encoding(U16, 4, to_rgb=cv2.COLOR_BGRA2RGB),
    "mono16": Encoding(U16, 1, to_rgb=cv2.COLOR_GRAY2RGB),
    # YUV, BT.601 limited range as OpenCV decodes it. sensor_msgs names 4:2:2 twice:
    # yuv422 / uyvy (U Y0 V Y1) and yuv422_yuy2 / yuyv (Y0 U Y1 V).
    "yuv422": _UYVY,
    "uyvy": _UYVY,
    "yuv422_yuy2": _YUYV,
    "yuyv": _YUYV,
    "nv21": Encoding(U8, 1, to_rgb=cv2.COLOR_YUV2RGB_NV21, planes="yuv420sp", pixel_block=(2, 2)),
    "nv24": Encoding(U8, 1, to_rgb=yuv444_to_rgb, planes="yuv444sp"),
    **{f"bayer_{phase}8": Encoding(U8, 1, to_rgb=code) for phase, code in _BAYER_CODES.items()},
    **{f"bayer_{phase}16": Encoding(U16, 1, to_rgb=code) for phase, code in _BAYER_CODES.items()},
    "32FC1": Encoding(np.dtype(np.float32), 1, metres_per_unit=1.0),
    "16UC1": Encoding(U16, 1, metres_per_unit=1e-3, zero_is_invalid=True),
}
COLOUR_ENCODINGS = tuple(n for n, e in ENCODINGS.items() if e.metres_per_unit is None)
DEPTH_ENCODINGS = tuple(n for n, e in ENCODINGS.items() if e.metres_per_unit is not None)
