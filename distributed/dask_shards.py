#!/usr/bin/env python3
"""Run a tailrisk scenario as N shards on a Dask cluster and merge them.

Each shard is one task: `tailrisk run SCENARIO --shard I/N --out DIR` on a worker; when all
are done, `tailrisk merge` combines them into exactly the single-machine result. By default
the cluster is a LocalCluster on this machine; `--scheduler tcp://host:8786` sends the tasks
to an existing cluster (every worker then needs the tailrisk binary, the scenario files and a
shared DIR at the same paths).

Usage: distributed/dask_shards.py SCENARIO.toml --shards N [--paths P] [--out DIR]
       [--workers W] [--scheduler ADDRESS] [--tailrisk BIN] [--format table|json]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from dask.distributed import Client, LocalCluster


def run_shard(binary, scenario, index, count, out, paths):
    """One task: simulate shard index/count into out; returns its JSON file."""
    command = [binary, "run", scenario, "--shard", f"{index}/{count}", "--out", out, "--quiet"]
    if paths:
        command += ["--paths", str(paths)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return str(Path(out) / f"shard-{index}-of-{count}.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--paths", type=int)
    parser.add_argument("--out")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler")
    parser.add_argument("--tailrisk", default=str(Path(__file__).resolve().parent.parent / "target/release/tailrisk"))
    parser.add_argument("--format", default="table", choices=["table", "json"])
    args = parser.parse_args()

    out = args.out or tempfile.mkdtemp(prefix="tailrisk-shards-")
    scenario = str(Path(args.scenario).resolve())
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    futures = [
        client.submit(run_shard, args.tailrisk, scenario, i, args.shards, out, args.paths, pure=False)
        for i in range(args.shards)
    ]
    files = client.gather(futures)
    client.close()
    merged = subprocess.run([args.tailrisk, "merge", "--format", args.format, *files],
                            capture_output=True, text=True)
    sys.stderr.write(merged.stderr)
    sys.stdout.write(merged.stdout)
    sys.exit(merged.returncode)


if __name__ == "__main__":
    main()
