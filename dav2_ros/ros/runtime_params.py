"""The answer to ``ros2 param set`` on the depth node: accepted (with the settings it
gives) or refused (with the reason the caller sees in ``SetParametersResult``). No ROS.

Parameters marked ``runtime`` in the table change outputs only (points, scan, temporal,
the scale thresholds): they are checked exactly as at start and apply from the next
frame. The others need a new model, engine or subscription: read-only once configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dav2_ros.paramspec import ParameterError, check_value
from dav2_ros.ros.parameters import PARAMETERS, NodeSettings, settings_from_values

SPECS = {spec.name: spec for spec in PARAMETERS}
RUNTIME = frozenset(name for name, spec in SPECS.items() if spec.runtime)


@dataclass(frozen=True)
class ChangeAnswer:
    reason: str = ""  # empty: accepted
    settings: NodeSettings | None = None  # configured node: the settings to apply

    @property
    def accepted(self) -> bool:
        return not self.reason


def answer_change(
    changes: Mapping[str, Any], values: Mapping[str, Any], configured: bool, managed: bool
) -> ChangeAnswer:
    """Whether ``changes`` may be applied to a node whose parameters are ``values``.

    ``configured``: a model and engine are built (unmanaged: always; lifecycle: inactive
    or active). ``managed``: the node is ``depth_lifecycle_node``, which can rebuild
    through cleanup and configure.
    """
    try:
        for name, value in changes.items():
            if name in SPECS:
                check_value(SPECS[name], value)
    except ParameterError as exc:
        return ChangeAnswer(str(exc))
    if not configured:
        return ChangeAnswer()  # checked together at configure
    fixed = sorted(name for name in changes if name in SPECS and name not in RUNTIME)
    if fixed:
        how = (
            "cleanup, set it, then configure and activate the node again"
            if managed
            else "restart the node with the new value (depth_lifecycle_node applies it "
            "with cleanup and configure)"
        )
        names = ", ".join(f"'{name}'" for name in fixed)
        return ChangeAnswer(f"{names} need(s) a new model, engine or subscription: {how}")
    try:
        return ChangeAnswer(settings=settings_from_values({**values, **changes}))
    except ParameterError as exc:
        return ChangeAnswer(str(exc))
