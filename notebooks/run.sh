#!/usr/bin/env bash
# Builds tailrisk, sets up the notebooks' virtual environment (pinned requirements.txt, in
# target/notebooks-venv on first use) and executes every notebook top to bottom, writing the
# outputs back into notebooks/ (or into --out DIR). Arguments go to run.py. With TAILRISK_BIN
# set, that binary is used and nothing is built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${TAILRISK_BIN:-}" ]; then
  cargo build --release --quiet
fi
venv="${NOTEBOOKS_VENV:-$root/target/notebooks-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import nbclient, polars, matplotlib" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r notebooks/requirements.txt
fi
"$venv/bin/python" -m ipykernel install --prefix "$venv" --name python3 > /dev/null
export TAILRISK_BIN="${TAILRISK_BIN:-$root/target/release/tailrisk}"
export PATH="$venv/bin:$PATH"
export JUPYTER_PATH="$venv/share/jupyter"
exec "$venv/bin/python" notebooks/run.py "$@"
