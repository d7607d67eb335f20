#!/usr/bin/env python3
"""Writes vol_history.csv: a SYNTHETIC daily ATM implied-vol history of BTC and ETH at the
tenor pillars 7, 30, 90 and 180 days, in the long layout `date,underlying,tenor_days,vol`
that `tailrisk calibrate --vol-history` reads.

No public implied-vol history could be shipped, so the vols are simulated, but driven by the
REAL daily closes of bitstamp_btc_eth_ltc_usd_daily.csv (the last two years of it,
2018-01-18 .. 2020-01-17, on the dates that have a close):

  ln vol_p(t) = ln base_p + y_p(t),
  y_p(t) = y_p(s) exp(-kappa_p g) + nu_p sqrt(g / 365) (e_p + jump_p max(0, -z - 2)),

with s the previous date with a close, g = t - s in days, z the spot log return over the
gap divided by sqrt(g) and by its EWMA (lambda 0.94) daily volatility known the day before
(so z is the real standardised spot move), and e the pillar innovations: unit-variance
normals whose correlation with z and with each other is CORRELATION below (a Cholesky factor
applied to (z, four N(0,1) draws)). Per calendar day the first of those draws is half
shared between BTC and ETH (a common crypto vol shock). The jump term adds a front-end
premium in crashes (a spot fall beyond 2 standard deviations lifts the short pillars most).

Deterministic: Python's `random.Random(SEED)`, draws taken per calendar day in date order.
Regenerate with `python3 make_vol_history.py` in this folder (standard library only).
"""

import csv
import math
import os
import random
from datetime import date, timedelta

SEED = 20200117
HERE = os.path.dirname(os.path.abspath(__file__))
PRICES = os.path.join(HERE, "bitstamp_btc_eth_ltc_usd_daily.csv")
OUT = os.path.join(HERE, "vol_history.csv")
FIRST, LAST = date(2018, 1, 18), date(2020, 1, 17)
EWMA_LAMBDA = 0.94

PILLARS = [7, 30, 90, 180]
# per underlying: long-run ATM vol per pillar, annualised vol of ln vol per pillar (before
# the crash jumps), mean-reversion half-life per pillar in days, crash jump per pillar (in
# innovation standard deviations per standard deviation of spot fall beyond 2)
PARAMS = {
    "BTC": {
        "base": [0.62, 0.64, 0.66, 0.67],
        "nu": [1.65, 1.25, 0.88, 0.69],
        "half_life": [15.0, 30.0, 45.0, 60.0],
        "jump": [0.5, 0.3, 0.1, 0.0],
    },
    "ETH": {
        "base": [0.78, 0.80, 0.81, 0.82],
        "nu": [1.85, 1.4, 1.0, 0.8],
        "half_life": [15.0, 30.0, 45.0, 60.0],
        "jump": [0.5, 0.3, 0.1, 0.0],
    },
}
# correlation of (z, e_7, e_30, e_90, e_180)
CORRELATION = [
    [1.0, -0.40, -0.40, -0.38, -0.35],
    [-0.40, 1.0, 0.90, 0.78, 0.68],
    [-0.40, 0.90, 1.0, 0.92, 0.83],
    [-0.38, 0.78, 0.92, 1.0, 0.95],
    [-0.35, 0.68, 0.83, 0.95, 1.0],
]
COMMON_SHARE = 0.5  # variance share of the cross-underlying vol shock in the first draw


def cholesky(a):
    n = len(a)
    l = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = a[i][j] - sum(l[i][k] * l[j][k] for k in range(j))
            l[i][j] = math.sqrt(s) if i == j else s / l[j][j]
    return l


def closes():
    """underlying -> {date: close} from the wide price file (first column is the date)."""
    out = {u: {} for u in PARAMS}
    with open(PRICES, newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        columns = {u: header.index(u + ":close") for u in PARAMS}
        for row in rows:
            d = date.fromisoformat(row[0])
            for u, c in columns.items():
                if row[c]:
                    out[u][d] = float(row[c])
    return out


def standardised_moves(prices):
    """date -> (gap days, spot move per sqrt(day) / EWMA daily vol before it), from FIRST."""
    dates = sorted(prices)
    variance = None
    moves = {}
    for s, t in zip(dates, dates[1:]):
        gap = (t - s).days
        r = math.log(prices[t] / prices[s]) / math.sqrt(gap)
        if variance is None:
            variance = r * r if r != 0 else 1e-4
        if t >= FIRST:
            moves[t] = (gap, r / math.sqrt(variance))
        variance = EWMA_LAMBDA * variance + (1 - EWMA_LAMBDA) * r * r
    return moves


def main():
    rng = random.Random(SEED)
    chol = cholesky(CORRELATION)
    prices = closes()
    moves = {u: standardised_moves(p) for u, p in prices.items()}
    state = {u: [0.0] * len(PILLARS) for u in PARAMS}
    rows = []
    day = FIRST
    while day <= LAST:
        common = rng.gauss(0.0, 1.0)
        draws = {u: [rng.gauss(0.0, 1.0) for _ in PILLARS] for u in PARAMS}
        for u, p in PARAMS.items():
            u_draws = draws[u]
            u_draws[0] = math.sqrt(COMMON_SHARE) * common + math.sqrt(1 - COMMON_SHARE) * u_draws[0]
            if day == FIRST and day in prices[u]:
                rows.extend((day, u, t, b) for t, b in zip(PILLARS, p["base"]))
            elif day in moves[u]:
                gap, z = moves[u][day]
                x = [z] + u_draws
                for i, tenor in enumerate(PILLARS):
                    e = sum(chol[i + 1][k] * x[k] for k in range(len(x)))
                    e += p["jump"][i] * max(0.0, -z - 2.0)
                    kappa = math.log(2.0) / p["half_life"][i]
                    y = state[u][i] * math.exp(-kappa * gap)
                    state[u][i] = y + p["nu"][i] * math.sqrt(gap / 365.0) * e
                    rows.append((day, u, tenor, p["base"][i] * math.exp(state[u][i])))
        day += timedelta(days=1)
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    with open(OUT, "w", newline="") as f:
        f.write("date,underlying,tenor_days,vol\n")
        for d, u, t, v in rows:
            f.write(f"{d.isoformat()},{u},{t},{v:.4f}\n")
    print(f"wrote {OUT}: {len(rows)} rows")


if __name__ == "__main__":
    main()
