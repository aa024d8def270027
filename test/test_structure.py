"""The package's shape: the node file is the only owner of ROS handles in ``dav2_ros/ros``,
imports run one way, and there is no import cycle (read from the source with ``ast``, then
confirmed by importing every module in a fresh interpreter)."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dav2_ros"
NODE_FILE = PACKAGE / "ros" / "node.py"
# Calls that create a ROS entity (or a node, which owns entities).
ENTITY_CALLS = {
    "create_publisher",
    "create_subscription",
    "create_timer",
    "create_wall_timer",
    "create_client",
    "create_service",
    "create_guard_condition",
    "create_rate",
    "create_node",
    "declare_publisher",
    "TransformListener",
    "TransformBroadcaster",
    "StaticTransformBroadcaster",
    "ActionClient",
    "ActionServer",
}
# What each part may import (direct and lazy imports): the layering of architecture.md,
# with three ROS-free helper modules at the top level.
HELPERS = {"paramspec", "reporting", "colorize"}
ALLOWED = {
    "model": set(),
    "geometry": set(),
    "sim": {"geometry"},
    "scale": {"geometry", "paramspec", "reporting"},
    "engines": {"model", "reporting", "sim"},  # sim: int8's generated calibration images
    "temporal": {"model", "scale"},
    "ros": {
        "colorize",
        "engines",
        "geometry",
        "model",
        "paramspec",
        "reporting",
        "scale",
        "temporal",
    },
    **{helper: set() for helper in HELPERS},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    """``dav2_ros.ros.node`` → ``ros``; ``dav2_ros.cli`` → ``cli``."""
    return module.split(".")[1] if "." in module else "package"


def entity_calls(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ENTITY_CALLS:
                found.append((node.lineno, name))
        if isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if "Node" in bases:
                found.append((node.lineno, f"class {node.name}(Node)"))
    return found


def test_only_the_node_file_creates_ros_entities_in_ros_and_the_plain_logic() -> None:
    plain = [
        p
        for p in MODULES.values()
        if part_of(module_name(p)) in {"ros", *ALLOWED} and p != NODE_FILE
    ]
    assert len(plain) > 30 and PACKAGE / "ros" / "conversions.py" in plain
    offenders = {str(p.relative_to(PACKAGE)): entity_calls(p) for p in plain}
    assert {p: calls for p, calls in offenders.items() if calls} == {}
    # The scan sees what the node file creates (it would see the same anywhere else).
    created = {name for _, name in entity_calls(NODE_FILE)}
    assert {"create_publisher", "create_subscription", "create_timer"} <= created
    assert "TransformListener" in created and "class DepthNode(Node)" in created


def imports_of(path: Path, lazy: bool, typing: bool = False, source: str | None = None) -> set[str]:
    """``dav2_ros`` modules ``path`` imports: at import time (top level, class bodies,
    ``try``/``if`` blocks), also inside functions (``lazy``), also under ``if TYPE_CHECKING``
    (``typing``: names for annotations, which never run). A submodule import also imports
    its packages, except those it is inside. ``source`` stands in for the file's text."""
    name = module_name(path)
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            type_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            if type_only and not typing:
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not lazy:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.update(_with_packages(alias.name))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dav2_ros"):
                found.update(_with_packages(node.module))
                for alias in node.names:  # "from package import module"
                    found.update(_with_packages(f"{node.module}.{alias.name}"))
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []))

    visit(ast.parse(path.read_text() if source is None else source).body)
    return {m for m in found if not (name + ".").startswith(m + ".")}


def _with_packages(dotted: str) -> set[str]:
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & set(MODULES)


def _graph(lazy: bool, typing: bool = False) -> dict[str, set[str]]:
    return {name: imports_of(path, lazy, typing) for name, path in MODULES.items()}


def _planted(graph: dict[str, set[str]], module: str, code: str, **kinds: bool) -> dict:
    """``graph`` with ``code`` appended to ``module``'s source, read the same way."""
    path = MODULES[module]
    return {**graph, module: imports_of(path, source=path.read_text() + code, **kinds)}


def _has_cycle(graph: dict[str, set[str]]) -> bool:
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return True
    return False


# The circle engines.base <-> engines.self_check once hid behind an import inside
# create_engine; here it is planted back, inside a function and for type checkers only.
BACK_INSIDE_A_FUNCTION = (
    "\n\ndef planted():\n    from dav2_ros.engines.self_check import build_checked\n"
)
BACK_FOR_TYPE_CHECKERS = (
    "\n\nif TYPE_CHECKING:\n    from dav2_ros.engines.self_check import build_checked\n"
)


def test_import_graph_has_no_cycle_and_a_planted_one_is_found() -> None:
    """Every import that runs counts, at import time or inside a function."""
    graph = _graph(lazy=True)
    assert graph["dav2_ros.ros.node"] >= {"dav2_ros.ros.conversions", "dav2_ros.scale.source"}
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError names it
    assert set(order) == set(MODULES)
    # The check is live: the cycle this package had (parameters <-> scale_source) is found,
    planted = dict(graph)
    planted["dav2_ros.scale.settings"] = graph["dav2_ros.scale.settings"] | {
        "dav2_ros.ros.parameters"
    }
    assert _has_cycle(planted)
    # and so is one behind an import inside a function; one that only type checkers read
    # never runs, so it closes no circle of running imports.
    base = "dav2_ros.engines.base"
    assert _has_cycle(_planted(graph, base, BACK_INSIDE_A_FUNCTION, lazy=True))
    assert not _has_cycle(_planted(graph, base, BACK_FOR_TYPE_CHECKERS, lazy=True))


def test_imports_for_type_checkers_close_no_circle_either() -> None:
    """An annotation's import never runs, yet it says one module knows another: those
    point one way too (a scene ray casts any pinhole camera of ``geometry``; the sim
    camera, which places itself in a scene, knows the scene, not the other way round)."""
    graph = _graph(lazy=True, typing=True)
    assert "dav2_ros.engines" in graph["dav2_ros.ros.outputs"]  # its Prediction annotation
    assert "dav2_ros.engines" not in _graph(lazy=True)["dav2_ros.ros.outputs"]
    assert not _has_cycle(graph)
    scene_knows_camera = "\n\nif TYPE_CHECKING:\n    from dav2_ros.sim.camera import Intrinsics\n"
    assert _has_cycle(
        _planted(graph, "dav2_ros.sim.scene", scene_knows_camera, lazy=True, typing=True)
    )
    assert _has_cycle(
        _planted(graph, "dav2_ros.engines.base", BACK_FOR_TYPE_CHECKERS, lazy=True, typing=True)
    )


def test_imports_run_one_way() -> None:
    wrong = []
    for name, path in MODULES.items():
        part = part_of(name)
        if part not in ALLOWED:
            continue  # demo, commands, cli: the top, they may use any part
        for imported in imports_of(path, lazy=True):
            other = part_of(imported)
            if other != part and other not in ALLOWED[part]:
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_every_module_imports_in_a_fresh_interpreter_dependents_first() -> None:
    """Dependents before what they use: each module is the first to pull in its imports,
    as it would be in a program that imports only it."""
    graph = _graph(lazy=False)
    order = list(reversed(list(graphlib.TopologicalSorter(graph).static_order())))
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-c", script, *order], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize(
    "module", ["dav2_ros.ros.conversions", "dav2_ros.ros.encodings", "dav2_ros.ros.parameters"]
)
def test_plain_logic_imports_without_rclpy_or_message_packages(module: str) -> None:
    """The training package decodes rosbags messages with the node's own conversions (and
    their table of encodings) on machines without ROS; the parameter table is data. (The
    scale logic: see test_scale_source, which runs a whole recovery without rclpy.)"""
    script = (
        f"import sys, {module}\n"
        "loaded = [m for m in ('rclpy', 'sensor_msgs', 'std_msgs') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
