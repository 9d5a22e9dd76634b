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
  run=$(mktemp -d)
  cp "configs/codec-$kind.json" "$run/config.json"
  cp "crates/skyzip-codec/models/float/$kind.safetensors" "$run/last.safetensors"
  "$SKYZIP" export --run "$run" --checkpoint last --part codec --out "$run/model.safetensors" \
    --about "$name: configs/codec-$kind.json, float weights crates/skyzip-codec/models/float/$kind.safetensors"
  cp "$run/model.safetensors" "$out"
  rm -rf "$run"
done
