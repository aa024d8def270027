"""Parameters declared as data: a spec per parameter, the one value check, params files.

No ROS here: the node's table (``dav2_ros.ros.parameters``) and the metric-scale table
(``dav2_ros.scale.settings``) are both lists of ``ParamSpec``; the node declares them on
rclpy and ``dav2 calibrate`` writes a params file for some of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

ParamValue = bool | int | float | str


class ParameterError(ValueError):
    """A parameter value the node cannot start with; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: ParamValue
    description: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    step: int = 0  # integer parameters: allowed values are min_value + k*step
    # May be set while the node runs (no new model, engine or subscription): it takes
    # effect at the next frame. Others are read-only once the node is configured.
    runtime: bool = False

    @property
    def type_name(self) -> str:
        return type(self.default).__name__


def check_value(spec: ParamSpec, value: Any) -> ParamValue:
    """The value if it fits ``spec``; else ParameterError saying what was expected."""
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # YAML "20" for a float parameter is fine
    if type(value) is not expected:
        raise ParameterError(
            f"parameter '{spec.name}': expected a {expected.__name__}, got {value!r} "
            f"({type(value).__name__}); fix it in the params file"
        )
    if spec.choices and value not in spec.choices:
        raise ParameterError(
            f"parameter '{spec.name}': expected one of {', '.join(spec.choices)}, got {value!r}"
        )
    if spec.min_value is not None and spec.max_value is not None and expected in (int, float):
        if not spec.min_value <= value <= spec.max_value:
            raise ParameterError(
                f"parameter '{spec.name}': expected a value in "
                f"[{spec.min_value}, {spec.max_value}], got {value!r}"
            )
        if spec.step and (value - spec.min_value) % spec.step:
            raise ParameterError(
                f"parameter '{spec.name}': expected a multiple of {spec.step}, got {value!r}"
            )
    return value


def check_values(specs: Iterable[ParamSpec], values: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Every spec's value from ``values`` (missing → its default), each checked once."""
    return {spec.name: check_value(spec, values.get(spec.name, spec.default)) for spec in specs}


def params_file_yaml(values: Mapping[str, ParamValue], node: str = "/**", comment: str = "") -> str:
    """A ROS 2 ``--params-file`` setting ``values`` (dotted names nested as in depth.yaml).

    ``/**`` matches the node under any name or namespace, so the file can be passed
    as one more ``--params-file`` after the main configuration.
    """
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *groups, leaf = name.split(".")
        level = nested
        for group in groups:
            level = level.setdefault(group, {})
        level[leaf] = value
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + yaml.safe_dump({node: {"ros__parameters": nested}}, sort_keys=False)
