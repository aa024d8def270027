"""The demo's picture: RGB | predicted depth | ground truth | error, with colour bars.

Drawn with OpenCV and numpy only (no matplotlib). Depth tiles share one colour
scale in metres so the two can be compared by eye; the error tile shows the
absolute relative error |d − d*| / d*. Invalid pixels are dark grey.
"""

from __future__ import annotations

import cv2
import numpy as np

from dav2_ros.colorize import colorize

TILE_W = 320
TITLE_H = 26
BAR_H = 46
INVALID_BGR = (48, 48, 48)
ERROR_MAX = 0.5  # error colour scale tops out at 50 % relative error
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour_tile(values: np.ndarray, vmin: float, vmax: float, cmap: int) -> np.ndarray:
    """Float H×W → BGR uint8 on a fixed scale; non-finite pixels dark grey."""
    bgr = cv2.cvtColor(colorize(values, True, (vmin, vmax), cmap), cv2.COLOR_RGB2BGR)
    bgr[~np.isfinite(values)] = INVALID_BGR
    return bgr


def colour_bar(width: int, vmin: float, vmax: float, cmap: int, unit: str) -> np.ndarray:
    """A horizontal colour ramp with min / mid / max labels underneath."""
    bar = np.full((BAR_H, width, 3), 255, np.uint8)
    ramp = np.linspace(0, 255, width - 20).astype(np.uint8)[None, :].repeat(14, axis=0)
    bar[4:18, 10 : width - 10] = cv2.applyColorMap(ramp, cmap)
    for frac in (0.0, 0.5, 1.0):
        value = vmin + frac * (vmax - vmin)
        text = f"{value:.2g}{unit}" if frac < 1.0 else f"{value:.2g}{unit}+"
        (tw, _), _ = cv2.getTextSize(text, _FONT, 0.42, 1)
        x = int(10 + frac * (width - 20) - frac * tw)
        cv2.putText(bar, text, (x, 36), _FONT, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def _tile(image_bgr: np.ndarray, title: str, bar: np.ndarray | None) -> np.ndarray:
    height = round(image_bgr.shape[0] * TILE_W / image_bgr.shape[1])
    body = cv2.resize(image_bgr, (TILE_W, height), interpolation=cv2.INTER_AREA)
    head = np.full((TITLE_H, TILE_W, 3), 255, np.uint8)
    cv2.putText(head, title, (8, 18), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    foot = bar if bar is not None else np.full((BAR_H, TILE_W, 3), 255, np.uint8)
    return np.vstack([head, body, foot])


def make_panel(
    rgb: np.ndarray,
    pred_m: np.ndarray,
    gt_m: np.ndarray,
    caption: str = "",
    depth_max_m: float | None = None,
) -> np.ndarray:
    """Four tiles side by side as a BGR uint8 image ready for ``cv2.imwrite``.

    ``depth_max_m`` fixes the depth colour scale; by default the ground truth's
    98th percentile, so one far pixel does not wash out the picture.
    """
    if not (rgb.shape[:2] == pred_m.shape == gt_m.shape):
        raise ValueError(
            f"panel inputs must share one size: rgb {rgb.shape[:2]}, prediction "
            f"{pred_m.shape}, ground truth {gt_m.shape}"
        )
    finite_gt = gt_m[np.isfinite(gt_m)]
    if depth_max_m is None:
        depth_max_m = float(np.percentile(finite_gt, 98)) if finite_gt.size else 10.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_err = np.abs(pred_m - gt_m) / gt_m
    rel_err[~(np.isfinite(rel_err) & (gt_m > 0))] = np.nan

    depth_cmap, err_cmap = cv2.COLORMAP_TURBO, cv2.COLORMAP_INFERNO
    depth_bar = colour_bar(TILE_W, 0.0, depth_max_m, depth_cmap, " m")
    tiles = [
        _tile(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "camera (RGB)", None),
        _tile(_colour_tile(pred_m, 0.0, depth_max_m, depth_cmap), "predicted depth", depth_bar),
        _tile(_colour_tile(gt_m, 0.0, depth_max_m, depth_cmap), "ground truth depth", depth_bar),
        _tile(
            _colour_tile(rel_err, 0.0, ERROR_MAX, err_cmap),
            "error |d-d*|/d*",
            colour_bar(TILE_W, 0.0, ERROR_MAX, err_cmap, ""),
        ),
    ]
    panel = np.hstack(tiles)
    if caption:
        cv2.putText(panel, caption, (8, panel.shape[0] - 8), _FONT, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return panel
