#!/usr/bin/env bash
# The prepared check for the first machine with a CUDA GPU (desktop card or Jetson).
#
#   bash bench/gpu_check.sh [OUT.json]
#
# In at most GPU_CHECK_BUDGET_S seconds (default 480 = 8 minutes) it runs, in this order:
#   1. the GPU tests (pytest -m gpu);
#   2. `dav2 bench` torch fp16, then bf16, at input size 518 (random ViT-S weights);
#   3. the node's hot path with a CUDA engine (bench/node_hot_path.py --engine torch: the
#      real node in the process, random ViT-S weights, stride 1);
#   4. `dav2 bench` torch fp16 with torch.compile;
#   5. `dav2 bench` tensorrt fp16, only where torch_tensorrt is importable;
# and writes ONE JSON (default bench/results/gpu-check-<card>-<date>.json) with the
# card's name, versions, every step's status and time, and every step's own results.
# A step that would not fit in the time left is recorded as skipped, never cut silently.
# Needs no network (random weights, engines built here) and no TensorRT.
#
# Python: $PYTHON, else .venv/bin/python, else python3 (a Jetson's system Python with
# the package importable from this checkout).
# Exit status: 0 every step that ran passed; 1 a step failed (see the JSON);
#              77 no CUDA device visible (nothing run, nothing written).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
if [[ -n "${PYTHON:-}" ]]; then
  PY=$PYTHON
elif [[ -x .venv/bin/python ]]; then
  PY=.venv/bin/python
else
  PY=python3
fi
BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
START_S=$(date +%s)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "")
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((100 + $$ % 90))}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if ! CARD=$("$PY" -c '
import sys
try:
    import torch
except ImportError as exc:
    sys.exit(f"PyTorch is not importable: {exc}")
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
print(torch.cuda.get_device_name(0))
' 2>"$WORK/cuda.err"); then
  echo "gpu_check: no CUDA GPU here, nothing to check: $(tail -n 1 "$WORK/cuda.err") [python: $PY]" >&2
  exit 77
fi
echo "gpu_check: $CARD; budget ${BUDGET_S} s; python $PY"

# step NAME MAX_S COMMAND...: runs COMMAND with a timeout of min(MAX_S, time left);
# appends "NAME STATUS SECONDS" to steps.txt and keeps its output in NAME.log.
step() {
  local name=$1 max_s=$2
  shift 2
  local left=$((BUDGET_S - ($(date +%s) - START_S) - 10))  # 10 s to write the JSON
  if ((left < 20)); then
    echo "$name skipped-time-budget 0" >>"$WORK/steps.txt"
    echo "gpu_check: $name skipped (only ${left} s left of ${BUDGET_S})"
    return
  fi
  local limit=$((max_s < left ? max_s : left))
  local began=$SECONDS status
  echo "gpu_check: $name (at most ${limit} s)"
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1
  case $? in
    0) status=passed ;;
    124 | 137) status=timed-out ;;
    *) status=failed ;;
  esac
  echo "$name $status $((SECONDS - began))" >>"$WORK/steps.txt"
  echo "gpu_check: $name $status in $((SECONDS - began)) s"
}

DAV2=("$PY" -m dav2_ros.cli bench --device cuda --encoder vits --input-size 518
  --iterations 30 --warmup 5)
step gpu_tests 150 "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$WORK/gpu_tests.xml"
step torch_fp16 60 "${DAV2[@]}" --backend torch --precision fp16 --json "$WORK/torch_fp16.json"
step torch_bf16 60 "${DAV2[@]}" --backend torch --precision bf16 --json "$WORK/torch_bf16.json"
step hot_path 90 "$PY" bench/node_hot_path.py --engine torch --device cuda --precision fp16 --encoder vits \
  --input-size 518 --strides 1 --iterations 10 --out "$WORK/hot_path.json"
step torch_compile_fp16 150 "${DAV2[@]}" --backend torch --precision fp16 --compile \
  --json "$WORK/torch_compile_fp16.json"
if "$PY" -c 'import torch_tensorrt' >"$WORK/tensorrt_import.log" 2>&1; then
  step tensorrt_fp16 300 "${DAV2[@]}" --backend tensorrt --precision fp16 \
    --json "$WORK/tensorrt_fp16.json"
else
  echo "tensorrt_fp16 skipped-not-importable 0" >>"$WORK/steps.txt"
  echo "gpu_check: tensorrt_fp16 skipped (torch_tensorrt is not importable)"
fi

OUT=${1:-}
"$PY" - "$WORK" "$CARD" "$OUT" "$BUDGET_S" "$((SECONDS))" "$LOAD_START" <<'PYTHON'
"""Merge every step's status, log tail and results into one result (bench/_record.py)."""
import datetime, json, re, subprocess, sys
from pathlib import Path

work, card, out, budget_s, wall_s, load_start = sys.argv[1:7]
work = Path(work)
sys.path.insert(0, "bench")
from _record import BenchRun, write_results
import torch

run = BenchRun("gpu_check.sh", [out] if out else [], runner="bash")
gpu_versions = {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
for module in ("torch_tensorrt", "tensorrt", "onnxruntime"):
    try:
        gpu_versions[module] = __import__(module).__version__
    except Exception as exc:  # absent or broken: say which
        gpu_versions[module] = f"not importable: {type(exc).__name__}"
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    nvidia_smi = smi.stdout.strip() or smi.stderr.strip()
except (OSError, subprocess.TimeoutExpired) as exc:  # Jetsons have no nvidia-smi
    nvidia_smi = f"unavailable: {exc}"
steps = []
for line in (work / "steps.txt").read_text().splitlines():
    name, status, seconds = line.split()
    entry = {"step": name, "status": status, "seconds": int(seconds)}
    log = work / f"{name}.log"
    if log.is_file():
        entry["log_tail"] = log.read_text(errors="replace")[-3000:]
    result = work / f"{name}.json"
    if result.is_file():
        entry["result"] = json.loads(result.read_text())
    junit = work / f"{name}.xml"
    if junit.is_file():
        head = re.search(r"<testsuite [^>]*>", junit.read_text())
        entry["junit"] = head.group(0) if head else ""
    steps.append(entry)
settings = {"card": card, "nvidia_smi": nvidia_smi, "gpu_versions": gpu_versions,
            "budget_s": int(budget_s)}
document = run.record(steps, settings)
document["wall_s"] = int(wall_s)
document["load"]["avg_1m_start"] = float(load_start) if load_start else None
slug = re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-")
date = datetime.date.today().isoformat()
path = Path(out) if out else Path("bench/results") / f"gpu-check-{slug}-{date}.json"
write_results(path, document)
print(f"gpu_check: wrote {path}")
for entry in steps:
    print(f"  {entry['step']}: {entry['status']} ({entry['seconds']} s)")
sys.exit(1 if any(e["status"] in ("failed", "timed-out") for e in steps) else 0)
PYTHON
