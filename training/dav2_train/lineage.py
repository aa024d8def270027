"""A model's lineage, read from the records the steps wrote: init, teachers, data, steps.

A trained section's checkpoint carries its run record (``train.build``): its data
splits with their manifests' provenance (synthetic renders, a teacher's pseudo labels
of folders or bags, RGB-D recordings) and its ``init`` record (another section, a
checkpoint file, a DINOv2 encoder). ``trace`` walks that tree into the lines the
model card and the export provenance show; a checkpoint file ``dav2-train export``
wrote brings the lines it recorded. Missing fields (a model without a
training history, a file from elsewhere) give shorter lines, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dav2_ros.model.official_weights import is_non_commercial


@dataclass
class Lineage:
    initialisation: list[str] = field(default_factory=list)
    teachers: list[str] = field(default_factory=list)
    data_sources: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    licences: list[str] = field(default_factory=list)
    non_commercial: list[str] = field(default_factory=list)  # inputs under NC licences


def _add(lines: list[str], line: str) -> None:
    if line not in lines:
        lines.append(line)


def describe_model(record: dict | None) -> str:
    """One phrase naming where a model came from."""
    if not record:
        return "random initialisation"
    kind = record.get("kind")
    if kind == "section":
        return f"section `{record.get('section')}` of this run"
    digest = str(record.get("sha256") or "")[:12]
    where = record.get("name") or record.get("path")  # an hf: name, else the file
    if kind == "dinov2-encoder":
        return (
            f"DINOv2 encoder `{where}` (sha256 {digest}…; "
            f"{record.get('tensors_loaded')}/{record.get('tensors_expected')} encoder tensors "
            "loaded, head fresh)"
        )
    return (
        f"{record.get('format')} checkpoint `{where}` ({record.get('encoder')}, "
        f"{record.get('depth_type')}, sha256 {digest}…)"
    )


def _loss(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "?"


def _describe_source(spec: dict) -> str:
    topic = f", topic `{spec['topic']}`" if spec.get("topic") else ""
    every = f", 1 frame in {spec['every']}" if int(spec.get("every", 1) or 1) > 1 else ""
    return f"`{spec.get('path')}`{topic}{every}"


def _walk_split(entry: dict, lineage: Lineage) -> None:
    provenance = entry.get("provenance") or {}
    source = provenance.get("source")
    name = entry.get("split")
    if source == "synth":
        _add(
            lineage.data_sources,
            f"`{name}`: {provenance.get('count')} procedural synthetic frames (dav2_ros.sim, "
            f"style {provenance.get('style')}, seed {provenance.get('seed')}, "
            f"{provenance.get('width')}×{provenance.get('height')}) with exact depth",
        )
    elif source == "pseudo-label":
        sources = "; ".join(_describe_source(s) for s in provenance.get("sources", []))
        teacher = provenance.get("teacher") or {}
        _add(
            lineage.data_sources,
            f"`{name}`: {provenance.get('frames')} unlabelled frames from {sources}, "
            f"pseudo-labelled by {describe_model(teacher)} ({provenance.get('label')})",
        )
        _add(lineage.teachers, describe_model(teacher))
        _walk_model(teacher, lineage)
    elif source == "rgbd":
        _add(
            lineage.data_sources,
            f"`{name}`: {provenance.get('pairs')} RGB-D pairs from `{provenance.get('path')}` "
            f"(image `{provenance.get('image_topic')}`, depth `{provenance.get('depth_topic')}`,"
            f" sensor depth as metric ground truth)",
        )
    else:
        _add(
            lineage.data_sources, f"`{name}`: {entry.get('samples')} samples ({entry.get('kind')})"
        )


def _walk_model(record: dict | None, lineage: Lineage) -> None:
    if not record:
        return
    if record.get("licence"):
        _add(lineage.licences, f"{describe_model(record)}: {record['licence']}")
        if is_non_commercial(record["licence"]):
            _add(lineage.non_commercial, f"{describe_model(record)}: {record['licence']}")
    if record.get("kind") != "section":
        _add_exported(record.get("lineage") or {}, lineage)
        return
    run = record.get("provenance") or {}
    splits = ", ".join(f"`{d.get('split')}`" for d in run.get("data", [])) or "?"
    world = run.get("world_size", 1)
    _add(
        lineage.steps,
        f"`{run.get('section', record.get('section'))}` ({run.get('command')}): "
        f"{run.get('encoder')}, data {splits}, init: {describe_model(run.get('init'))}, "
        f"{run.get('steps')} steps × batch {run.get('batch_size')} × accumulate "
        f"{run.get('accumulate', 1)} × {world} process(es), loss {_loss(run.get('first_loss'))} "
        f"→ {_loss(run.get('last_loss'))}",
    )
    for entry in run.get("data", []):
        _walk_split(entry, lineage)
    _walk_model(run.get("init"), lineage)


def _add_exported(exported: dict, lineage: Lineage) -> None:
    """The lines a ``dav2-train export`` recorded in a checkpoint file it wrote."""
    for name, lines in (
        ("teachers", lineage.teachers),
        ("data_sources", lineage.data_sources),
        ("steps", lineage.steps),
        ("input_licences", lineage.licences),
        ("non_commercial_inputs", lineage.non_commercial),
    ):
        for line in exported.get(name) or []:
            _add(lines, line)


def trace(record: dict | None) -> Lineage:
    """The lineage of a model given its reference record (``models.ModelRef.record``)."""
    lineage = Lineage()
    if record and record.get("kind") != "section":
        _add(lineage.initialisation, f"exported from {describe_model(record)}")
    current = record
    while current and current.get("kind") == "section":  # the exported model's init chain
        run = current.get("provenance") or {}
        _add(
            lineage.initialisation,
            f"`{current.get('section')}` started from {describe_model(run.get('init'))}",
        )
        current = run.get("init")
    for line in ((current or {}).get("lineage") or {}).get("initialisation") or []:
        _add(lineage.initialisation, f"before that, {line}")  # a file dav2-train exported
    _walk_model(record, lineage)
    return lineage
