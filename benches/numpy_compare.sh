#!/usr/bin/env bash
# Side-by-side benchmark of tailrisk against numpy on the large synthetic book
# (10,000 options on 20 underlyings). Builds tailrisk, a virtual environment with pinned
# numpy and scipy, the synthetic book, then runs benches/numpy_compare.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
venv="${VENV:-target/numpy-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1
fi
book="target/synthetic-10k"
target/release/tailrisk synthetic "$book" --underlyings 20 --options 10000 > /dev/null
"$venv/bin/python" benches/numpy_compare.py "$book" "$@"
