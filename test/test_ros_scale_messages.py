"""sparse_depth message decoding and scale.* parameter checks (real message types, no DDS)."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image, PointCloud2, PointField

from dav2_ros.ros.parameters import ParameterError, parameter_names
from dav2_ros.ros.scale_source import (
    depth_image_from_msg,
    points_from_cloud_msg,
    scale_settings_from_values,
)


def test_16uc1_big_endian_with_row_padding_decodes():
    depth_mm = np.array([[0, 1500, 65535], [1, 2, 3]], dtype=">u2")
    rows = np.concatenate([depth_mm.view(np.uint8), np.full((2, 4), 9, np.uint8)], axis=1)
    msg = Image(height=2, width=3, encoding="16UC1", is_bigendian=1, step=10)
    msg.data = rows.tobytes()
    np.testing.assert_array_equal(depth_image_from_msg(msg), depth_mm.astype(np.uint16))


def test_32fc1_decodes_and_short_data_is_refused():
    depth_m = np.array([[1.5, np.nan], [0.0, 7.25]], np.float32)
    msg = Image(height=2, width=2, encoding="32FC1", step=8)
    msg.data = depth_m.tobytes()
    np.testing.assert_array_equal(depth_image_from_msg(msg), depth_m)
    msg.data = depth_m.tobytes()[:12]
    with pytest.raises(ValueError, match="too small"):
        depth_image_from_msg(msg)


def test_depth_image_encoding_is_checked():
    with pytest.raises(ValueError, match="publish 32FC1"):
        depth_image_from_msg(Image(height=1, width=1, encoding="mono16", step=2, data=[0, 0]))


def _field(name: str, offset: int, datatype: int) -> PointField:
    return PointField(name=name, offset=offset, datatype=datatype, count=1)


def test_cloud_with_float64_fields_padding_and_organised_rows_decodes():
    # 2×2 organised cloud; fields in z, x, y order at odd offsets; 8 pad bytes per row.
    xyz = np.arange(12, dtype=np.float64).reshape(4, 3)
    point = np.zeros(4, dtype=[("pad", "u1", 4), ("z", "<f8"), ("x", "<f8"), ("y", "<f8")])
    point["x"], point["y"], point["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rows = point.view(np.uint8).reshape(2, -1)
    rows = np.concatenate([rows, np.zeros((2, 8), np.uint8)], axis=1)
    fields = [_field("z", 4, PointField.FLOAT64), _field("x", 12, PointField.FLOAT64),
              _field("y", 20, PointField.FLOAT64)]  # fmt: skip
    msg = PointCloud2(height=2, width=2, fields=fields, point_step=28, row_step=64)
    msg.data = rows.tobytes()
    np.testing.assert_array_equal(points_from_cloud_msg(msg), xyz)


def test_cloud_without_xyz_is_refused():
    msg = PointCloud2(height=1, width=1, fields=[_field("x", 0, PointField.FLOAT32)])
    with pytest.raises(ValueError, match="needs FLOAT32/FLOAT64 fields x, y, z"):
        points_from_cloud_msg(msg)


def test_scale_parameters_are_registered_with_the_node_table():
    names = parameter_names()
    for name in ("scale.mode", "scale.a", "scale.b", "scale.timeout_s", "scale.min_inliers"):
        assert name in names


def test_fixed_mode_needs_a_positive_a():
    with pytest.raises(ParameterError, match="parameter 'scale.a'.*dav2 calibrate"):
        scale_settings_from_values({"scale.mode": "fixed", "scale.a": 0.0})
    settings = scale_settings_from_values({"scale.mode": "fixed", "scale.a": 0.5, "scale.b": 1})
    assert (settings.a, settings.b) == (0.5, 1.0)


def test_bad_mode_and_range_name_the_parameter():
    with pytest.raises(ParameterError, match="'scale.mode'"):
        scale_settings_from_values({"scale.mode": "lidar"})
    with pytest.raises(ParameterError, match="'scale.timeout_s'"):
        scale_settings_from_values({"scale.timeout_s": 0.0})


def test_extrinsic_parameters_build_the_transform():
    values = {"scale.extrinsic.x": 1.0, "scale.extrinsic.yaw": np.pi / 2}
    T = scale_settings_from_values(values).T_camera_from_cloud
    np.testing.assert_allclose(T[:3, 3], [1, 0, 0])
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
