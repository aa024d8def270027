"""Render the docs' benchmark tables from ``bench/results/*.json`` (run by ``make docs``).

Every result file must be in the one layout of ``bench/_record.py``; each docs table
below names the result files it shows (glob patterns), and is written as
``<out>/<table>.md``: the table (``bench/tables.py``), then where every number came
from (file, command, machine, load, date, commit). The docs pages include these files,
so a new or re-run result reaches the docs with the next ``make docs``.

    python bench/render_docs.py [--out docs/_generated/bench]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _record import RESULTS_DIR, check_layout
from tables import TABLES

REPO = RESULTS_DIR.parent.parent
DEFAULT_OUT = REPO / "docs" / "_generated" / "bench"

# docs table -> result files it shows (patterns under bench/results, in this order)
DOCS_TABLES: dict[str, list[str]] = {
    "engines_matrix": ["amd-epyc-2c-2026-11-25-idle-mha.json"],
    "engines_matrix_contended": ["amd-epyc-2c-2026-11-25.json"],
    "engines_reference_eager": ["reference-eager-*.json"],
    "engines_cpu": ["cpu-engines-*.json"],
    "engines_cpu_peak": ["cpu-peak-*.json"],
    "engines_openvino_profile": ["openvino-profile-*.json"],
    "engines_openvino_contention": ["openvino-contention-*.json"],
    "engines_self_check": ["self_check.json"],
    "gpu_check": ["gpu-check-*.json"],
    "transport": ["transport-*.json"],
    "hot_path": ["node-hot-path-*.json"],
    "message_data": ["message-data-*.json"],
    "demo": ["demo-sparse-*.json"],
    "demo_overhead": ["demo-vits518-overhead.json"],
    "scale_recovery": ["scale_recovery.json", "scale_recovery_relative.json"],
    "temporal": ["temporal.json"],
    "soak": ["soak.json"],
    "da2k_e2e": ["da2k_e2e.json"],
    "decode": ["decode.json"],
    "input_qos": ["input-qos-*.json"],
    "confidence_cost": ["confidence_cost.json"],
    "train_memory": ["train_memory.json"],
    "pseudo_label_throughput": ["pseudo_label_throughput*.json"],
    "train_step_time": ["train_step_time.json"],
    "train_candidates": ["train_candidates*.json"],
}


def load_results(results_dir: Path) -> dict[str, dict]:
    """Every result file by name, each checked against the one layout."""
    found = {}
    for path in sorted(results_dir.glob("*.json")):
        document = json.loads(path.read_text())
        check_layout(document, str(path))
        if document["bench"] not in TABLES:
            raise ValueError(f"{path}: no table for bench {document['bench']!r} in tables.py")
        found[path.name] = document
    return found


def sources(selected: list[tuple[str, dict]]) -> str:
    """Where the numbers came from, one line per result file."""
    lines = ["", "Source:"]
    for name, document in selected:
        machine = document.get("machine", {})
        where = ", ".join(
            str(part)
            for part in (
                machine.get("cpu"),
                f"{machine['cores']} cores" if machine.get("cores") else None,
                machine.get("gpu"),
            )
            if part
        )
        load = document.get("load", {})
        loads = [v for v in (load.get("avg_1m_start"), load.get("avg_1m_end")) if v is not None]
        load_text = "–".join(f"{v:.1f}" for v in loads) if loads else "not recorded"
        commit = (document.get("git_commit") or "")[:9] or "not recorded"
        date = str(document.get("date") or "not recorded")[:10]
        lines.append(
            f"- `bench/results/{name}.json`: `{document['command']}`; {where or 'machine'}, "
            f"load {load_text}, {date}, commit {commit}"
        )
    return "\n".join(lines) + "\n"


def render(results_dir: Path, out: Path) -> list[Path]:
    results = load_results(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table, patterns in DOCS_TABLES.items():
        names = [
            name
            for pattern in patterns
            for name in sorted(p.name for p in results_dir.glob(pattern))
        ]
        selected = [(Path(name).stem, results[name]) for name in dict.fromkeys(names)]
        path = out / f"{table}.md"
        if not selected:
            path.write_text(f"No result in `bench/results/` matches {', '.join(patterns)} yet.\n")
        else:
            benches = {document["bench"] for _, document in selected}
            if len(benches) != 1:
                raise ValueError(f"docs table {table}: results of several benches {benches}")
            body = TABLES[benches.pop()](selected)
            path.write_text(body + sources(selected))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        written = render(args.results, args.out)
    except ValueError as exc:
        print(f"render_docs: {exc}", file=sys.stderr)
        return 1
    print(f"render_docs: {len(written)} tables in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
