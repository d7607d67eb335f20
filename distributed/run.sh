#!/usr/bin/env bash
# Runs distributed/dask_shards.py in a virtual environment with the pinned Dask
# (target/dask-venv, created on first use). Arguments are passed through.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${DASK_VENV:-$root/target/dask-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$root/distributed/requirements.txt"
fi
exec "$venv/bin/python" "$root/distributed/dask_shards.py" "$@"
