#!/usr/bin/env python3
"""Side-by-side benchmark: the same model and book in numpy and in tailrisk.

The numpy version is what a quant would write without tailrisk: vectorised over paths in
chunks, multivariate Student-t shocks by Cholesky, Black-Scholes with scipy.special.ndtr for
every option on every path. It reads the same scenario folders (`tailrisk synthetic DIR`
writes them) and prints, per book and path count, a markdown table of wall-clock seconds:
numpy's (timed on as many paths as fit in --numpy-seconds, scaled linearly when that is
fewer than the row's paths) and tailrisk's in each revaluation mode, end to end (one
process: loading, pilot, surfaces, exact tail), with the ratio numpy / tailrisk.

Usage: benches/numpy_compare.py SCENARIO_DIR... [--paths N...] [--numpy-seconds S]
       [--modes full grid auto] [--tailrisk BIN]
(run by benches/numpy_compare.sh, which builds a virtual environment with numpy and scipy).
"""

import argparse
import csv
import re
import subprocess
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.special import ndtr

DAYS_PER_YEAR = 365.0


def load(folder: Path):
    scenario = tomllib.loads((folder / "scenario.toml").read_text())
    model = scenario["model"]
    with open(folder / "market.csv") as f:
        market = {r["underlying"]: r for r in csv.DictReader(f)}
    with open(folder / "positions.csv") as f:
        positions = list(csv.DictReader(f))
    names = sorted(model["factors"])
    factors = [f"{n}.spot" for n in names] + [f"{n}.vol" for n in names]
    corr = np.eye(len(factors))
    if "correlation" in model:
        index = [factors.index(f) for f in model["correlation"]["factors"]]
        corr[np.ix_(index, index)] = np.array(model["correlation"]["matrix"])
    return scenario, model, market, positions, names, factors, corr


def book_arrays(market, positions, names, as_of):
    """Linear units per underlying, and one row per option position."""
    linear = np.zeros(len(names))
    opts = []
    for p in positions:
        u = names.index(p["underlying"])
        units = float(p["quantity"]) * float(p.get("multiplier") or 1.0)
        if p["kind"] in ("spot", "perpetual", "future"):
            linear[u] += units
            continue
        expiry = datetime.fromisoformat(p["expiry"]).replace(hour=8, tzinfo=timezone.utc)
        tau = (expiry - as_of).total_seconds() / 86400.0 / DAYS_PER_YEAR
        vol = float(p["implied_vol"] or market[p["underlying"]]["atm_vol"])
        opts.append((u, units, float(p["strike"]), tau, vol, p["option_type"] == "call"))
    u, units, strike, tau, vol, call = map(np.array, zip(*opts))
    return linear, u.astype(int), units, strike, tau, vol, call


def bs(spot, strike, tau, vol, rate, call):
    sd = vol * np.sqrt(tau)
    d1 = (np.log(spot / strike) + rate * tau) / sd + 0.5 * sd
    d2 = d1 - sd
    disc = strike * np.exp(-rate * tau)
    return np.where(call, spot * ndtr(d1) - disc * ndtr(d2), disc * ndtr(-d2) - spot * ndtr(-d1))


def numpy_pnl(folder: Path, paths: int, chunk: int = 200, seed: int = 1):
    scenario, model, market, positions, names, factors, corr = load(folder)
    as_of = datetime.fromisoformat(next(iter(market.values()))["as_of"].replace("Z", "+00:00"))
    horizon = scenario.get("run", {}).get("horizon_days", 1.0) / DAYS_PER_YEAR
    linear, u, units, strike, tau, vol, call = book_arrays(market, positions, names, as_of)
    spot0 = np.array([float(market[n]["spot"]) for n in names])
    rate = np.array([float(market[n]["rate"]) for n in names])
    sigma = np.array([model["factors"][n]["spot_vol"] for n in names])
    nu = np.array([model["factors"][n].get("vol_of_vol", 0.0) for n in names])
    dof = model.get("dof", 0)
    chol = np.linalg.cholesky(corr)
    base = bs(spot0[u], strike, tau, vol, rate[u], call)
    tau_h = np.maximum(tau - horizon, 1e-12)
    rng = np.random.default_rng(seed)
    k, n = len(factors), len(names)
    out = np.empty(paths)
    for start in range(0, paths, chunk):
        m = min(chunk, paths - start)
        e = rng.standard_normal((m, k)) @ chol.T
        if model["distribution"] == "student-t":
            e *= np.sqrt((dof - 2.0) / rng.chisquare(dof, size=(m, 1)))
        x = sigma * np.sqrt(horizon) * e[:, :n]
        ratio = np.exp(nu * np.sqrt(horizon) * e[:, n:])
        spot = spot0 * np.exp(x)
        pnl = (spot - spot0) @ linear
        value = bs(spot[:, u], strike, tau_h, vol * ratio[:, u], rate[u], call)
        out[start:start + m] = pnl + (value - base) @ units
    return out


def tailrisk_seconds(binary: str, folder: Path, paths: int, revaluation: str):
    """Wall-clock seconds of one `tailrisk run` (loading, pilot, surfaces, exact tail and
    output included), the mode it ran in and its 99 % VaR."""
    started = time.perf_counter()
    text = subprocess.run(
        [binary, "run", str(folder / "scenario.toml"), "--paths", str(paths), "--quiet",
         "--revaluation", revaluation],
        check=True, capture_output=True, text=True,
    ).stdout
    seconds = time.perf_counter() - started
    mode = re.search(r"revaluation\s+(\w+)", text)
    var99 = re.search(r"99\.00%\s+([0-9,.]+)", text).group(1)
    return seconds, (mode.group(1) if mode else revaluation), var99


def numpy_rate(folder: Path, budget_seconds: float, most: int):
    """numpy's paths per second on `folder`, timed (loading included) on as many paths as
    fit in about `budget_seconds` (at most `most`): its cost is linear in the paths."""
    probe = 1000
    started = time.perf_counter()
    numpy_pnl(folder, probe)
    first = time.perf_counter() - started
    paths = max(probe, min(most, int(probe * budget_seconds / max(first, 1e-9)) // 200 * 200))
    started = time.perf_counter()
    numpy_pnl(folder, paths)
    return paths / (time.perf_counter() - started), paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario_dirs", type=Path, nargs="+")
    parser.add_argument("--paths", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--numpy-seconds", type=float, default=20.0,
                        help="time budget of each numpy measurement")
    parser.add_argument("--tailrisk", default="target/release/tailrisk")
    parser.add_argument("--modes", nargs="+", default=["full", "grid", "auto"])
    args = parser.parse_args()

    print("| book | paths | numpy s | " + " | ".join(
        f"tailrisk {m} s | × numpy" for m in args.modes) + " |")
    print("|---|---:|---:|" + "---:|---:|" * len(args.modes))
    for folder in args.scenario_dirs:
        rate, measured = numpy_rate(folder, args.numpy_seconds, max(args.paths))
        with open(folder / "positions.csv") as f:
            options = sum(1 for p in csv.DictReader(f) if p["kind"] == "option")
        for paths in args.paths:
            numpy_seconds = paths / rate
            estimated = "" if measured == paths else "*"
            cells = []
            for mode in args.modes:
                seconds, ran, var99 = tailrisk_seconds(args.tailrisk, folder, paths, mode)
                label = f"{seconds:.2f}" + (f" ({ran})" if mode == "auto" else "")
                cells.append(f"{label} | {numpy_seconds / seconds:,.1f}")
            print(f"| {options:,} options | {paths:,} | {numpy_seconds:,.1f}{estimated} | "
                  + " | ".join(cells) + f" |  <!-- 99% VaR {var99} -->", flush=True)
    print("\n* numpy's time from its rate measured on fewer paths (its cost is linear in paths).")


if __name__ == "__main__":
    main()
