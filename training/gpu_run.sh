#!/usr/bin/env bash
# The bundled model's pipeline on one GPU in a ~10 minute slot: the same config and steps as the
# CPU run (training/configs/default.yaml), with --set device=cuda (bf16 autocast:
# `precision: auto`), 4x bigger batches, DataLoader workers and 14 render processes.
#
#   training/gpu_run.sh                 # run dir runs/gpu, budget 560 s
#   RUN_DIR=/data/r1 BUDGET_S=1200 PYTHON=/opt/venv/bin/python training/gpu_run.sh
#
# Not yet run on a GPU (none was at hand when it was written): the sizes below are
# estimates from CPU step times (docs/training.md), so the whole pipeline runs under
# `timeout`; a cut-off run resumes where it stopped when started again (finished steps
# are skipped, train steps resume from their last checkpoint). The GPU's name goes to
# <run dir>/gpu.txt; put it in the model card with the results.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-runs/gpu}
BUDGET_S=${BUDGET_S:-560}
mkdir -p "$RUN_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$RUN_DIR/gpu.txt"
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

args=(
  --set device=cuda --set threads=4 --set "run_dir=$RUN_DIR"
  --set synth.workers=14
  --set teacher.batch_size=32 --set teacher.steps=1500 --set teacher.workers=6
  --set teacher.warmup_steps=100 --set teacher.checkpoint_every=250
  --set pseudo_label.batch_size=64
  --set student.batch_size=32 --set student.steps=2500 --set student.workers=6
  --set student.checkpoint_every=250
  --set finetune_metric.batch_size=32 --set finetune_metric.steps=1500
  --set finetune_metric.workers=6 --set finetune_metric.checkpoint_every=250
  --set deploy_eval.threads=8
  --set "export.out=$RUN_DIR/export/metric/default"
  --set "export_relative.out=$RUN_DIR/export/relative/relative"
)
started=$(date +%s)
status=0
timeout "$BUDGET_S" "$PYTHON" -m dav2_train.cli pipeline \
  --config training/configs/default.yaml "${args[@]}" 2>&1 | tee -a "$RUN_DIR/pipeline.log" ||
  status=$?
echo "wall time $(( $(date +%s) - started )) s, exit status $status" | tee -a "$RUN_DIR/pipeline.log"
if [ "$status" = 124 ]; then
  echo "budget of $BUDGET_S s reached: run this script again to resume" >&2
fi
exit "$status"
