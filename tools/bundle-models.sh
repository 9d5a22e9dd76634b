#!/bin/sh
# Quantises the float weights of the bundled codec models (crates/skyzip-codec/models/float/,
# trained by configs/codec-default.json, codec-rate.json and codec-fast.json) into the integer codec
# models the binary bundles (crates/skyzip-codec/models/NAME.safetensors).
#
# Bundled models are never changed in place: a retrained or re-quantised model gets a new name
# (default-2, …; add it to BUNDLED and move the alias in crates/skyzip-codec/src/predict.rs),
# and the old files stay, so that every file written with them still decodes.
#
#   tools/bundle-models.sh default-1 rate-1 fast-1   (writes only names that do not exist yet)
set -eu
cd "$(dirname "$0")/.."
SKYZIP=${SKYZIP:-target/release/skyzip}
for name in "$@"; do
  kind=${name%-*}                     # default-1 → default
  out=crates/skyzip-codec/models/$name.safetensors
  if [ -s "$out" ]; then
    echo "$out exists: bundled models are never changed in place (give a new name)" >&2
    exit 2
  fi
  # A model's own config and float weights (configs/codec-NAME.json, models/float/NAME.*) if
  # it has them, else its kind's (the first of each kind).
  src=$name
  [ -f "configs/codec-$name.json" ] || src=$kind
  cfg=configs/codec-$src.json
  wts=crates/skyzip-codec/models/float/$src.safetensors
  run=$(mktemp -d)
  cp "$cfg" "$run/config.json"
  cp "$wts" "$run/last.safetensors"
  "$SKYZIP" export --run "$run" --checkpoint last --part codec --out "$run/model.safetensors" \
    --about "$name: $cfg, float weights $wts"
  cp "$run/model.safetensors" "$out"
  rm -rf "$run"
done
