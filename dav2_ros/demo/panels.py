"""The demo's picture: RGB | predicted depth | ground truth | error, with colour bars.

With ``--sparse``: RGB with the LiDAR's returns drawn on it | the model alone | with the
sparse fit | ground truth | error of the fitted depth. Drawn with OpenCV and numpy
only (no matplotlib). Depth tiles share one colour scale in metres so they can be
compared by eye; the error tile shows the absolute relative error |d − d*| / d*.
Invalid pixels are dark grey.
"""

from __future__ import annotations

import cv2
import numpy as np

from dav2_ros.colorize import colorize

TILE_W = 320
TITLE_H = 26
BAR_H = 46
CAPTION_H = 24
INVALID_BGR = (48, 48, 48)
ERROR_MAX = 0.5  # error colour scale tops out at 50 % relative error
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour_tile(values: np.ndarray, vmin: float, vmax: float, cmap: int) -> np.ndarray:
    """Float H×W → BGR uint8 on a fixed scale; non-finite pixels dark grey."""
    bgr = cv2.cvtColor(colorize(values, True, (vmin, vmax), cmap), cv2.COLOR_RGB2BGR)
    bgr[~np.isfinite(values)] = INVALID_BGR
    return bgr


def _draw_returns(bgr: np.ndarray, sparse_m: np.ndarray, vmax: float, cmap: int) -> None:
    """LiDAR returns as dots in the depth colours, big enough to survive the tile's shrink."""
    rows, cols = np.nonzero(np.isfinite(sparse_m))
    colours = _colour_tile(sparse_m[rows, cols][None, :], 0.0, vmax, cmap)[0]
    radius = max(1, round(1.5 * bgr.shape[1] / TILE_W))
    for row, col, colour in zip(rows, cols, colours, strict=True):
        cv2.circle(bgr, (int(col), int(row)), radius, tuple(int(c) for c in colour), -1)


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
    model_alone_m: np.ndarray | None = None,
    sparse_m: np.ndarray | None = None,
    pred_title: str = "predicted depth",
) -> np.ndarray:
    """Tiles side by side as a BGR uint8 image ready for ``cv2.imwrite``.

    ``depth_max_m`` fixes the depth colour scale; by default the ground truth's
    98th percentile, so one far pixel does not wash out the picture. ``model_alone_m``
    (the model's metres before the sparse fit) adds a tile before ``pred_m``;
    ``sparse_m`` (NaN but at the LiDAR's returns) is drawn on the camera tile in the
    depth colours.
    """
    extras = [a for a in (model_alone_m, sparse_m) if a is not None]
    if not all(a.shape == gt_m.shape for a in (rgb[..., 0], pred_m, *extras)):
        raise ValueError(
            f"panel inputs must share one size: rgb {rgb.shape[:2]}, prediction "
            f"{pred_m.shape}, ground truth {gt_m.shape}, others {[a.shape for a in extras]}"
        )
    finite_gt = gt_m[np.isfinite(gt_m)]
    if depth_max_m is None:
        depth_max_m = float(np.percentile(finite_gt, 98)) if finite_gt.size else 10.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_err = np.abs(pred_m - gt_m) / gt_m
    rel_err[~(np.isfinite(rel_err) & (gt_m > 0))] = np.nan

    depth_cmap, err_cmap = cv2.COLORMAP_TURBO, cv2.COLORMAP_INFERNO
    depth_bar = colour_bar(TILE_W, 0.0, depth_max_m, depth_cmap, " m")
    camera_bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    camera_title = "camera (RGB)"
    if sparse_m is not None:
        _draw_returns(camera_bgr, sparse_m, depth_max_m, depth_cmap)
        camera_title = "camera + LiDAR returns"
    tiles = [_tile(camera_bgr, camera_title, None)]
    if model_alone_m is not None:
        model_tile = _colour_tile(model_alone_m, 0.0, depth_max_m, depth_cmap)
        tiles.append(_tile(model_tile, "model alone", depth_bar))
    tiles += [
        _tile(_colour_tile(pred_m, 0.0, depth_max_m, depth_cmap), pred_title, depth_bar),
        _tile(_colour_tile(gt_m, 0.0, depth_max_m, depth_cmap), "ground truth depth", depth_bar),
        _tile(
            _colour_tile(rel_err, 0.0, ERROR_MAX, err_cmap),
            "error |d-d*|/d*",
            colour_bar(TILE_W, 0.0, ERROR_MAX, err_cmap, ""),
        ),
    ]
    panel = np.hstack(tiles)
    if caption:  # on a strip of its own: a long one would run over the colour bars
        strip = np.full((CAPTION_H, panel.shape[1], 3), 255, np.uint8)
        cv2.putText(strip, caption, (8, CAPTION_H - 8), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        panel = np.vstack([panel, strip])
    return panel
