"""docs/confidence.png: the bundled model's depth beside its confidence on a held-out frame.

The frame is rendered exactly as the held-out test split ``c_test`` of
training/configs/default.yaml renders its frame ``--index`` (style c: scenes, textures,
light and camera the model never trained on; 640x480). Panels, each at half size:
the image, the depth (colour, near = warm), the confidence (grey, white = trusted; its
frame mean in the label) and the true relative error |d - d*| / d* (grey, white = 0,
black >= 100 %; black also where there is no true depth; the frame's AbsRel in the label).

    PYTHONPATH=.:training python docs/render_confidence.py [--index 0] [--out docs/confidence.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml
from dav2_train.synth import render_frame

from dav2_ros.colorize import colorize, colorize_confidence
from dav2_ros.engines import DepthEstimator, EngineSpec
from dav2_ros.model.checkpoints import load_model

DOCS = Path(__file__).resolve().parent
CONFIG = DOCS.parent / "training" / "configs" / "default.yaml"
ERROR_SHOWN_MAX = 1.0  # relative error drawn black


def held_out_frame(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, depth_m with NaN invalid) of frame ``index`` of the config's ``c_test``."""
    config = yaml.safe_load(CONFIG.read_text())
    split = config["synth"]["splits"]["c_test"]
    frame = render_frame(
        int(split["seed"]), index, split["style"], int(split["width"]), int(split["height"]),
        float(config["max_depth_m"]),
    )  # fmt: skip
    return frame.rgb, np.where(frame.valid, frame.depth_m, np.nan)


def labelled(panel: np.ndarray, text: str) -> np.ndarray:
    half = cv2.resize(
        panel, (panel.shape[1] // 2, panel.shape[0] // 2), interpolation=cv2.INTER_AREA
    )
    cv2.rectangle(half, (0, 0), (half.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(half, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=int, default=0, help="frame of c_test")
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--out", type=Path, default=DOCS / "confidence.png")
    args = parser.parse_args(argv)
    loaded = load_model(args.checkpoint)
    if not loaded.meta.has_confidence_head:
        print(f"{loaded.meta.source} has no confidence head", file=sys.stderr)
        return 2
    rgb, truth_m = held_out_frame(args.index)
    estimator = DepthEstimator(
        loaded.model, EngineSpec("torch"), loaded.meta.input_size, confidence="head"
    )
    prediction = estimator.predict(rgb)
    depth_m = prediction.values
    with np.errstate(invalid="ignore"):
        error = np.abs(depth_m - truth_m) / truth_m
    absrel = float(np.nanmean(error))
    mean_confidence = float(np.mean(prediction.confidence))
    panels = [
        labelled(rgb, f"held-out style c, frame {args.index}"),
        labelled(colorize(depth_m, high_is_warm=False), "depth (near = warm)"),
        labelled(
            colorize_confidence(prediction.confidence),
            f"confidence, mean {mean_confidence:.2f}",
        ),
        labelled(
            colorize_confidence(1.0 - np.clip(error / ERROR_SHOWN_MAX, 0.0, 1.0)),
            f"true error, AbsRel {absrel:.2f}",
        ),
    ]
    image = np.concatenate(panels, axis=1)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"could not write {args.out}")
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
