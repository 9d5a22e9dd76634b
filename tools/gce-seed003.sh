#!/usr/bin/env bash
# Seed 003 on the Galactic Centre simulator: train every model of configs/cpu/ (the reduced runs
# two CPU cores finish; configs/ has the seed-scale ones, same models), evaluate each on its
# held-out test set, keep the evaluation JSON and plots in docs/results/gce/, and regenerate
# docs/results/gce.md from the JSON.
#   tools/gce-seed003.sh [CONFIG_DIR] [RUNS_DIR] [NAME...]   (defaults: configs/cpu runs/gce, all)
set -euo pipefail
cd "$(dirname "$0")/.."
cfgs=${1:-configs/cpu}
runs=${2:-runs/gce}
shift $(( $# > 2 ? 2 : $# ))
out=docs/results/gce
cargo build --release -q -p skyzip
sz=target/release/skyzip
mkdir -p "$runs" "$out"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in "$cfgs"/gce-*.json; do names+=("$(basename "$c" .json)"); done
fi
for name in "${names[@]}"; do
  c="$cfgs/$name.json"
  if [ ! -f "$runs/$name/best.safetensors" ]; then
    $sz train --config "$c" --out "$runs/$name" --force
  fi
  $sz evaluate --run "$runs/$name" --out "$out/$name.json"
  for p in "$runs/$name"/scatter_*.png "$runs/$name"/auc_hist.png "$runs/$name"/denoise_examples_*.png "$runs/$name"/loss_curve.png; do
    if [ -f "$p" ]; then cp "$p" "$out/$name.$(basename "$p")"; fi
  done
done
$sz report gce "$out" --out docs/results/gce.md
