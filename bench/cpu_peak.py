"""This CPU's arithmetic peak: fp32 FMA, bf16 dot products and int8 VNNI, measured.

Builds ``bench/cpu_peak.c`` (gcc, ``-march=native``) and runs each instruction kind on
registers only, independent accumulators, for 1 and ``--threads`` threads. The result is
the ceiling an engine's FLOP/s are compared with in docs/engines.md (the clock it
implies: fp32 ops/s ÷ (2 FMA pipes × 16 lanes × 2 FLOP) on a CPU with two 512-bit
FMA pipes per core).

    python bench/cpu_peak.py [--threads 2] [--out bench/results/cpu-peak-<date>.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _record import BenchRun, default_path, write_results
from tables import table_of

SOURCE = Path(__file__).with_name("cpu_peak.c")
KINDS = {"fp32": "FMA (vfmadd, zmm)", "bf16": "VDPBF16PS (zmm)", "int8": "VPDPBUSD (zmm)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=100_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        program = Path(directory) / "cpu_peak"
        flags = ["-O3", "-funroll-loops", "-march=native", "-pthread"]
        subprocess.run(["gcc", *flags, str(SOURCE), "-o", str(program)], check=True)
        for kind, instruction in KINDS.items():
            for threads in sorted({1, args.threads}):
                runs = [
                    float(
                        subprocess.run(
                            [str(program), kind, str(threads), str(args.iterations)],
                            capture_output=True,
                            text=True,
                            check=True,
                        ).stdout
                    )  # fmt: skip
                    for _ in range(args.repeats)
                ]
                rows.append(
                    {
                        "kind": kind,
                        "instruction": instruction,
                        "threads": threads,
                        "gops_per_s": round(max(runs) / 1e9, 1),
                    }  # fmt: skip
                )
                print(f"  {kind} x{threads}: {max(runs) / 1e9:.0f} G/s", file=sys.stderr)
    settings = {"threads": args.threads, "iterations": args.iterations, "repeats": args.repeats}
    document = run_record.record(rows, settings)
    print(table_of(document))
    write_results(args.out or default_path("cpu-peak"), document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
