#!/usr/bin/env bash
# Seed 003 on the Galactic Centre simulator: train every model of configs/cpu/ (the reduced runs
# two CPU cores finish; configs/ has the seed-scale ones, same models), evaluate each on its
# held-out test set, keep the evaluation JSON and plots in docs/results/gce/, and regenerate
# docs/results/gce.md from the JSON.
#   tools/gce-seed003.sh [CONFIG_DIR] [RUNS_DIR]      (defaults: configs/cpu runs/gce)
set -euo pipefail
cd "$(dirname "$0")/.."
cfgs=${1:-configs/cpu}
runs=${2:-runs/gce}
out=docs/results/gce
sz="cargo run --release -q -p skyzip --"
mkdir -p "$runs" "$out"
for c in "$cfgs"/gce-*.json; do
  name=$(basename "$c" .json)
  if [ ! -f "$runs/$name/best.safetensors" ]; then
    $sz train --config "$c" --out "$runs/$name" --force
  fi
  $sz evaluate --run "$runs/$name" --out "$out/$name.json"
  for p in "$runs/$name"/scatter_*.png "$runs/$name"/auc_hist.png "$runs/$name"/denoise_examples_*.png "$runs/$name"/loss_curve.png; do
    [ -f "$p" ] && cp "$p" "$out/$name.$(basename "$p")"
  done
done
$sz report gce "$out" --out docs/results/gce.md
