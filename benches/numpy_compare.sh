#!/usr/bin/env bash
# Side-by-side benchmark of tailrisk against numpy on synthetic books of 20, 200, 2,000 and
# 10,000 options on 20 underlyings, at 100,000 and 1,000,000 paths, in full, grid and auto
# revaluation: one markdown table of wall-clock seconds and ratios. Builds tailrisk, a
# virtual environment with pinned numpy and scipy and the books, then runs
# benches/numpy_compare.py (extra arguments go to it, e.g. --paths 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
venv="${VENV:-target/numpy-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1
fi
books=()
for options in 20 200 2000 10000; do
  book="target/synthetic-$options"
  target/release/tailrisk synthetic "$book" --underlyings 20 --options "$options" > /dev/null
  books+=("$book")
done
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$venv/bin/python" benches/numpy_compare.py "${books[@]}" "$@"
