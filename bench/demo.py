"""One run of ``dav2 demo`` (camera, depth node, monitor), recorded as a bench result.

Every argument after ``--`` goes to ``dav2 demo`` unchanged; the demo's own
``summary.json`` (frames, rates, latency, engine time, accuracy, the node's
/diagnostics) becomes the result's one row.

    .venv/bin/python bench/demo.py --out bench/results/demo-sparse-bundled.json -- \
        --sparse --duration 60 --rate 15                   # what `make demo` runs
    .venv/bin/python bench/demo.py --out /tmp/demo.json -- --duration 20 --rate 5

Exit status: the demo's (0: summary written).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _record import BenchRun, default_path, write_results
from tables import table_of


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    ours, demo_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/demo-<date>)")
    parser.add_argument("--keep", type=Path, help="keep the demo's output folder here")
    args = parser.parse_args(ours)
    if "--out" in demo_args:
        parser.error("the demo's output folder is --keep (before --), not --out after --")
    run_record = BenchRun(__file__, argv)
    with tempfile.TemporaryDirectory(prefix="dav2_demo_bench_") as temp:
        out_dir = args.keep or Path(temp)
        command = [sys.executable, "-m", "dav2_ros.cli", "demo", *demo_args, "--out", str(out_dir)]
        code = subprocess.run(command).returncode
        summary_path = out_dir / "summary.json"
        if code != 0 or not summary_path.is_file():
            print(f"bench/demo.py: dav2 demo ended with exit status {code}", file=sys.stderr)
            return code or 1
        summary = json.loads(summary_path.read_text())
    document = run_record.record([summary], {"demo_args": demo_args})
    write_results(args.out or default_path("demo"), document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
