//! VaR and ES backtests of a daily series of realised P&L against forecasts: exceptions,
//! Kupiec's proportion-of-failures test, Christoffersen's independence and conditional
//! coverage tests, the Basel traffic light, the Acerbi–Szekely Z2 test of ES, and the VaR
//! multiplier that would have met a target.
//!
//! An exception is a day whose loss (−pnl) is strictly greater than that day's VaR (SPEC).

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Location, Result};
use crate::input::table::Table;
use crate::risk::measures::count_at_rate;

/// One day: realised P&L and the VaR (and ES) forecast for it, positive = loss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// The day, as given (the series file's `date` text, or an ISO 8601 date from the rolling
    /// backtest).
    pub date: String,
    /// Realised P&L of the day in reporting currency (USD), positive = gain (the loss is −pnl).
    pub pnl: f64,
    /// VaR forecast for the day in reporting currency (USD), positive = loss.
    pub var: f64,
    /// ES forecast for the day in reporting currency (USD), positive = loss; `None` when the series
    /// has none.
    pub es: Option<f64>,
}

impl Observation {
    /// Whether the day's loss exceeded its VaR.
    pub fn exception(&self) -> bool {
        -self.pnl > self.var
    }
}

/// Kupiec's proportion-of-failures likelihood ratio (χ² with 1 degree of freedom).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kupiec {
    /// Likelihood-ratio statistic (χ²₁ under the null that the exception probability is 1 − a).
    pub lr: f64,
    /// P(χ²₁ > lr): a small value rejects the VaR's exception rate.
    pub p_value: f64,
}

/// x·ln(y), with 0·ln(0) = 0.
fn x_ln_y(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * y.ln()
    }
}

/// P(χ²₁ > x).
pub fn chi_square_1_survival(x: f64) -> f64 {
    libm::erfc((x.max(0.0) / 2.0).sqrt())
}

/// P(χ²₂ > x).
pub fn chi_square_2_survival(x: f64) -> f64 {
    (-x.max(0.0) / 2.0).exp()
}

/// Kupiec POF for `exceptions` in `observations` days at exception probability `p`.
pub fn kupiec(observations: usize, exceptions: usize, p: f64) -> Kupiec {
    let (t, x) = (observations as f64, exceptions as f64);
    let rate = x / t;
    let null = x_ln_y(t - x, 1.0 - p) + x_ln_y(x, p);
    let fitted = x_ln_y(t - x, 1.0 - rate) + x_ln_y(x, rate);
    let lr = (-2.0 * (null - fitted)).max(0.0);
    Kupiec {
        lr,
        p_value: chi_square_1_survival(lr),
    }
}

/// Christoffersen's tests on the exception sequence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Christoffersen {
    /// Independence LR (χ²₁) and its p-value.
    pub lr_ind: f64,
    /// P(χ²₁ > lr_ind): a small value rejects independence (exceptions cluster).
    pub p_value_ind: f64,
    /// Conditional coverage LR = Kupiec + independence (χ²₂) and its p-value.
    pub lr_cc: f64,
    /// P(χ²₂ > lr_cc): a small value rejects correct conditional coverage.
    pub p_value_cc: f64,
    /// Transition counts: n_ij = days in state j after a day in state i (1 = exception).
    pub n00: usize,
    /// Days with an exception after a day without one (count).
    pub n01: usize,
    /// Days without an exception after a day with one (count).
    pub n10: usize,
    /// Days with an exception after a day with one (count).
    pub n11: usize,
}

/// Christoffersen (1998) on `hits` (true = exception) at exception probability `p`.
pub fn christoffersen(hits: &[bool], p: f64) -> Christoffersen {
    let (mut n00, mut n01, mut n10, mut n11) = (0usize, 0usize, 0usize, 0usize);
    for w in hits.windows(2) {
        match (w[0], w[1]) {
            (false, false) => n00 += 1,
            (false, true) => n01 += 1,
            (true, false) => n10 += 1,
            (true, true) => n11 += 1,
        }
    }
    let f = |n: usize| n as f64;
    let pi0 = f(n01) / f(n00 + n01).max(1.0);
    let pi1 = f(n11) / f(n10 + n11).max(1.0);
    let pi = f(n01 + n11) / f(n00 + n01 + n10 + n11).max(1.0);
    let restricted = x_ln_y(f(n00 + n10), 1.0 - pi) + x_ln_y(f(n01 + n11), pi);
    let unrestricted = x_ln_y(f(n00), 1.0 - pi0)
        + x_ln_y(f(n01), pi0)
        + x_ln_y(f(n10), 1.0 - pi1)
        + x_ln_y(f(n11), pi1);
    let lr_ind = (-2.0 * (restricted - unrestricted)).max(0.0);
    let exceptions = hits.iter().filter(|&&h| h).count();
    let lr_cc = kupiec(hits.len(), exceptions, p).lr + lr_ind;
    Christoffersen {
        lr_ind,
        p_value_ind: chi_square_1_survival(lr_ind),
        lr_cc,
        p_value_cc: chi_square_2_survival(lr_cc),
        n00,
        n01,
        n10,
        n11,
    }
}

/// P(X ≤ x) for X ~ Binomial(n, p).
pub fn binomial_cdf(x: usize, n: usize, p: f64) -> f64 {
    let ln_choose = |k: usize| {
        libm::lgamma(n as f64 + 1.0)
            - libm::lgamma(k as f64 + 1.0)
            - libm::lgamma((n - k) as f64 + 1.0)
    };
    (0..=x.min(n))
        .map(|k| (ln_choose(k) + x_ln_y(k as f64, p) + x_ln_y((n - k) as f64, 1.0 - p)).exp())
        .sum::<f64>()
        .min(1.0)
}

/// Days of the Basel traffic light.
pub const TRAFFIC_LIGHT_DAYS: usize = 250;

/// The Basel traffic light over the last [`TRAFFIC_LIGHT_DAYS`] observations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrafficLight {
    /// `green` (cumulative probability below 95 %), `yellow` (below 99.99 %) or `red`.
    pub zone: &'static str,
    /// Exceptions in the `observations` days judged (count).
    pub exceptions: usize,
    /// Days the zone is judged on (count; [`TRAFFIC_LIGHT_DAYS`] in a backtest).
    pub observations: usize,
    /// P(X ≤ exceptions) for X ~ Binomial(observations, 1 − a).
    pub cumulative_probability: f64,
    /// The Basel capital multiplier (3 + plus factor), given only for 250 days at 99 %.
    pub multiplier: Option<f64>,
}

/// The zone of `exceptions` in `observations` days at exception probability `p`.
pub fn traffic_light(observations: usize, exceptions: usize, p: f64) -> TrafficLight {
    let cumulative_probability = binomial_cdf(exceptions, observations, p);
    let zone = if cumulative_probability < 0.95 {
        "green"
    } else if cumulative_probability < 0.9999 {
        "yellow"
    } else {
        "red"
    };
    let basel = observations == TRAFFIC_LIGHT_DAYS && (p - 0.01).abs() < 1e-12;
    let multiplier = basel.then_some(match exceptions {
        0..=4 => 3.0,
        5 => 3.4,
        6 => 3.5,
        7 => 3.65,
        8 => 3.75,
        9 => 3.85,
        _ => 4.0,
    });
    TrafficLight {
        zone,
        exceptions,
        observations,
        cumulative_probability,
        multiplier,
    }
}

/// The largest exception count still green for `observations` days at probability `p`.
pub fn green_limit(observations: usize, p: f64) -> usize {
    (0..=observations)
        .take_while(|&x| binomial_cdf(x, observations, p) < 0.95)
        .last()
        .unwrap_or(0)
}

/// Acerbi–Szekely (2014) Z2 test of ES: Z2 = Σ L_t·1{L_t > VaR_t} / (T·(1 − a)·ES_t) − 1.
/// 0 under a correct ES; positive when the tail is underestimated. Their suggested
/// thresholds (Student-t tails, 3–100 dof): 0.70 at 5 % significance, 1.8 at 0.01 %.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EsTest {
    /// The Z2 statistic (dimensionless): 0 under a correct ES, positive when the tail is
    /// underestimated.
    pub z2: f64,
    /// `green` (Z2 ≤ 0.70), `yellow` (≤ 1.8) or `red`.
    pub zone: &'static str,
}

/// Z2 of the observations that carry an ES forecast (`None` if none do).
pub fn acerbi_szekely_z2(series: &[Observation], confidence: f64) -> Option<EsTest> {
    let with_es: Vec<(&Observation, f64)> = series
        .iter()
        .filter_map(|o| o.es.map(|es| (o, es)))
        .collect();
    if with_es.is_empty() {
        return None;
    }
    let t = with_es.len() as f64;
    let sum: f64 = with_es
        .iter()
        .filter(|(o, _)| o.exception())
        .map(|(o, es)| -o.pnl / es)
        .sum();
    let z2 = sum / (t * (1.0 - confidence)) - 1.0;
    let zone = if z2 <= 0.70 {
        "green"
    } else if z2 <= 1.8 {
        "yellow"
    } else {
        "red"
    };
    Some(EsTest { z2, zone })
}

/// The VaR multiplier k at which k·VaR would have allowed exactly `allowed` exceptions:
/// the (allowed + 1)-th largest loss-to-VaR ratio (exceptions are strictly above k·VaR).
pub fn multiplier_for(series: &[Observation], allowed: usize) -> f64 {
    let mut ratios: Vec<f64> = series.iter().map(|o| -o.pnl / o.var).collect();
    ratios.sort_by(|a, b| b.total_cmp(a));
    ratios.get(allowed).copied().unwrap_or(0.0)
}

/// What a limit would have needed over the history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LimitCalibration {
    /// Smallest multiplier of VaR with a green traffic light over the last 250 days; `None`
    /// (JSON null) when the series is shorter than [`TRAFFIC_LIGHT_DAYS`].
    pub green_multiplier: Option<f64>,
    /// Smallest multiplier with an exception rate of at most `target_rate` over all days.
    pub rate_multiplier: f64,
    /// Exception rate `rate_multiplier` targets, as a fraction (0.01 = 1 %); 1 − confidence unless
    /// given.
    pub target_rate: f64,
}

/// Fewest observations a backtest accepts.
///
/// 100 days: with fewer, the tests cannot tell a good VaR model from a bad one. At 99 % a
/// correct model expects less than one exception in fewer than 100 days, so zero, one or
/// two exceptions are all ordinary outcomes; Kupiec's LR could not reject even a model that
/// is never breached (zero exceptions reach 5 % significance only from 192 days at 99 %),
/// and the χ² approximations of the LR statistics need several expected exceptions. 100
/// days is the shortest series for which the exception rate at 95–99 % carries any
/// information; the Basel traffic light needs the full [`TRAFFIC_LIGHT_DAYS`] on top.
pub const MIN_OBSERVATIONS: usize = 100;

/// The full backtest of one series (JSON `backtest`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    /// VaR confidence level tested, as a fraction (0.99 = 99 %).
    pub confidence: f64,
    /// Days in the series (count).
    pub observations: usize,
    /// Days whose loss (−pnl) was strictly above that day's VaR (count).
    pub exceptions: usize,
    /// `exceptions / observations`, as a fraction (1 − confidence expected).
    pub exception_rate: f64,
    /// Kupiec's proportion-of-failures test over all days.
    pub kupiec: Kupiec,
    /// Christoffersen's independence and conditional coverage tests over all days.
    pub christoffersen: Christoffersen,
    /// The Basel traffic light over the last [`TRAFFIC_LIGHT_DAYS`] days; `None` (JSON null)
    /// when the series is shorter: the zones are defined for 250 days only.
    pub traffic_light: Option<TrafficLight>,
    /// Acerbi–Szekely Z2 test of ES over the days with an ES forecast; `None` (left out of the
    /// JSON) when no day has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub es_test: Option<EsTest>,
    /// VaR multipliers that would have met the traffic light and the target exception rate.
    pub limits: LimitCalibration,
}

/// Backtests `series` (date order) at `confidence`; the limit targets an exception rate of
/// `target_rate` (default 1 − a). A series of fewer than [`MIN_OBSERVATIONS`] days is an
/// input error about `source`, the file the series comes from.
pub fn backtest(
    series: &[Observation],
    confidence: f64,
    target_rate: Option<f64>,
    source: &Path,
) -> Result<Backtest> {
    if series.len() < MIN_OBSERVATIONS {
        return Err(Error::in_file(
            source,
            format!(
                "a backtest needs at least {MIN_OBSERVATIONS} daily observations, found {}",
                series.len()
            ),
        ));
    }
    let p = 1.0 - confidence;
    let hits: Vec<bool> = series.iter().map(Observation::exception).collect();
    let exceptions = hits.iter().filter(|&&h| h).count();
    let last = &series[series.len().saturating_sub(TRAFFIC_LIGHT_DAYS)..];
    let light = (last.len() == TRAFFIC_LIGHT_DAYS).then(|| {
        let last_exceptions = last.iter().filter(|o| o.exception()).count();
        traffic_light(last.len(), last_exceptions, p)
    });
    let target_rate = target_rate.unwrap_or(p);
    Ok(Backtest {
        confidence,
        observations: series.len(),
        exceptions,
        exception_rate: exceptions as f64 / series.len() as f64,
        kupiec: kupiec(series.len(), exceptions, p),
        christoffersen: christoffersen(&hits, p),
        traffic_light: light,
        es_test: acerbi_szekely_z2(series, confidence),
        limits: LimitCalibration {
            green_multiplier: light.map(|_| multiplier_for(last, green_limit(last.len(), p))),
            rate_multiplier: multiplier_for(series, count_at_rate(series.len(), target_rate)),
            target_rate,
        },
    })
}

/// Reads a series file: `date,pnl,var` and optionally `es` (SPEC `backtest --series`).
pub fn load_series(path: &Path) -> Result<Vec<Observation>> {
    let table = Table::read(path)?;
    for column in ["date", "pnl", "var"] {
        table.require_column(column)?;
    }
    let mut series = Vec::with_capacity(table.len());
    for row in table.rows() {
        let var = row.number("var")?;
        if var <= 0.0 {
            return Err(row.error("var", format!("VaR must be a positive loss, found {var}")));
        }
        let es = row.optional_number("es")?;
        if let Some(es) = es {
            if es < var {
                return Err(row.error("es", format!("ES {es} is below the VaR {var}")));
            }
        }
        series.push(Observation {
            date: row.required_text("date")?.to_owned(),
            pnl: row.number("pnl")?,
            var,
            es,
        });
    }
    if series.is_empty() {
        return Err(Error::input(
            path,
            Location::File,
            None,
            "series has no rows",
        ));
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four days at 99 %, ES 10 each, one exception losing 30:
    /// Z2 = 30 / (4 · 0.01 · 10) − 1 = 74, by hand.
    #[test]
    fn z2_by_hand() {
        let day = |pnl: f64| Observation {
            date: String::new(),
            pnl,
            var: 8.0,
            es: Some(10.0),
        };
        let series = [day(-1.0), day(-30.0), day(2.0), day(-8.0)];
        let test = acerbi_szekely_z2(&series, 0.99).unwrap();
        assert!((test.z2 - 74.0).abs() < 1e-12, "{test:?}");
        assert_eq!(test.zone, "red");
        // a loss equal to VaR is not an exception
        assert!(!day(-8.0).exception());
    }
}
