//! Implied-vol surfaces: a venue's marks per underlying, one smile per expiry (`[market]
//! surface`, columns `underlying, expiry, strike, implied_vol`), read, checked for static
//! arbitrage and interpolated.
//!
//! Coordinates: log-moneyness k = ln(K/F) against the forward F = S·e^{r·T} of each expiry,
//! and total variance w = σ²·T (T in years of 365 days).
//!
//! - **Within an expiry**, w(k) is a monotone cubic Hermite spline through the marks
//!   (Fritsch–Carlson slopes): it reproduces every mark, is smooth, and never overshoots
//!   between two marks (no wiggle the marks do not show). Outside the quoted strikes the
//!   smile is flat: the vol of the nearest quoted strike. Where the smile is not flat at its
//!   first or last mark, flat extrapolation puts a kink there, so the call price's slope
//!   jumps at that strike and a butterfly straddling it can be priced below zero: the checks
//!   below cover the quoted range, not butterflies across its ends.
//! - **Across expiries**, w is linear in T at fixed k between two expiries, so where w does
//!   not fall from one expiry to the next, it does not fall in between either. Before the
//!   first expiry and after the last, the vol at fixed k is that expiry's (w scaled in
//!   proportion to T).
//!
//! **Static arbitrage** of the interpolated surface is refused, naming the underlying,
//! expiry and strike; both checks run on the marks and on [`CHECK_POINTS`] points between
//! every two neighbouring marks, so the interpolation is checked, not only the marks:
//! - calendar: total variance must not fall from one expiry to the next at any checked
//!   log-moneyness of either by more than [`CALENDAR_TOLERANCE`];
//! - butterfly: at each expiry the call prices at the checked strikes must fall with the
//!   strike, by no more than the discounted strike step, and be convex (the slope between
//!   neighbouring strikes non-decreasing), within [`BUTTERFLY_TOLERANCE`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::book::instrument::OptionType;
use crate::error::{Error, Location, Result};
use crate::input::table::Table;
use crate::market::MarketData;
use crate::pricing::black_scholes::bs_price;
use crate::time::years_between;

/// Largest fall of total variance (σ²·T, years) from one expiry to the next at the same
/// log-moneyness that is still accepted (rounding in published marks).
pub const CALENDAR_TOLERANCE: f64 = 1e-6;
/// Largest violation of the call-price slope conditions accepted, as a fraction of the
/// discount factor (rounding in published marks).
pub const BUTTERFLY_TOLERANCE: f64 = 1e-6;

/// Points checked between two neighbouring marks, besides the marks themselves.
pub const CHECK_POINTS: usize = 8;

/// One expiry's smile: marks sorted by strike.
#[derive(Debug, Clone, PartialEq)]
pub struct Smile {
    /// Expiry instant (UTC).
    pub expiry: DateTime<Utc>,
    /// Years (365 days) from the valuation time to the expiry.
    pub tau: f64,
    /// Quoted strikes, reporting currency per coin, ascending.
    pub strikes: Vec<f64>,
    /// ln(K/F) of each strike against this expiry's forward.
    pub log_moneyness: Vec<f64>,
    /// Total variance σ²·τ at each strike.
    pub total_variance: Vec<f64>,
    /// Fritsch–Carlson slopes dw/dk at each mark.
    slopes: Vec<f64>,
}

impl Smile {
    fn new(expiry: DateTime<Utc>, tau: f64, forward: f64, marks: &[(f64, f64)]) -> Smile {
        let strikes: Vec<f64> = marks.iter().map(|m| m.0).collect();
        let log_moneyness: Vec<f64> = strikes.iter().map(|k| (k / forward).ln()).collect();
        let total_variance: Vec<f64> = marks.iter().map(|m| m.1 * m.1 * tau).collect();
        let slopes = monotone_slopes(&log_moneyness, &total_variance);
        Smile {
            expiry,
            tau,
            strikes,
            log_moneyness,
            total_variance,
            slopes,
        }
    }

    /// The log-moneyness points the arbitrage checks read: every mark and [`CHECK_POINTS`]
    /// points evenly between each two neighbouring marks.
    fn check_points(&self) -> Vec<f64> {
        let x = &self.log_moneyness;
        let mut points = vec![x[0]];
        for pair in x.windows(2) {
            let step = (pair[1] - pair[0]) / (CHECK_POINTS + 1) as f64;
            points.extend((1..=CHECK_POINTS + 1).map(|i| pair[0] + step * i as f64));
        }
        points
    }

    /// Total variance at log-moneyness `k` (flat beyond the quoted strikes).
    pub fn total_variance_at(&self, k: f64) -> f64 {
        let (x, w, d) = (&self.log_moneyness, &self.total_variance, &self.slopes);
        let last = x.len() - 1;
        if k <= x[0] {
            return w[0];
        }
        if k >= x[last] {
            return w[last];
        }
        // k is inside (x[0], x[last]) here, or NaN, which stays NaN
        let i = x.partition_point(|&xi| xi <= k).saturating_sub(1);
        let h = x[i + 1] - x[i];
        let t = (k - x[i]) / h;
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * w[i]
            + (t3 - 2.0 * t2 + t) * h * d[i]
            + (-2.0 * t3 + 3.0 * t2) * w[i + 1]
            + (t3 - t2) * h * d[i + 1]
    }
}

/// Fritsch–Carlson slopes of the monotone cubic Hermite interpolant through (x, y).
fn monotone_slopes(x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let secants: Vec<f64> = (0..n - 1)
        .map(|i| (y[i + 1] - y[i]) / (x[i + 1] - x[i]))
        .collect();
    let mut d = vec![0.0; n];
    d[0] = secants[0];
    d[n - 1] = secants[n - 2];
    for i in 1..n - 1 {
        d[i] = if secants[i - 1] * secants[i] <= 0.0 {
            0.0
        } else {
            (secants[i - 1] + secants[i]) / 2.0
        };
    }
    for (i, &s) in secants.iter().enumerate() {
        if s == 0.0 {
            d[i] = 0.0;
            d[i + 1] = 0.0;
            continue;
        }
        let (a, b) = (d[i] / s, d[i + 1] / s);
        let r = a * a + b * b;
        if r > 9.0 {
            let scale = 3.0 / r.sqrt();
            d[i] = scale * a * s;
            d[i + 1] = scale * b * s;
        }
    }
    d
}

/// One underlying's surface: its smiles by expiry, with the spot and rate that set each
/// expiry's forward.
#[derive(Debug, Clone, PartialEq)]
pub struct VolSurface {
    /// Spot today, reporting currency per coin.
    pub spot: f64,
    /// Continuously compounded annual rate (the forward's carry).
    pub rate: f64,
    /// Smiles sorted by expiry.
    pub smiles: Vec<Smile>,
}

impl VolSurface {
    /// The implied vol (annualised fraction) of strike `strike` expiring `tau` years from the
    /// valuation time.
    pub fn vol(&self, strike: f64, tau: f64) -> f64 {
        let forward = self.spot * (self.rate * tau).exp();
        let k = (strike / forward).ln();
        let s = &self.smiles;
        let first = &s[0];
        let last = &s[s.len() - 1];
        let total_variance = if tau <= first.tau {
            first.total_variance_at(k) * tau / first.tau
        } else if tau >= last.tau {
            last.total_variance_at(k) * tau / last.tau
        } else {
            let j = s.partition_point(|smile| smile.tau <= tau) - 1;
            let (a, b) = (&s[j], &s[j + 1]);
            let weight = (tau - a.tau) / (b.tau - a.tau);
            (1.0 - weight) * a.total_variance_at(k) + weight * b.total_variance_at(k)
        };
        (total_variance / tau).sqrt()
    }
}

/// Every underlying's surface from one surface file.
#[derive(Debug, Clone, PartialEq)]
pub struct VolSurfaces {
    /// The surface file.
    pub file: PathBuf,
    /// Surfaces by underlying name.
    pub by_underlying: BTreeMap<String, VolSurface>,
}

/// (strike, implied vol) marks of one underlying, by expiry.
type MarksByExpiry = BTreeMap<DateTime<Utc>, Vec<(f64, f64)>>;

/// One validated row of a surface file.
struct Mark {
    underlying: String,
    expiry: DateTime<Utc>,
    strike: f64,
    vol: f64,
    location: Location,
}

impl VolSurfaces {
    /// Reads a surface file (CSV or Parquet), checks every mark and the absence of static
    /// arbitrage, and builds one surface per underlying quoted in `market`.
    pub fn load(
        path: &Path,
        market: &MarketData,
        valuation_time: DateTime<Utc>,
    ) -> Result<VolSurfaces> {
        let table = Table::read(path)?;
        if table.is_empty() {
            return Err(Error::in_file(path, "surface file has no rows"));
        }
        for column in ["underlying", "expiry", "strike", "implied_vol"] {
            table.require_column(column)?;
        }
        let marks = read_marks(&table, market, valuation_time)?;
        let mut grouped: BTreeMap<String, MarksByExpiry> = BTreeMap::new();
        for m in &marks {
            let smile = grouped
                .entry(m.underlying.clone())
                .or_default()
                .entry(m.expiry)
                .or_default();
            if smile.iter().any(|&(k, _)| k == m.strike) {
                return Err(Error::input(
                    path,
                    m.location.clone(),
                    Some("strike"),
                    format!(
                        "{} {} strike {} is marked twice",
                        m.underlying,
                        m.expiry.to_rfc3339(),
                        m.strike
                    ),
                ));
            }
            smile.push((m.strike, m.vol));
        }
        let mut by_underlying = BTreeMap::new();
        for (underlying, expiries) in grouped {
            let quote = market.quote(&underlying).copied().ok_or_else(|| {
                Error::in_file(path, format!("'{underlying}' is not in the market file"))
            })?;
            let smiles = expiries
                .into_iter()
                .map(|(expiry, mut marks)| {
                    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let tau = years_between(valuation_time, expiry);
                    let forward = quote.spot * (quote.rate * tau).exp();
                    Smile::new(expiry, tau, forward, &marks)
                })
                .collect();
            let surface = VolSurface {
                spot: quote.spot,
                rate: quote.rate,
                smiles,
            };
            check_butterflies(path, &underlying, &surface)?;
            check_calendar(path, &underlying, &surface)?;
            by_underlying.insert(underlying, surface);
        }
        Ok(VolSurfaces {
            file: path.to_path_buf(),
            by_underlying,
        })
    }

    /// The surface of `underlying`, if the file marks it.
    pub fn surface(&self, underlying: &str) -> Option<&VolSurface> {
        self.by_underlying.get(underlying)
    }
}

/// Every row as a mark, each value checked and named on error.
fn read_marks(
    table: &Table,
    market: &MarketData,
    valuation_time: DateTime<Utc>,
) -> Result<Vec<Mark>> {
    table
        .rows()
        .map(|row| {
            let underlying = row.required_text("underlying")?;
            if market.quote(underlying).is_none() {
                return Err(row.error(
                    "underlying",
                    format!("'{underlying}' is not in the market file"),
                ));
            }
            let expiry = row.expiry_after("expiry", valuation_time)?;
            let strike = row.positive_number("strike")?;
            let vol = row.number("implied_vol")?;
            if !(vol > 0.0 && vol < 20.0) {
                return Err(row.error(
                    "implied_vol",
                    format!("must be an annualised vol in (0, 20) (0.55 means 55 %), found {vol}"),
                ));
            }
            Ok(Mark {
                underlying: underlying.to_owned(),
                expiry,
                strike,
                vol,
                location: row.location(),
            })
        })
        .collect()
}

fn arbitrage(
    path: &Path,
    underlying: &str,
    expiry: DateTime<Utc>,
    strike: f64,
    what: String,
) -> Error {
    Error::input(
        path,
        Location::File,
        None,
        format!(
            "{underlying} expiry {} strike {strike}: {what}",
            expiry.to_rfc3339()
        ),
    )
}

/// A strike rounded to 6 decimals for messages.
fn rounded(strike: f64) -> f64 {
    (strike * 1e6).round() / 1e6
}

/// Call prices at each expiry's checked strikes fall with the strike by at most the
/// discounted strike step, and are convex.
fn check_butterflies(path: &Path, underlying: &str, surface: &VolSurface) -> Result<()> {
    for smile in &surface.smiles {
        let discount = (-surface.rate * smile.tau).exp();
        let forward = surface.spot * (surface.rate * smile.tau).exp();
        let points = smile.check_points();
        let strikes: Vec<f64> = points.iter().map(|k| forward * k.exp()).collect();
        let prices: Vec<f64> = points
            .iter()
            .zip(&strikes)
            .map(|(&k, &strike)| {
                let vol = (smile.total_variance_at(k) / smile.tau).sqrt();
                bs_price(
                    OptionType::Call,
                    surface.spot,
                    strike,
                    smile.tau,
                    vol,
                    surface.rate,
                )
            })
            .collect();
        let tolerance = BUTTERFLY_TOLERANCE * discount;
        let mut previous_slope = f64::NEG_INFINITY;
        for i in 0..strikes.len().saturating_sub(1) {
            let slope = (prices[i + 1] - prices[i]) / (strikes[i + 1] - strikes[i]);
            let strike = rounded(strikes[i + 1]);
            if slope > tolerance || slope < -discount - tolerance {
                return Err(arbitrage(
                    path,
                    underlying,
                    smile.expiry,
                    strike,
                    format!(
                        "call spread arbitrage: the call price changes by {slope:.6} per unit \
                         of strike (it must lie in [−{discount:.6}, 0])"
                    ),
                ));
            }
            if slope < previous_slope - tolerance {
                return Err(arbitrage(
                    path,
                    underlying,
                    smile.expiry,
                    rounded(strikes[i]),
                    format!(
                        "butterfly arbitrage: call prices are not convex in the strike (slope \
                         {previous_slope:.6} then {slope:.6})"
                    ),
                ));
            }
            previous_slope = slope;
        }
    }
    Ok(())
}

/// Total variance does not fall from one expiry to the next at any checked log-moneyness of
/// either.
fn check_calendar(path: &Path, underlying: &str, surface: &VolSurface) -> Result<()> {
    for pair in surface.smiles.windows(2) {
        let (early, late) = (&pair[0], &pair[1]);
        let (a, b) = (early.check_points(), late.check_points());
        for &k in a.iter().chain(&b) {
            let (w_early, w_late) = (early.total_variance_at(k), late.total_variance_at(k));
            if w_late < w_early - CALENDAR_TOLERANCE {
                let forward = surface.spot * (surface.rate * late.tau).exp();
                let strike = forward * k.exp();
                return Err(arbitrage(
                    path,
                    underlying,
                    late.expiry,
                    rounded(strike),
                    format!(
                        "calendar arbitrage: total variance {w_late:.6} is below the earlier \
                         expiry {}'s {w_early:.6} at the same moneyness",
                        early.expiry.to_rfc3339()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smile(marks: &[(f64, f64)]) -> Smile {
        let expiry = DateTime::parse_from_rfc3339("2027-01-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Smile::new(expiry, 0.25, 100.0, marks)
    }

    /// The spline goes through every mark, is flat outside, and stays within the marks'
    /// range between two of them (no overshoot).
    #[test]
    fn smile_reproduces_marks_without_overshoot() {
        let s = smile(&[
            (70.0, 0.9),
            (85.0, 0.7),
            (100.0, 0.6),
            (115.0, 0.62),
            (130.0, 0.8),
        ]);
        for (k, w) in s.log_moneyness.iter().zip(&s.total_variance) {
            assert!((s.total_variance_at(*k) - w).abs() < 1e-15);
        }
        assert_eq!(s.total_variance_at(-5.0), s.total_variance[0]);
        assert_eq!(s.total_variance_at(5.0), s.total_variance[4]);
        for i in 0..4 {
            let (lo, hi) = (s.log_moneyness[i], s.log_moneyness[i + 1]);
            let (a, b) = (s.total_variance[i], s.total_variance[i + 1]);
            for j in 1..50 {
                let w = s.total_variance_at(lo + (hi - lo) * j as f64 / 50.0);
                assert!(
                    w >= a.min(b) - 1e-15 && w <= a.max(b) + 1e-15,
                    "{i} {j} {w}"
                );
            }
        }
    }

    /// Between two expiries at the same moneyness, total variance is linear in time.
    #[test]
    fn total_variance_is_linear_in_time_between_expiries() {
        let expiry = |d: &str| crate::time::parse_instant(d, 8).unwrap();
        let marks = [(90.0, 0.6), (100.0, 0.5), (110.0, 0.55)];
        let surface = VolSurface {
            spot: 100.0,
            rate: 0.0,
            smiles: vec![
                Smile::new(expiry("2027-01-01"), 0.1, 100.0, &marks),
                Smile::new(
                    expiry("2027-06-01"),
                    0.5,
                    100.0,
                    &marks.map(|(k, v)| (k, v + 0.1)),
                ),
            ],
        };
        let tau = 0.3;
        let w = 0.5 * 0.5 * 0.1 * 0.5 + 0.6 * 0.6 * 0.5 * 0.5;
        assert!((surface.vol(100.0, tau) - (w / tau).sqrt()).abs() < 1e-15);
        assert!((surface.vol(100.0, 0.05) - 0.5).abs() < 1e-15);
        assert!((surface.vol(100.0, 0.9) - 0.6).abs() < 1e-15);
    }
}
