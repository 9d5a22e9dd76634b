#!/usr/bin/env bash
# Seeds 000-002 on the radio and CCD simulators: train every model of configs/cpu/ named below
# (the reduced runs two CPU cores finish; configs/ has the seed-scale ones), evaluate each on its
# held-out test set (coded bytes, the stacking study, the pixel AE against HCOMPRESS), keep the
# evaluation JSON and plots in docs/results/seeds/, draw the latent maps, and regenerate
# docs/results/seeds.md from the JSON.
#   tools/seeds.sh [CONFIG_DIR] [RUNS_DIR] [NAME...]   (defaults: configs/cpu runs/seeds, all)
set -euo pipefail
cd "$(dirname "$0")/.."
cfgs=${1:-configs/cpu}
runs=${2:-runs/seeds}
shift $(( $# > 2 ? 2 : $# ))
out=docs/results/seeds
cargo build --release -q -p skyzip
sz=target/release/skyzip
mkdir -p "$runs" "$out"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in "$cfgs"/radio-*.json "$cfgs"/ccd-*.json; do names+=("$(basename "$c" .json)"); done
fi
for name in "${names[@]}"; do
  c="$cfgs/$name.json"
  if [ ! -f "$runs/$name/best.safetensors" ]; then
    $sz train --config "$c" --out "$runs/$name" --force
  fi
  # The test set the config names now (a run trained before its config's test seed moved keeps
  # the old one in its own config.json).
  tseed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["test"]["seed"])' "$c")
  $sz evaluate --run "$runs/$name" --seed "$tseed" --out "$out/$name.json"
  for p in loss_curve pixel_examples; do
    if [ -f "$runs/$name/$p.png" ]; then cp "$runs/$name/$p.png" "$out/$name.$p.png"; fi
  done
  # Traversals and latent maps of the models the report discusses (the β sweep's others are
  # alike, and the repository keeps its figures small).
  case "$name" in
    radio-unet-ae|radio-unet-ae-noskips|radio-vae-b0.3|radio-vq-vae)
      cp "$runs/$name/traversal.png" "$out/$name.traversal.png"
      $sz latents --run "$runs/$name" --seed "$tseed" --plot "$out/$name.latents.png" ;;
  esac
done
$sz report seeds "$out" --out docs/results/seeds.md
