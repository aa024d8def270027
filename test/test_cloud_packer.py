"""The fast cloud: rays cached per camera, records written straight into one reused buffer.

Open3D's back-projection (``backproject_organised`` + ``limit_range``) is the reference:
same NaN pattern, values within 1e-6 relative. The byte layout is checked against
depth_image_proc's ``point_cloud_xyz`` / ``point_cloud_xyzrgb`` record by record.
"""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from dav2_ros.geometry import (
    CameraIntrinsics,
    CloudPacker,
    IntrinsicsError,
    PinholeRays,
    RayCache,
    RayGrid,
    backproject_organised,
    limit_range,
)

# Not a round principal point: float32 rounding of (u - cx) is where a sloppy port differs.
K_ODD = CameraIntrinsics(fx=525.123456, fy=524.987654, cx=320.333333, cy=239.777777,
                         width=640, height=480)  # fmt: skip


def awkward_depth(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Depths 0.1-30 m with the values a node meets: NaN holes, exact zeros, far points."""
    rng = np.random.default_rng(seed)
    depth_m = rng.uniform(0.1, 30.0, size=(height, width)).astype(np.float32)
    depth_m[rng.random((height, width)) < 0.05] = np.nan
    depth_m[rng.random((height, width)) < 0.01] = 0.0
    depth_m[:3, :5] = np.nan  # a block, so every stride sees some
    return depth_m


def open3d_reference(
    depth_m: np.ndarray, k: CameraIntrinsics, stride: int, max_range_m: float
) -> np.ndarray:
    return backproject_organised(limit_range(depth_m, max_range_m), k, stride)


def records_of(cloud) -> np.ndarray:
    """(H, W, point_step / 4) float32 view of a packed cloud's bytes."""
    floats = np.frombuffer(cloud.data, dtype=np.float32)
    return floats.reshape(cloud.height, cloud.width, cloud.point_step // 4)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("max_range_m", [0.0, 12.5])
def test_fast_cloud_matches_open3d_backprojection(stride: int, max_range_m: float) -> None:
    depth_m = awkward_depth(480, 640, seed=stride)
    expected = open3d_reference(depth_m, K_ODD, stride, max_range_m)
    rays = PinholeRays(K_ODD, stride).rays()
    cloud = CloudPacker().pack(depth_m, rays, stride, max_range_m)
    xyz = records_of(cloud)[:, :, :3]
    assert xyz.shape == expected.shape
    assert np.array_equal(np.isnan(xyz), np.isnan(expected)), "NaN pattern differs"
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(xyz[finite], expected[finite], rtol=1e-6, atol=0)
    assert np.all(np.isnan(xyz).any(axis=-1) == np.isnan(xyz).all(axis=-1)), "partial NaN point"


def test_fast_cloud_matches_open3d_on_odd_sizes_and_colour() -> None:
    depth_m = awkward_depth(37, 53, seed=7)
    k = K_ODD.scaled_to(53, 37)
    rgb = np.random.default_rng(1).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    for stride in (1, 4):
        expected = open3d_reference(depth_m, k, stride, 0.0)
        cloud = CloudPacker().pack(depth_m, PinholeRays(k, stride).rays(), stride, rgb=rgb)
        xyz = records_of(cloud)[:, :, :3]
        np.testing.assert_allclose(xyz, expected, rtol=1e-6, atol=0, equal_nan=True)


def depth_image_proc_record(x: float, y: float, z: float, rgb: tuple[int, int, int] | None):
    """One point as depth_image_proc writes it: ``setPointCloud2FieldsByString`` "xyz"
    (+ "rgb") on a zeroed buffer, then its iterators: floats x, y, z at 0, 4, 8 (byte 12-15
    padding), and with colour the bytes b, g, r at 16, 17, 18 of the packed ``rgb`` float
    (native order; byte 19 untouched), the rest of the 32 bytes padding."""
    order = "<" if sys.byteorder == "little" else ">"
    record = bytearray(32 if rgb is not None else 16)
    struct.pack_into(f"{order}fff", record, 0, x, y, z)
    if rgb is not None:
        red, green, blue = (int(c) for c in rgb)
        packed = (red << 16) | (green << 8) | blue  # 0x00RRGGBB as uint32
        struct.pack_into(f"{order}I", record, 16, packed)
    return bytes(record)


@pytest.mark.parametrize("with_rgb", [False, True])
def test_fast_cloud_bytes_follow_depth_image_proc_layout(with_rgb: bool) -> None:
    depth_m = awkward_depth(6, 8, seed=3)
    k = CameraIntrinsics(fx=7.0, fy=6.5, cx=3.5, cy=2.25, width=8, height=6)
    rgb = np.random.default_rng(2).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    cloud = CloudPacker().pack(depth_m, PinholeRays(k).rays(), rgb=rgb if with_rgb else None)
    xyz = records_of(cloud)[:, :, :3]
    expected = b"".join(
        depth_image_proc_record(*map(float, xyz[v, u]), tuple(rgb[v, u]) if with_rgb else None)
        for v in range(6)
        for u in range(8)
    )
    assert bytes(cloud.data) == expected
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), *([("rgb", 16, 7, 1)] if with_rgb else [])
    ]  # fmt: skip
    assert (cloud.point_step, cloud.row_step) == ((32, 32 * 8) if with_rgb else (16, 16 * 8))
    assert (cloud.height, cloud.width, cloud.is_dense) == (6, 8, False)
    assert cloud.is_bigendian == (sys.byteorder == "big")


def test_packer_reuses_one_buffer_across_frames() -> None:
    k = K_ODD.scaled_to(64, 48)
    rays = PinholeRays(k).rays()
    packer = CloudPacker()
    first = packer.pack(awkward_depth(48, 64, seed=1), rays)
    buffer_before = first.data
    second_depth = awkward_depth(48, 64, seed=2)
    second = packer.pack(second_depth, rays)
    assert second.data is buffer_before, "a new buffer was allocated for a same-size frame"
    assert packer.buffer.allocations == 1
    np.testing.assert_array_equal(records_of(second)[:, :, 2], second_depth)  # overwritten
    coloured = packer.pack(second_depth, rays, rgb=np.zeros((48, 64, 3), np.uint8))
    assert coloured.point_step == 32 and len(coloured.data) == 48 * 64 * 32
    plain = packer.pack(second_depth, rays)
    assert not any(records_of(plain)[:, :, 3].view(np.uint32).ravel()), "padding not zero"


def test_packer_refuses_rays_of_another_grid_and_colours_of_another_size() -> None:
    depth_m = awkward_depth(48, 64)
    k = K_ODD.scaled_to(64, 48)
    with pytest.raises(ValueError, match=r"rays are for a 64x48 grid .* stride 2 is 32x24"):
        CloudPacker().pack(depth_m, PinholeRays(k).rays(), stride=2)
    with pytest.raises(ValueError, match="colours must be 48x64x3"):
        CloudPacker().pack(depth_m, PinholeRays(k).rays(), rgb=np.zeros((24, 32, 3), np.uint8))


def test_pinhole_rays_refuse_an_uncalibrated_camera() -> None:
    with pytest.raises(IntrinsicsError, match="not calibrated"):
        PinholeRays(CameraIntrinsics(0.0, 0.0, 0.0, 0.0, 640, 480))


def test_ray_cache_computes_once_per_camera_resolution_and_stride() -> None:
    cache = RayCache(capacity=2)
    k = K_ODD
    first = cache.rays(PinholeRays(k, 1))
    assert cache.rays(PinholeRays(CameraIntrinsics(**vars(k)), 1)) is first  # equal camera_info
    assert cache.computed == 1
    cache.rays(PinholeRays(k, 2))  # another stride
    cache.rays(PinholeRays(k.scaled_to(320, 240), 1))  # another resolution
    assert cache.computed == 3
    cache.rays(PinholeRays(k, 1))  # evicted (capacity 2): computed again
    assert cache.computed == 4


class TableRays:
    """A non-pinhole ray source (as undistorted rays will be): rays from a lookup table."""

    def __init__(self, x_over_z: np.ndarray, y_over_z: np.ndarray) -> None:
        self.table = RayGrid(x_over_z, y_over_z)
        self.grid_shape = x_over_z.shape

    def rays(self) -> RayGrid:
        return self.table


def test_any_ray_source_plugs_into_the_packer() -> None:
    rng = np.random.default_rng(9)
    x_over_z = rng.uniform(-1, 1, (12, 16)).astype(np.float32)
    y_over_z = rng.uniform(-1, 1, (12, 16)).astype(np.float32)
    depth_m = awkward_depth(12, 16)
    rays = RayCache().rays(TableRays(x_over_z, y_over_z))
    xyz = records_of(CloudPacker().pack(depth_m, rays))[:, :, :3]
    np.testing.assert_array_equal(xyz[:, :, 0], x_over_z * depth_m)
    np.testing.assert_array_equal(xyz[:, :, 1], y_over_z * depth_m)
