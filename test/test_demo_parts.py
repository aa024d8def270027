"""The demo's pure parts: metrics, pairing, playback order, LiDAR pattern, panels, PLY
files, processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import open3d as o3d
import psutil
import pytest

from dav2_ros.demo.lidar import BeamPattern, beam_pixels, sparse_depth_image
from dav2_ros.demo.metrics import DepthErrors, depth_errors, overhead_pct, percentile
from dav2_ros.demo.pairing import StampJoiner
from dav2_ros.demo.panels import TILE_W, make_panel
from dav2_ros.demo.processes import (
    ChildProcesses,
    domain_in_use,
    pick_free_domain_id,
    private_ros_env,
)
from dav2_ros.demo.report import (
    CameraWindow,
    RunStats,
    engine_ms_from_diagnostics,
    sparse_summary,
    summary_table,
)
from dav2_ros.demo.scene import ping_pong_index
from dav2_ros.geometry import write_ply


def test_depth_errors_match_hand_computed_values():
    gt = np.array([[1.0, 2.0], [4.0, np.nan]], np.float32)
    pred = np.array([[1.1, 3.0], [4.0, 5.0]], np.float32)
    errors = depth_errors(pred, gt)
    # |1.1-1|/1 = 0.1, |3-2|/2 = 0.5, 0 → mean 0.2; ratios 1.1, 1.5, 1.0 → 2 of 3 < 1.25
    assert errors.valid_px == 3
    assert errors.abs_rel == pytest.approx(0.2, abs=1e-6)
    assert errors.delta1 == pytest.approx(2 / 3)


def test_depth_errors_ignore_nan_and_nonpositive_and_refuse_size_mismatch():
    assert depth_errors(np.full((2, 2), np.nan, np.float32), np.ones((2, 2), np.float32)) is None
    assert depth_errors(np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)) is None
    with pytest.raises(ValueError, match="same resolution"):
        depth_errors(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32))


def test_latency_percentiles_and_overhead():
    assert percentile([], 50) is None
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == pytest.approx(25.0)
    assert overhead_pct(110.0, 100.0) == pytest.approx(10.0)
    assert overhead_pct(110.0, None) is None


def test_run_stats_summary_and_table():
    stats = RunStats(frames_in=20)
    for i in range(10):
        stats.add_output(now_s=i * 0.5, latency_ms=100.0 + i)
    stats.add_engine_ms(90.0, "test")
    summary = stats.summary(window_s=5.0)
    assert summary["fps_out"] == pytest.approx(2.0)  # 9 intervals over 4.5 s
    assert summary["latency_ms"]["p50"] == pytest.approx(104.5)
    assert summary["overhead_pct"] == pytest.approx(100 * 14.5 / 90, abs=0.01)
    assert summary["overhead_within_target"] is False
    table = summary_table(summary)
    assert "104.5" in table and "n/a" in table  # no AbsRel was measured


def test_camera_window_counts_frames_known_from_either_stream_once():
    window = CameraWindow()
    for stamp in (10, 20, 30):  # ground truth before the window opens
        window.add(stamp)
    window.open(first_stamp_ns=20)  # depth for frame 20 is the first measured output
    assert window.frames == 2  # frames 20 and 30: both in flight when the window opened
    window.add(40)  # depth of frame 40 first (its ground truth is still queued) ...
    window.add(40)  # ... then its ground truth: the same frame, counted once
    window.add(15)  # late, older than the window: not counted
    assert window.frames == 3


def test_engine_time_is_read_from_diagnostics_keys_that_name_inference():
    values = {"latency_p50_ms": "300", "infer_ms_p95": "90", "infer_ms_p50": "80.5", "fps": "3"}
    assert engine_ms_from_diagnostics(values) == ("infer_ms_p50", 80.5)
    assert engine_ms_from_diagnostics({"latency_p50_ms": "300", "engine": "onnxruntime"}) is None


def test_engine_time_rebuilds_the_engine_the_node_reported_field_by_field():
    from dav2_ros.demo.engine_time import measure_stage_times
    from dav2_ros.engines import EngineIdentity
    from dav2_ros.model.checkpoints import default_checkpoint, load_model
    from dav2_ros.model.transforms import model_input_size

    # As the node's /diagnostics report it for the bundled model at 160x120.
    bundled_input = load_model(default_checkpoint()).meta.input_size
    height, width = model_input_size(120, 160, bundled_input)
    reported = {
        "engine": f"torch cpu fp32 {height}x{width} (threads=1, channels_last=False)",
        "engine_backend": "torch",
        "engine_device": "cpu",
        "engine_precision": "fp32",
        "engine_input_height": str(height),
        "engine_input_width": str(width),
        "engine_options": '{"channels_last": false, "threads": 1}',
    }
    identity = EngineIdentity.from_fields(reported)
    assert identity.options == {"channels_last": False, "threads": 1}
    frames = [np.random.default_rng(i).integers(0, 255, (120, 160, 3), np.uint8) for i in (0, 1)]
    stages = measure_stage_times(None, identity, frames, repeats=2)
    assert stages.infer_ms > 0 and stages.preprocess_ms > 0 and stages.postprocess_ms > 0


def test_stamp_joiner_joins_in_any_order_and_counts_what_evicted_stamps_held():
    joiner = StampJoiner(("gt", "depth", "relative"), capacity=2)
    assert joiner.add("depth", 1, "d1") is None and joiner.add("gt", 1, "g1") is None
    assert joiner.add("relative", 1, "r1") == {"gt": "g1", "depth": "d1", "relative": "r1"}
    for stamp in (3, 4, 5):
        joiner.add("gt", stamp, f"g{stamp}")
        joiner.add("relative", stamp, f"r{stamp}")
    assert joiner.evicted == 1 and joiner.evicted_with[frozenset(("gt", "relative"))] == 1
    assert joiner.evicted_having("gt") == 1 and joiner.evicted_having("depth") == 0
    assert joiner.pending_with(frozenset(("gt", "relative")), before_ns=5) == 1  # stamp 4
    assert joiner.add("depth", 3, "d3") is None  # stamp 3 was evicted: a new, lone entry
    assert joiner.add("depth", 5, "d5") == {"gt": "g5", "relative": "r5", "depth": "d5"}
    with pytest.raises(ValueError, match="unknown part"):
        joiner.add("points", 6, None)


def test_beam_pattern_lands_on_its_elevations_one_return_per_pixel():
    pattern = BeamPattern(beams=16, vfov_deg=30.0, azimuth_step_deg=0.4)
    fx = 0.5 * 640 / np.tan(np.radians(35.0))
    K = np.array([[fx, 0, 320], [0, fx, 240], [0, 0, 1.0]])
    pixels = beam_pixels(pattern, K, 480, 640)
    assert len(set(zip(pixels.rows, pixels.cols, strict=True))) == pixels.rows.size
    assert np.bincount(pixels.beam).tolist() == [175] * 16  # ±35° of azimuth at 0.4°
    x, y = (pixels.cols + 0.5 - 320) / fx, (pixels.rows + 0.5 - 240) / fx
    elevation = np.degrees(np.arctan2(-y, np.hypot(x, 1.0)))
    expected = np.linspace(-15.0, 15.0, 16)[pixels.beam]
    assert np.abs(elevation - expected).max() < 0.12  # within a pixel (0.11°) of its beam
    np.testing.assert_allclose(pixels.z_per_range, 1 / np.sqrt(x * x + y * y + 1), atol=2e-3)


def test_sparse_depth_has_noise_outliers_and_nan_off_the_pattern():
    pattern = BeamPattern(range_noise_m=0.05, outlier_ratio=0.05)
    K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])
    pixels = beam_pixels(pattern, K, 120, 160)
    gt = np.full((120, 160), 4.0, np.float32)
    gt[:, :20] = np.nan  # sky: no return
    image = sparse_depth_image(gt, pixels, pattern, np.random.default_rng(0))
    on_pattern = np.zeros_like(gt, dtype=bool)
    on_pattern[pixels.rows, pixels.cols] = True
    assert not np.isfinite(image[~on_pattern]).any() and not np.isfinite(image[:, :20]).any()
    rows, cols = np.nonzero(np.isfinite(image))
    assert rows.size == (on_pattern[:, 20:]).sum()
    range_error_m = (image[rows, cols] - 4.0) / pixels.z_per_range[
        np.searchsorted(pixels.rows * 160 + pixels.cols, rows * 160 + cols)
    ]
    outliers = np.abs(range_error_m) > 0.25
    assert 0.02 < outliers.mean() < 0.09
    assert np.std(range_error_m[~outliers]) == pytest.approx(0.05, rel=0.15)
    again = sparse_depth_image(gt, pixels, pattern, np.random.default_rng(0))
    np.testing.assert_array_equal(image, again)  # deterministic per generator state
    with pytest.raises(ValueError, match="were made for 160x120"):
        sparse_depth_image(gt[:-1], pixels, pattern, np.random.default_rng(0))


def test_sparse_summary_and_table_show_both_figures_on_the_same_frames():
    stats = RunStats(frames_in=3)
    for i in range(3):
        stats.add_output(now_s=i * 0.1, latency_ms=50.0)
        stats.add_errors(DepthErrors(0.1, 0.9, 100), DepthErrors(0.4 + i / 10, 0.3, 100))
    scale = {"fits_accepted": "3", "fits_rejected": "1", "model_depth_type": "metric"}
    summary = stats.summary(window_s=0.3)
    summary["sparse"] = sparse_summary(stats, "metric", scale, withheld=1)
    summary["node_diagnostics"] = {"work_ms_p50": "15.00", "frame_ms_p50": "40.00"}
    assert summary["sparse"]["model_alone"]["abs_rel"] == pytest.approx(0.5)
    assert summary["sparse"]["with_sparse_fit"] == {"abs_rel": 0.1, "delta1": 0.9}
    table = summary_table(summary)
    assert "| metric AbsRel: model alone | with sparse fit (3 frames) | 0.500 | 0.100 |" in table
    assert "| 0.300 | 0.900 |" in table and "1 (fits accepted 3, rejected 1)" in table
    assert "40.0 ms, own work 15.0 → 25.0" in table  # engine + own work bound the rate
    relative = sparse_summary(stats, "relative", scale, withheld=0)["model_alone"]
    assert relative["abs_rel"] is None and "relative" in relative["note"]


def test_ping_pong_playback_never_repeats_an_end_frame():
    order = [ping_pong_index(t, 4) for t in range(9)]
    assert order == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert ping_pong_index(7, 1) == 0


def test_ply_holds_the_finite_points_and_their_colours(tmp_path):
    xyz = np.random.default_rng(1).normal(size=(3, 4, 3)).astype(np.float32)
    xyz[1, 2] = np.nan
    rgb = np.random.default_rng(2).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    assert write_ply(tmp_path / "c.ply", xyz, rgb) == 11
    cloud = o3d.io.read_point_cloud(str(tmp_path / "c.ply"))
    keep = np.isfinite(xyz).all(axis=2).reshape(-1)
    np.testing.assert_allclose(np.asarray(cloud.points), xyz.reshape(-1, 3)[keep], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(cloud.colors) * 255, rgb.reshape(-1, 3)[keep], atol=0.5)


def test_panel_has_four_tiles_and_marks_invalid_pixels():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    gt = rng.uniform(1, 5, (60, 80)).astype(np.float32)
    gt[:10] = np.nan
    panel = make_panel(rgb, gt * 1.1, gt, caption="frame 1")
    assert panel.dtype == np.uint8 and panel.shape[1] == 4 * TILE_W
    with pytest.raises(ValueError, match="one size"):
        make_panel(rgb, gt[:-1], gt)


def test_sparse_panel_adds_the_model_alone_and_draws_the_lidar_returns():
    rgb = np.zeros((60, 80, 3), np.uint8)
    gt = np.full((60, 80), 3.0, np.float32)
    sparse = np.full_like(gt, np.nan)
    sparse[30, ::4] = 3.0
    plain = make_panel(rgb, gt, gt, model_alone_m=gt * 2)
    drawn = make_panel(rgb, gt, gt, model_alone_m=gt * 2, sparse_m=sparse)
    assert plain.shape[1] == drawn.shape[1] == 5 * TILE_W
    captioned = make_panel(rgb, gt, gt, "a caption on its own strip", model_alone_m=gt)
    assert captioned.shape[0] > plain.shape[0]
    camera_tile = (slice(26, -46), slice(0, TILE_W))  # below the title, above the bar
    assert plain[camera_tile].max() == 0 and drawn[camera_tile].max() > 0  # dots on black


def test_domain_in_use_sees_a_bound_discovery_port():
    domain = pick_free_domain_id()
    assert not domain_in_use(domain)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("", 7400 + 250 * domain))
        assert domain_in_use(domain)


def test_private_env_is_loopback_only():
    env = private_ros_env(42)
    assert env["ROS_DOMAIN_ID"] == "42"
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_stop_escalates_and_clears_the_whole_process_group(tmp_path):
    # A child that ignores SIGINT and SIGTERM and has a grandchild in its group.
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    children = ChildProcesses()
    log = tmp_path / "stubborn.log"
    child = children.start("stubborn", [sys.executable, "-c", script], {}, log)
    deadline = time.monotonic() + 20
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    group = [p for p in psutil.process_iter() if _pgid(p.pid) == child.pid]
    assert len(group) == 2
    start = time.monotonic()
    code = children.stop("stubborn", grace_s=0.5)
    assert code == -signal.SIGKILL
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    assert not [p for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def test_sigint_reaches_a_cooperative_child_first(tmp_path):
    script = "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('bye')\n"
    children = ChildProcesses()
    child = children.start("polite", [sys.executable, "-c", script], {}, tmp_path / "p.log")
    time.sleep(1.0)
    assert children.stop("polite") == 0
    assert (tmp_path / "p.log").read_text().strip() == "bye"
    assert isinstance(child, subprocess.Popen)


def test_demo_launch_sets_only_parameters_the_demo_nodes_declare():
    import ast
    from pathlib import Path

    from dav2_ros.demo import camera, monitor

    declared = {"dav2_demo_camera": camera.PARAMETERS, "dav2_demo_monitor": monitor.PARAMETERS}
    source = Path(__file__).resolve().parents[1] / "launch" / "demo.launch.py"
    seen = set()
    for call in ast.walk(ast.parse(source.read_text())):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node"):
            continue
        keywords = {kw.arg: kw.value for kw in call.keywords}
        executable = ast.literal_eval(keywords["executable"])
        if executable not in declared:
            continue
        seen.add(executable)
        for item in keywords["parameters"].elts:
            for key in item.keys:
                assert ast.literal_eval(key) in declared[executable], (executable, key.value)
    assert seen == set(declared)


def test_children_die_when_the_orchestrator_is_killed_outright(tmp_path):
    parent_script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from dav2_ros.demo.processes import ChildProcesses\n"
        "c = ChildProcesses()\n"
        "child = c.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(60)'], {},"
        f" Path({str(tmp_path / 'child.log')!r}))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE)
    try:
        child_pid = int(parent.stdout.readline())
        child = psutil.Process(child_pid)
        parent.kill()  # SIGKILL: no atexit, no finally
        parent.wait(timeout=10)
        child.wait(timeout=10)  # raises TimeoutExpired if the child outlives its parent
    finally:
        if parent.poll() is None:
            parent.kill()


def test_demo_command_refuses_bad_options_with_a_clear_message(capsys, tmp_path):
    from dav2_ros.cli import main

    assert main(["demo", "--checkpoint", str(tmp_path / "nope.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["demo", "--input-size", "100", "--out", str(tmp_path)]) == 2
    assert "multiple of 14" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--size", "640by480"])
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
