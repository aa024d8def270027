"""Orchestrates ``dav2 demo``: camera, depth node and monitor as separate processes.

All three run on a private, loopback-only DDS domain. The monitor decides when the
measured window is over (``--duration`` seconds after the first depth image) and
writes summary.json; the runner then adds the engine time, prints the table and
stops every child (also on Ctrl-C, on a child's failure and at interpreter exit).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dav2_ros
from dav2_ros.demo.engine_time import measure_stage_times
from dav2_ros.demo.metrics import overhead_pct
from dav2_ros.demo.processes import ChildProcesses, pick_free_domain_id, private_ros_env
from dav2_ros.demo.report import OVERHEAD_TARGET_PCT, summary_table
from dav2_ros.model.hub import is_hub_name

EXIT_CHILD_FAILED = 3
EXIT_INTERRUPTED = 130


@dataclass
class DemoOptions:
    duration_s: float = 60.0
    rate_hz: float = 10.0
    width: int = 640
    height: int = 480
    backend: str = ""  # "" = config/depth.yaml's engine.backend
    checkpoint: str = ""  # "" = the bundled default weights
    out_dir: Path = Path("demo_out")
    params_file: Path | None = None  # None = the package's config/depth.yaml
    input_size: int = 0  # 0 = config/checkpoint default
    domain_id: int | None = None  # None = pick a free one
    clip_frames: int = 30
    startup_timeout_s: float = 180.0
    panel_every: int = 25
    measure_engine: bool = True
    sparse: bool = False  # the node fits its depth to the camera's sparse_depth (LiDAR)


def default_params_file() -> Path:
    """config/depth.yaml of a source checkout, else of the ROS install's share directory."""
    source = Path(dav2_ros.__file__).resolve().parents[1] / "config" / "depth.yaml"
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("dav2_ros")) / "config" / "depth.yaml"
        if installed.is_file():
            return installed
    except (ImportError, LookupError):
        pass
    raise FileNotFoundError(
        f"config/depth.yaml not found (looked in {source.parent} and the ROS share "
        "directory); pass --params-file"
    )


def depth_node_command() -> list[str]:
    """The installed ``depth_node`` beside this Python, else the module itself."""
    script = Path(sys.executable).parent / "depth_node"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "dav2_ros.ros.node"]


def _ros_params(params: dict[str, object]) -> list[str]:
    args = ["--ros-args"]
    for name, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["-p", f"{name}:={text}"]
    return args


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (closed terminal): shut down as on Ctrl-C."""


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _Terminated(signal.Signals(signum).name)


def run_demo(options: DemoOptions) -> int:
    """Run the whole demo; returns the exit status (0 = summary written)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_terminated)  # so the ``finally`` below stops the nodes
    if not options.checkpoint:
        from dav2_ros.model.checkpoints import default_checkpoint

        default_checkpoint()  # fail now, not after start-up, if none is bundled
    out_dir = options.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)  # never report a previous run
    params_file = options.params_file or default_params_file()
    domain_id = options.domain_id if options.domain_id is not None else pick_free_domain_id()
    env = private_ros_env(domain_id)
    logs = out_dir / "logs"
    children = ChildProcesses()
    print(
        f"dav2 demo: {options.width}x{options.height} at {options.rate_hz:g} Hz for "
        f"{options.duration_s:g} s after the first depth image"
        f"{'; the node fits sparse_depth (scale.mode sparse)' if options.sparse else ''}; "
        f"ROS_DOMAIN_ID={domain_id} "
        f"(loopback only); logs in {logs}",
        flush=True,
    )
    # The demo camera publishes best effort, as drivers do (camera.CAMERA_QOS): the node's
    # default input QoS, so config/depth.yaml is used unchanged.
    node_params: dict[str, object] = {}
    if is_hub_name(options.checkpoint):
        node_params["model.checkpoint"] = options.checkpoint  # in the cache: the CLI fetched it
    elif options.checkpoint:
        node_params["model.checkpoint"] = str(Path(options.checkpoint).resolve())
    if options.backend:
        node_params["engine.backend"] = options.backend
    if options.input_size:
        node_params["engine.input_size"] = options.input_size
    if options.sparse:
        node_params["scale.mode"] = "sparse"  # sparse_depth: 32FC1 image, the default type
    node_argv = [*depth_node_command(), "--ros-args", "--params-file", str(params_file)]
    node_argv += _ros_params(node_params)[1:]
    camera_argv = [sys.executable, "-m", "dav2_ros.demo.camera"] + _ros_params(
        {
            "width": options.width,
            "height": options.height,
            "rate_hz": float(options.rate_hz),
            "clip_frames": options.clip_frames,
        }
    )
    monitor_argv = [sys.executable, "-m", "dav2_ros.demo.monitor"] + _ros_params(
        {
            "out_dir": str(out_dir),
            "duration_s": float(options.duration_s),
            "startup_timeout_s": float(options.startup_timeout_s),
            "panel_every": options.panel_every,
            "sparse": options.sparse,
        }
    )
    config = _config_record(options, params_file, domain_id)
    load_at_start = os.getloadavg()[0]
    try:
        children.start("depth_node", node_argv, env, logs / "depth_node.log")
        children.start("camera", camera_argv, env, logs / "camera.log")
        children.start("monitor", monitor_argv, env)  # live lines go to this terminal
        status = _wait_for_monitor(children)
        children.stop_all()  # before timing the engine: nothing else competes for the CPU
        return _report(out_dir, status, options, config, load_at_start, measure=status == 0)
    except KeyboardInterrupt:
        print("\ndav2 demo: interrupted; stopping the nodes", file=sys.stderr, flush=True)
        children.stop_all()  # the monitor gets SIGINT and still writes what it measured
        _report(out_dir, EXIT_INTERRUPTED, options, config, load_at_start, measure=False)
        return EXIT_INTERRUPTED
    finally:
        children.stop_all()


def _report(
    out_dir: Path,
    status: int,
    options: DemoOptions,
    config: dict,
    load_at_start: float,
    measure: bool,
) -> int:
    """Complete summary.json (engine time, config, machine) and print the table."""
    summary_path = out_dir / "summary.json"
    if not summary_path.is_file():
        print("dav2 demo: the monitor wrote no summary.json", file=sys.stderr)
        return status or EXIT_CHILD_FAILED
    summary = json.loads(summary_path.read_text())
    if measure and options.measure_engine:
        _add_engine_time(summary, options)
    summary["config"] = config
    # Times on a shared machine mean little without how busy it was.
    summary["machine"] = {
        "cpus": os.cpu_count(),
        "load_avg_1m_start": round(load_at_start, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if summary["frames_out"] == 0:
        print(f"dav2 demo: no depth image was measured; see {out_dir / 'logs'}", file=sys.stderr)
        return status or EXIT_CHILD_FAILED
    print("\n" + summary_table(summary), flush=True)
    print(
        f"\nwrote {out_dir}: summary.json, {len(summary['files']['panels'])} panel(s), "
        f"{summary['files']['ply'] or 'no point cloud'}",
        flush=True,
    )
    return status


def _wait_for_monitor(children: ChildProcesses) -> int:
    """Block until the monitor ends; a camera or node that dies first is an error."""
    while True:
        exited = children.exited()
        if "monitor" in exited:
            code = exited["monitor"]
            if code != 0:
                print(f"dav2 demo: monitor exited with {code}", file=sys.stderr)
                _explain(children, "depth_node")
            return code
        for name in ("depth_node", "camera"):
            if name in exited:
                print(
                    f"dav2 demo: {name} exited early with status {exited[name]}; last lines "
                    f"of its log:\n{children.log_tail(name)}",
                    file=sys.stderr,
                    flush=True,
                )
                children.stop("monitor")
                return EXIT_CHILD_FAILED
        time.sleep(0.2)


def _explain(children: ChildProcesses, name: str) -> None:
    tail = children.log_tail(name)
    if tail:
        print(f"last lines of the {name} log:\n{tail}", file=sys.stderr)


def _add_engine_time(summary: dict, options: DemoOptions) -> None:
    """Fill engine time (if /diagnostics had none) and the overhead, saying how."""
    if summary["engine_ms"]["p50"] is None:
        from dav2_ros.engines.base import EngineIdentity

        identity = EngineIdentity.from_fields(summary.get("node_diagnostics", {}))
        if identity is None:
            summary["engine_ms"]["source"] = "not measured: the node reported no engine"
            return
        from dav2_ros.demo.scene import render_clip

        print("dav2 demo: timing the node's engine for the overhead figure ...", flush=True)
        frames = [f.rgb for f in render_clip(options.width, options.height, 2)]
        stages = measure_stage_times(options.checkpoint or None, identity, frames)
        summary["engine_ms"] = {
            "p50": round(stages.infer_ms, 2),
            "source": "measured by the orchestrator after the nodes stopped: median "
            f"Engine.infer on demo frames, same engine ({identity.description})",
        }
        summary["node_stages_ms"] = {
            "preprocess": round(stages.preprocess_ms, 2),
            "infer": round(stages.infer_ms, 2),
            "postprocess": round(stages.postprocess_ms, 2),
            "note": "same measurement; latency - (sum of these) = transport, queueing, "
            "publishing and point cloud work",
        }
    latency = summary["latency_ms"]["p50"]
    engine = summary["engine_ms"]["p50"]
    overhead = overhead_pct(latency, engine)
    summary["overhead_ms"] = None if overhead is None else round(latency - engine, 2)
    summary["overhead_pct"] = None if overhead is None else round(overhead, 2)
    summary["overhead_within_target"] = None if overhead is None else overhead < OVERHEAD_TARGET_PCT


def _config_record(options: DemoOptions, params_file: Path, domain_id: int) -> dict:
    return {
        "image_size": [options.width, options.height],
        "rate_hz": options.rate_hz,
        "duration_s": options.duration_s,
        "backend": options.backend or "from params file",
        "checkpoint": options.checkpoint or "bundled default",
        "scale_mode": "sparse" if options.sparse else "from params file",
        "params_file": str(params_file),
        "ros_domain_id": domain_id,
    }
