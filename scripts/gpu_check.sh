#!/usr/bin/env bash
# A search on this machine's GPUs, four trials per GPU: prints trials/s and samples/s from its results.
#
#   scripts/gpu_check.sh                               # 20 samples, --gpus-per-trial 0.25, --max-epochs 10
#   SAMPLES=40 GPUS_PER_TRIAL=0.5 scripts/gpu_check.sh --space study   # extra flags go to the search
#
# Run it from anywhere on a machine with an NVIDIA GPU, TensorFlow with CUDA (pip install "tensorflow[and-cuda]")
# and Fashion-MNIST. It starts its own local Ray (all CPUs and GPUs of this machine), logs nothing to W&B,
# and writes only under its own folder in /tmp (printed; STORAGE=... to choose). Trials at once: the fewer
# of CPUs / --cpus-per-trial and GPUs / GPUS_PER_TRIAL.
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${SAMPLES:-20}
GPUS_PER_TRIAL=${GPUS_PER_TRIAL:-0.25}
MAX_EPOCHS=${MAX_EPOCHS:-10}
STORAGE=${STORAGE:-$(mktemp -d /tmp/tune_mlp_gpu_check.XXXXXX)}
NAME=gpu-check-$(date +%Y%m%d-%H%M%S)
PYTHON=${PYTHON:-python}
unset RAY_ADDRESS  # a local Ray on this machine, never a cluster this shell happens to point at

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi
else
  echo "note: no nvidia-smi on this machine: the search runs, but Ray finds no GPU and refuses the GPU request" >&2
fi
"$PYTHON" -c 'import tensorflow as tf; print("TensorFlow", tf.__version__, "GPUs:", tf.config.list_physical_devices("GPU"))'
echo "search: $SAMPLES samples, --gpus-per-trial $GPUS_PER_TRIAL, --max-epochs $MAX_EPOCHS -> $STORAGE/$NAME"

started=$(date +%s)
"$PYTHON" -m tune_mlp.search --no_wandb --samples "$SAMPLES" --gpus-per-trial "$GPUS_PER_TRIAL" \
  --max-epochs "$MAX_EPOCHS" --storage-path "$STORAGE" --name "$NAME" "$@"
ended=$(date +%s)

"$PYTHON" - "$STORAGE/$NAME" "$((ended - started))" <<'EOF'
"""Throughput from the trials' own reports (result.json, one line per epoch)."""
import json
import sys
from pathlib import Path

import pandas as pd

from analysis.accounting import busiest_overlap, trial_intervals

root, driver_wall = Path(sys.argv[1]), float(sys.argv[2])
rows = pd.DataFrame(
    [json.loads(line) for path in root.glob("trial_*/result.json") for line in path.read_text().splitlines() if line]
)
if rows.empty:
    sys.exit(f"error: no trial of {root} reported an epoch")
intervals = trial_intervals(rows)
wall = float(intervals["end"].max() - intervals["start"].min())  # first trial start to last report
trials, samples = len(intervals), float((rows["samples_per_second"] * rows["epoch_seconds"]).sum())
print(f"\n{trials} trials, {len(rows)} epochs, at most {busiest_overlap(intervals)} at once, "
      f"trials' CUDA_VISIBLE_DEVICES: {sorted(set(rows['gpu_ids'].astype(str)))}")
print(f"trials/s:  {trials / wall:.3f}  ({wall:.0f} s from the first trial's start to the last report; "
      f"{driver_wall:.0f} s with the driver's start-up)")
print(f"samples/s: {samples / wall:,.0f}  (training examples, all trials together; "
      f"one trial's median epoch: {rows['samples_per_second'].median():,.0f})")
print(f"best val_accuracy: {rows['val_accuracy'].max():.4f}; results: {root}")
EOF
