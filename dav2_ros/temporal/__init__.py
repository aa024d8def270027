"""Temporal stability of depth sequences (no ROS): the flicker measure and the stabiliser.

``flicker`` scores a sequence against exact ground truth (how much each frame's own
fit to the truth changes from frame to frame); ``stabilizer`` (``temporal.mode:
align``) damps that change online, with at most one frame of lag.
"""

from dav2_ros.temporal.flicker import FrameFit, SequenceScore, fit_frame, score_sequence
from dav2_ros.temporal.stabilizer import (
    TEMPORAL_MODES,
    Stabilised,
    TemporalSettings,
    TemporalStabilizer,
)

__all__ = [
    "TEMPORAL_MODES",
    "FrameFit",
    "SequenceScore",
    "Stabilised",
    "TemporalSettings",
    "TemporalStabilizer",
    "fit_frame",
    "score_sequence",
]
