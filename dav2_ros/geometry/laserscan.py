"""sensor_msgs/LaserScan fields from a metric depth image, as depthimage_to_laserscan
(ros-perception, ROS 2 branch) computes them; no ROS here.

Conventions kept from depthimage_to_laserscan, so Nav2 sees the same scan either way:

- The scan frame has x along the optical axis and angles growing to the left, so image
  column 0 is ``angle_max`` and the last column ``angle_min``. ``angle_max`` is the angle
  between the rays of pixels (0, cy) and (cx, cy); ``angle_min`` minus the angle between
  (cx, cy) and (W-1, cy); ``angle_increment = (angle_max - angle_min) / (W - 1)``, all
  float32 as in the message; one range per image column.
- ``height_px`` rows from ``int(cy - height_px / 2)`` are scanned; a band that does not
  fit around cy is refused.
- Each pixel's angle is ``-atan(x/z)`` and its bin ``int((angle - angle_min) /
  angle_increment)`` (truncated); its range is ``hypot(X, Z)`` (the horizontal range;
  the row's height Y is ignored). Bins no pixel falls into stay NaN.
- Per bin: the shortest finite range within [range_min, range_max]; failing that, the
  last +/-Inf depth met (rows top down, columns left to right); failing that NaN. Finite
  ranges outside the limits are dropped, so they read NaN, never +/-Inf.

One difference: on a camera with distortion (``LensModel`` with D), each pixel uses its
undistorted ray instead of ``(u - cx) / fx``; depthimage_to_laserscan undistorts only the
three rays that fix the angle limits and bins raw pixels as a pinhole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dav2_ros.geometry.intrinsics import IntrinsicsError
from dav2_ros.geometry.lens import LensModel


class ScanHeightError(ValueError):
    """``scan.height`` rows do not fit around this camera's optical centre row."""


@dataclass(frozen=True)
class ScanSettings:
    """What the scan takes beyond the depth image (defaults: depthimage_to_laserscan's)."""

    height_px: int = 1  # rows of the depth image around the optical centre row
    range_min_m: float = 0.45
    range_max_m: float = 10.0
    scan_time_s: float = 0.033  # LaserScan.scan_time: the time between scans
    output_frame: str = ""  # "" = the depth's frame without "_optical" (REP 103)

    def __post_init__(self) -> None:
        if self.height_px < 1:
            raise ValueError(f"scan height must be >= 1 row, got {self.height_px}")
        if not 0.0 <= self.range_min_m < self.range_max_m:
            raise ValueError(
                f"scan ranges need 0 <= range_min < range_max, got range_min "
                f"{self.range_min_m} m and range_max {self.range_max_m} m"
            )
        if self.scan_time_s < 0:
            raise ValueError(f"scan_time must be >= 0 s, got {self.scan_time_s}")


@dataclass(frozen=True)
class LaserScanData:
    """Every LaserScan field except the header (the node copies the depth's stamp)."""

    angle_min: float
    angle_max: float
    angle_increment: float
    time_increment: float
    scan_time: float
    range_min: float
    range_max: float
    ranges: np.ndarray  # float32, one per depth image column


@dataclass(frozen=True, eq=False)
class ScanGeometry:
    """Where each pixel of the scanned rows lands: computed once per camera_info."""

    image_hw: tuple[int, int]
    row_start: int
    angle_min: float  # float32 values, as the message carries them
    angle_max: float
    angle_increment: float
    bins: np.ndarray  # rows x W int64 scan index per pixel, -1 outside the scan
    range_per_depth_m: np.ndarray  # rows x W float64: hypot(x/z, 1), range = depth * this

    @classmethod
    def for_lens(cls, lens: LensModel, height_px: int) -> ScanGeometry:
        """The geometry of ``lens`` (sized as the depth image) for ``height_px`` rows."""
        k = lens.intrinsics
        if not k.is_calibrated:
            raise IntrinsicsError(f"camera is not calibrated (fx={k.fx}, fy={k.fy})")
        if height_px / 2 > k.cy or height_px / 2 > k.height - k.cy:
            raise ScanHeightError(
                f"scan height {height_px} rows does not fit around the optical centre row "
                f"cy={k.cy:.1f} of a {k.height}-row depth image (at most "
                f"{int(2 * min(k.cy, k.height - k.cy))} rows); lower the scan height"
            )
        row_start = int(k.cy - height_px / 2)
        width = k.width
        limits = lens.undistort(np.array([[0.0, k.cy], [width - 1.0, k.cy], [k.cx, k.cy]]))
        left, right, centre = (np.append(ray, 1.0) for ray in limits)
        angle_max = np.float32(_angle_between(left, centre))
        angle_min = np.float32(-_angle_between(centre, right))
        increment = np.float32((angle_max - angle_min) / np.float32(width - 1))
        if lens.is_pinhole:
            x_over_z = np.broadcast_to(_pinhole_x_over_z(lens, width), (height_px, width))
        else:
            rows, cols = np.mgrid[row_start : row_start + height_px, 0:width]
            pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
            x_over_z = lens.undistort(pixels)[:, 0].reshape(height_px, width)
        with np.errstate(invalid="ignore"):
            position = np.trunc((-np.arctan(x_over_z) - float(angle_min)) / float(increment))
            inside = (position >= 0) & (position < width)  # NaN rays are never inside
        bins = np.where(inside, position, -1).astype(np.int64)
        return cls(
            image_hw=(k.height, width),
            row_start=row_start,
            angle_min=float(angle_min),
            angle_max=float(angle_max),
            angle_increment=float(increment),
            bins=bins,
            range_per_depth_m=np.hypot(x_over_z, 1.0),
        )

    @property
    def rows(self) -> slice:
        return slice(self.row_start, self.row_start + self.bins.shape[0])


def _angle_between(ray_a: np.ndarray, ray_b: np.ndarray) -> float:
    return float(np.arccos(ray_a @ ray_b / (np.linalg.norm(ray_a) * np.linalg.norm(ray_b))))


def _pinhole_x_over_z(lens: LensModel, width: int) -> np.ndarray:
    """x/z per column in depthimage_to_laserscan's precision: ``u - cx`` and ``1/fx`` are
    float32 there, and a column's bin is a truncation, so matching it needs the same."""
    k = lens.intrinsics
    offset = np.arange(width, dtype=np.float32) - np.float32(k.cx)
    return offset.astype(np.float64) * float(np.float32(1.0 / k.fx))


def depth_to_scan(
    depth_m: np.ndarray, geometry: ScanGeometry, settings: ScanSettings
) -> LaserScanData:
    """HxW metres (NaN invalid, +/-Inf passed through) → the scan of ``geometry``'s rows."""
    if depth_m.shape != geometry.image_hw:
        raise ValueError(
            f"the scan geometry is for a {geometry.image_hw[1]}x{geometry.image_hw[0]} depth "
            f"image, got {depth_m.shape[1]}x{depth_m.shape[0]}; rebuild it for this camera_info"
        )
    band = depth_m[geometry.rows].astype(np.float64)
    finite = np.isfinite(band)
    # Non-finite depths are the range itself (NaN, +/-Inf); a negative depth counts by its
    # magnitude, as hypot(x, z) does in depthimage_to_laserscan.
    ranges_m = np.where(finite, np.abs(band) * geometry.range_per_depth_m, band)
    ranges_m = ranges_m.astype(np.float32).ravel()
    bins = geometry.bins.ravel()
    width = geometry.image_hw[1]
    range_min, range_max = np.float32(settings.range_min_m), np.float32(settings.range_max_m)

    usable = (bins >= 0) & finite.ravel() & (ranges_m >= range_min) & (ranges_m <= range_max)
    shortest = np.full(width, np.inf, dtype=np.float32)
    np.minimum.at(shortest, bins[usable], ranges_m[usable])
    scan = np.full(width, np.nan, dtype=np.float32)
    infinite = np.flatnonzero((bins >= 0) & np.isinf(ranges_m))[::-1]  # newest first
    if infinite.size:
        bins_seen, newest = np.unique(bins[infinite], return_index=True)
        scan[bins_seen] = ranges_m[infinite[newest]]
    has_range = np.zeros(width, dtype=bool)
    has_range[bins[usable]] = True
    scan[has_range] = shortest[has_range]
    return LaserScanData(
        angle_min=geometry.angle_min,
        angle_max=geometry.angle_max,
        angle_increment=geometry.angle_increment,
        time_increment=0.0,
        scan_time=settings.scan_time_s,
        range_min=settings.range_min_m,
        range_max=settings.range_max_m,
        ranges=scan,
    )


def scan_frame_id(depth_frame_id: str, output_frame: str = "") -> str:
    """The scan's frame: ``output_frame``, else the depth's frame without ``_optical``.

    A LaserScan frame has x forward (REP 103 body frame); a camera's depth is in its
    ``*_optical_frame`` (z forward), and REP 103 names the body frame the same without
    ``_optical`` (``camera_depth_optical_frame`` → ``camera_depth_frame``, the
    depthimage_to_laserscan default). A frame without ``_optical`` is kept as it is.
    """
    if output_frame:
        return output_frame
    head, found, tail = depth_frame_id.rpartition("_optical")
    return head + tail if found else depth_frame_id
