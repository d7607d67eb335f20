#!/usr/bin/env python3
"""Side-by-side benchmark: the same model and book in numpy and in tailrisk.

The numpy version is what a quant would write without tailrisk: vectorised over paths in
chunks, multivariate Student-t shocks by Cholesky, Black-Scholes with scipy.special.ndtr for
every option on every path. It reads the same scenario folder (`tailrisk synthetic DIR`
writes one) and prints paths per second of each and their ratio.

Usage: benches/numpy_compare.py SCENARIO_DIR [--numpy-paths N] [--paths N] [--tailrisk BIN]
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


def tailrisk_rate(binary: str, folder: Path, paths: int, revaluation: str):
    text = subprocess.run(
        [binary, "run", str(folder / "scenario.toml"), "--paths", str(paths), "--quiet",
         "--revaluation", revaluation],
        check=True, capture_output=True, text=True,
    ).stdout
    seconds = float(re.search(r"thread\(s\), ([0-9.]+) s", text).group(1))
    var99 = re.search(r"99\.00%\s+([0-9,.]+)", text).group(1)
    return paths / seconds, var99


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario_dir", type=Path)
    parser.add_argument("--numpy-paths", type=int, default=4000)
    parser.add_argument("--paths", type=int, default=200000)
    parser.add_argument("--tailrisk", default="target/release/tailrisk")
    args = parser.parse_args()

    started = time.perf_counter()
    pnl = numpy_pnl(args.scenario_dir, args.numpy_paths)
    numpy_rate = args.numpy_paths / (time.perf_counter() - started)
    print(f"numpy     {numpy_rate:12,.0f} paths/s  ({args.numpy_paths} paths; "
          f"99% VaR {-np.quantile(pnl, 0.01):,.0f} on so few paths)")
    for mode in ("full", "auto"):
        rate, var99 = tailrisk_rate(args.tailrisk, args.scenario_dir, args.paths, mode)
        print(f"tailrisk  {rate:12,.0f} paths/s  ({args.paths} paths, --revaluation {mode}; "
              f"99% VaR {var99})   ratio {rate / numpy_rate:,.1f}x")


if __name__ == "__main__":
    main()
