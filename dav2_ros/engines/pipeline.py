"""One frame through the model: preprocess → engine → postprocess, with stage timings.

A metric model trained in a canonical camera (``dav2_ros.model.focal``) gets its metres
rescaled to the camera's focal length in postprocess, when the caller says what it is.

Engines are static-shape (one exported graph per network input size, see
``onnx_export``), so the estimator builds the engine for an image's input size the first
time it sees one and keeps it; a camera has one resolution, so by default it keeps one.

A prediction may carry a confidence map (``dav2_ros.model.confidence``): from the
model's confidence head (the engine's second plane), or from the disagreement with a
second pass on the mirrored image (``flip``, for checkpoints without a head).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from dav2_ros.engines.base import Engine, EngineSpec, resolve_backend
from dav2_ros.engines.create import create_engine
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.confidence import confidence_from_error, flip_disagreement, resolve_mode
from dav2_ros.model.focal import focal_scale
from dav2_ros.model.transforms import model_input_size, prepare_input, resize_output


@dataclass
class Prediction:
    """Network output resized to the requested size, with what it means."""

    values: np.ndarray  # float32 H×W: metres (metric) or relative disparity (relative)
    depth_type: str  # "metric" | "relative"
    preprocess_ms: float
    infer_ms: float  # with ``flip`` confidence: both passes
    postprocess_ms: float
    confidence: np.ndarray | None = None  # float32 H×W in [0, 1], 1 = trusted; None: none
    # f / f_canonical the metres were multiplied by; 1.0: not corrected (no correction
    # for this model, or no focal length for this image)
    focal_scale: float = 1.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.postprocess_ms


class DepthEstimator:
    """Runs ``model`` on RGB images of any size, as the official ``infer_image``.

    ``spec`` says which engine to build; it is built for an image's network input size
    (shorter side ``input_size``) on first need. ``max_engines`` engines are kept, the
    least recently used closed beyond that (None: keep all, for batches of mixed sizes).
    ``confidence`` (``auto|head|flip|off``, ``dav2_ros.model.confidence.resolve_mode``)
    says where confidence maps come from; ``self.confidence`` is what it resolved to.
    ``canonical_focal_px`` (metric models; ``focal.choose_canonical_focal``): the output
    is the metres of that canonical camera, rescaled to an image's own focal length
    when ``predict`` gets one.
    """

    def __init__(
        self,
        model: DepthAnythingV2,
        spec: EngineSpec,
        input_size: int,
        max_engines: int | None = 1,
        confidence: str = "off",
        canonical_focal_px: float | None = None,
    ) -> None:
        resolve_backend(spec.backend)  # an unknown backend fails here, not at the first frame
        has_head = bool(getattr(model, "has_confidence_head", False))  # any nn.Module runs
        self.confidence = resolve_mode(confidence, has_head)
        if canonical_focal_px is not None and model.depth_type != "metric":
            raise ValueError("a canonical focal length corrects metres: the model is relative")
        self.canonical_focal_px = canonical_focal_px
        self.model = model
        self.spec = spec
        self.input_size = input_size
        self.depth_type = model.depth_type
        self.max_engines = max_engines
        self._engines: OrderedDict[tuple[int, int], Engine] = OrderedDict()

    def input_hw(self, height: int, width: int) -> tuple[int, int]:
        """Network input (height, width) for an image of this size."""
        return model_input_size(height, width, self.input_size)

    def has_engine_for(self, height: int, width: int) -> bool:
        return self.input_hw(height, width) in self._engines

    @property
    def engine(self) -> Engine | None:
        """The most recently used engine, None before the first image."""
        return next(reversed(self._engines.values()), None)

    def engine_for(self, height: int, width: int) -> Engine:
        """The engine for images of this size, built now if there is none yet."""
        input_hw = self.input_hw(height, width)
        engine = self._engines.get(input_hw)
        if engine is None:
            if self.max_engines is not None:
                while len(self._engines) >= self.max_engines:
                    self._engines.popitem(last=False)[1].close()
            engine = create_engine(self.model, self.spec.config(input_hw))
            self._engines[input_hw] = engine
        self._engines.move_to_end(input_hw)
        return engine

    def predict(
        self,
        image_rgb: np.ndarray,
        output_hw: tuple[int, int] | None = None,
        confidence: str | None = None,
        focal_px: tuple[float, float] | None = None,
    ) -> Prediction:
        """HxWx3 uint8 RGB → prediction at ``output_hw`` (default: the image's size).

        ``output_hw=(0, 0)`` keeps the network's own resolution. ``confidence``: where this
        frame's confidence map (same size) comes from, None = the estimator's own source;
        ``off`` skips it (and the flip's second pass); ``flip`` works for any model.
        ``focal_px``: the camera's (fx, fy) in pixels of this image; with a
        ``canonical_focal_px`` the metres are multiplied by f / f_canonical (f at the
        network input), without one (or without ``focal_px``) they are the network's. The
        confidence is a relative error: the focal scale leaves it unchanged.
        """
        scale = 1.0
        if self.canonical_focal_px is not None and focal_px is not None:
            scale = focal_scale(
                focal_px, image_rgb.shape[:2], self.input_size, self.canonical_focal_px
            )
        engine = self.engine_for(*image_rgb.shape[:2])
        t0 = time.perf_counter()
        batch = prepare_input(image_rgb, self.input_size)
        t1 = time.perf_counter()
        planes = engine.infer(batch)
        mode = self.confidence if confidence is None else confidence
        if mode == "flip":
            mirrored = engine.infer(np.ascontiguousarray(batch[..., ::-1]))[0]
        t2 = time.perf_counter()
        height, width = output_hw if output_hw is not None else image_rgb.shape[:2]
        keep = (height, width) == (0, 0)
        values = planes[0] if keep else resize_output(planes[0], height, width)
        if scale != 1.0:  # a new array: the plane may be the engine's own buffer
            values = values * np.float32(scale)
        error = None
        if mode == "head" and planes.shape[0] > 1:
            error = planes[1]
        elif mode == "flip":
            error = flip_disagreement(planes[0], mirrored, self.depth_type)
        confidence = None
        if error is not None:
            confidence = confidence_from_error(
                error if keep else resize_output(error, height, width)
            )
        t3 = time.perf_counter()
        return Prediction(
            values=values,
            depth_type=self.depth_type,
            preprocess_ms=(t1 - t0) * 1e3,
            infer_ms=(t2 - t1) * 1e3,
            postprocess_ms=(t3 - t2) * 1e3,
            confidence=confidence,
            focal_scale=scale,
        )

    def close(self) -> None:
        """Close every engine (the next image builds again). Closes all it can, then
        raises the first failure: a broken engine may fail to close, too."""
        engines, self._engines = list(self._engines.values()), OrderedDict()
        failures = []
        for engine in engines:
            try:
                engine.close()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
