"""One frame through the model: preprocess → engine → postprocess, with stage timings."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dav2_ros.engines.base import Engine
from dav2_ros.model.transforms import prepare_input, resize_output


@dataclass
class Prediction:
    """Network output resized to the requested size, with what it means."""

    values: np.ndarray  # float32 H×W: metres (metric) or relative disparity (relative)
    depth_type: str  # "metric" | "relative"
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.postprocess_ms


class DepthEstimator:
    """Runs an ``Engine`` on RGB images of any size, as the official ``infer_image``."""

    def __init__(self, engine: Engine, depth_type: str, input_size: int) -> None:
        self.engine = engine
        self.depth_type = depth_type
        self.input_size = input_size

    def predict(
        self, image_rgb: np.ndarray, output_hw: tuple[int, int] | None = None
    ) -> Prediction:
        """HxWx3 uint8 RGB → prediction at ``output_hw`` (default: the image's size).

        ``output_hw=(0, 0)`` keeps the network's own resolution.
        """
        t0 = time.perf_counter()
        batch = prepare_input(image_rgb, self.input_size)
        if batch.shape[2:] != tuple(self.engine.input_hw):
            raise ValueError(
                f"image {image_rgb.shape[1]}x{image_rgb.shape[0]} needs network input "
                f"{batch.shape[3]}x{batch.shape[2]}, but the engine was built for "
                f"{self.engine.input_hw[1]}x{self.engine.input_hw[0]}; rebuild the engine "
                "for this camera resolution"
            )
        t1 = time.perf_counter()
        raw = self.engine.infer(batch)[0]
        t2 = time.perf_counter()
        height, width = output_hw if output_hw is not None else image_rgb.shape[:2]
        values = raw if (height, width) == (0, 0) else resize_output(raw, height, width)
        t3 = time.perf_counter()
        return Prediction(
            values=values,
            depth_type=self.depth_type,
            preprocess_ms=(t1 - t0) * 1e3,
            infer_ms=(t2 - t1) * 1e3,
            postprocess_ms=(t3 - t2) * 1e3,
        )
