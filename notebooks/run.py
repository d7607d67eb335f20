#!/usr/bin/env python3
"""Executes every notebook in this folder top to bottom (nbclient) and writes it back with its
outputs, or into --out DIR. Fails on the first cell that raises.

The notebooks call the tailrisk binary named by TAILRISK_BIN (default: target/release/tailrisk
of this checkout)."""

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write executed notebooks here instead of in place")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args()
    for path in sorted(HERE.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        target = (args.out or HERE) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        print(f"executed {path.name} -> {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
