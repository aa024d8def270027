"""The ``scale.*`` parameters: declared as data without ROS, part of the node's one fixed
table, each value checked once into ``NodeSettings.scale``."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from dav2_ros.paramspec import ParameterError
from dav2_ros.ros.parameters import CORE_PARAMETERS, PARAMETERS, settings_from_values
from dav2_ros.scale.settings import SCALE_PARAMETERS, ScaleSettings, fixed_params_yaml


def test_the_node_table_is_the_core_specs_then_the_scale_specs_once_each():
    assert (*CORE_PARAMETERS, *SCALE_PARAMETERS) == PARAMETERS
    names = [spec.name for spec in PARAMETERS]
    assert len(names) == len(set(names))
    for name in ("scale.mode", "scale.a", "scale.b", "scale.timeout_s", "scale.min_inliers"):
        assert name in names


def test_node_settings_carry_the_checked_scale_settings():
    settings = settings_from_values({"scale.mode": "sparse", "scale.timeout_s": 3})
    assert settings.scale.mode == "sparse" and settings.scale.timeout_s == 3.0
    assert settings.scale.fit.min_inliers == 15  # the spec's default


def test_fixed_mode_needs_a_positive_a():
    with pytest.raises(ParameterError, match="parameter 'scale.a'.*dav2 calibrate"):
        settings_from_values({"scale.mode": "fixed", "scale.a": 0.0})
    settings = ScaleSettings.from_values({"scale.mode": "fixed", "scale.a": 0.5, "scale.b": 1})
    assert (settings.a, settings.b) == (0.5, 1.0)


def test_bad_mode_and_range_name_the_parameter():
    with pytest.raises(ParameterError, match="'scale.mode'"):
        ScaleSettings.from_values({"scale.mode": "lidar"})
    with pytest.raises(ParameterError, match="'scale.timeout_s'"):
        settings_from_values({"scale.timeout_s": 0.0})


def test_extrinsic_parameters_build_the_transform():
    values = {"scale.extrinsic.x": 1.0, "scale.extrinsic.yaw": np.pi / 2}
    T = ScaleSettings.from_values(values).T_camera_from_cloud
    np.testing.assert_allclose(T[:3, 3], [1, 0, 0])
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_fixed_params_file_sets_the_scale_for_any_node_and_passes_the_checks():
    text = fixed_params_yaml(0.2, 0.05, comment="from a test\nsecond line")
    assert text.startswith("# from a test\n# second line\n")
    values = yaml.safe_load(text)["/**"]["ros__parameters"]["scale"]
    assert values == {"mode": "fixed", "a": 0.2, "b": 0.05}
    checked = ScaleSettings.from_values({f"scale.{k}": v for k, v in values.items()})
    assert (checked.mode, checked.a, checked.b) == ("fixed", 0.2, 0.05)
