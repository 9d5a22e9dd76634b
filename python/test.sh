#!/usr/bin/env bash
# The Python package's tests: a fresh virtualenv (target/py-venv), `pip install ./python` into it
# (maturin builds the module from this workspace), then pytest. Run from anywhere; the CLI's
# tests (cargo test --release --workspace) build target/release/skyzip, which these compare with.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py-venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q numpy astropy pytest "dask[distributed]"
"$venv/bin/python" -m pip install -q ./python
[ -x target/release/skyzip ] || cargo build --release -p skyzip
# From the repository root, so that `import skyzip` is the installed package, not python/skyzip.
"$venv/bin/python" -m pytest -q python/tests
