//! Calibration of the risk-factor model from daily history: per-factor annualised
//! volatilities (EWMA or sample), a pairwise correlation matrix (repaired with Higham's
//! method when it comes out indefinite) and the Student-t degrees of freedom by maximum
//! likelihood on standardised returns.
//!
//! Returns are log returns between consecutive observations of a series, divided by √(gap
//! in days), so a return over a weekend or a missing day counts as that many daily
//! variances. Spot factors come from price columns (`U` or `U:close`); implied-vol factors
//! from an optional vol history (see [`crate::model::vol_history`]): either one level per
//! underlying (wide: columns `U` or `U:vol`, factor `U.vol`) or ATM vols at tenor pillars
//! (long: `date, underlying, tenor_days, vol`, one factor `U.vol.{N}d` per tenor, the
//! scenario file's `vol_pillars`). Each vol factor is the log of its implied-vol level, with
//! the same returns and estimators as spot. Without a vol history for U, `U.vol` gets
//! documented defaults: vol of vol [`DEFAULT_VOL_OF_VOL`], corr(U.spot, U.vol) =
//! [`DEFAULT_SPOT_VOL_CORRELATION`] (and −0.3·ρ(U, V) across underlyings), corr(U.vol, V.vol)
//! = [`DEFAULT_VOL_VOL_CORRELATION`]. A pillar factor whose correlation cannot be measured
//! (too few common returns) takes the default of its underlying's `U.vol`, and two pillars
//! of one underlying [`DEFAULT_PILLAR_CORRELATION`].
//!
//! - EWMA (RiskMetrics): weights λ^k on the k-th most recent return (zero mean), over the
//!   last `window` returns when given.
//! - Sample: equal weights with the sample mean removed, over the last `window` returns.
//! - Correlation of two factors: the same weights on the returns both have for the same end
//!   date and gap.
//! - dof: the unit-variance Student-t log-likelihood of the spot returns standardised by
//!   their one-day-ahead volatility (EWMA: the filtered volatility known the day before;
//!   sample: the window's), pooled over underlyings, maximised over ν in (2, 200] by
//!   golden-section search on ln(ν − 2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::NaiveDate;
use faer::Mat;
use serde::Serialize;

use crate::error::Result;
use crate::input::table::Table;
use crate::model::correlation::{
    nearest_correlation, smallest_eigenvalue, RepairReport, MIN_EIGENVALUE,
};
use crate::model::vol_history::{is_pillar_table, read_pillars};
use crate::stress::replay::PriceHistory;
use crate::time::DAYS_PER_YEAR;

/// Vol of vol of `U.vol` without a vol history (annualised, of ln implied vol).
pub const DEFAULT_VOL_OF_VOL: f64 = 1.0;
/// corr(U.spot, U.vol) without a vol history.
pub const DEFAULT_SPOT_VOL_CORRELATION: f64 = -0.3;
/// corr(U.vol, V.vol) without a vol history.
pub const DEFAULT_VOL_VOL_CORRELATION: f64 = 0.5;
/// corr(U.vol.{N}d, U.vol.{M}d) of two pillars of one underlying whose returns have too few
/// dates in common (1, their `U.vol` default, would make the matrix singular).
pub const DEFAULT_PILLAR_CORRELATION: f64 = 0.8;
/// The tenor (calendar days) whose pillar, or the nearest one, gives an underlying's summary
/// `vol_of_vol` when it has pillars.
pub const SUMMARY_TENOR_DAYS: u32 = 30;
/// Largest degrees of freedom reported; a fit at this bound means "as thin as normal".
pub const MAX_DOF: f64 = 200.0;
/// Fewest common returns for a pairwise correlation; fewer give 0.
pub const MIN_COMMON_RETURNS: usize = 20;

/// How volatilities and correlations weight the past.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Weighting {
    /// Exponentially weighted, decay λ per day.
    Ewma {
        /// Decay factor λ in (0, 1), e.g. 0.94: the k-th most recent return weighs λ^k.
        lambda: f64,
    },
    /// Equally weighted, mean removed.
    Sample,
}

/// Daily (gap-normalised) log returns of one factor, by end date.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnSeries {
    /// (end date, gap in days, return per √day).
    pub returns: Vec<(NaiveDate, u32, f64)>,
}

impl ReturnSeries {
    /// Returns of a price (or implied-vol level) series sorted by date.
    pub fn from_levels(levels: &[(NaiveDate, f64)]) -> ReturnSeries {
        let returns = levels
            .windows(2)
            .filter_map(|w| {
                let gap = (w[1].0 - w[0].0).num_days();
                (gap > 0).then(|| {
                    let gap = gap as u32;
                    (w[1].0, gap, (w[1].1 / w[0].1).ln() / f64::from(gap).sqrt())
                })
            })
            .collect();
        ReturnSeries { returns }
    }

    /// The returns ending strictly before `date` (all when `None`), the last `window` of them.
    pub fn before(&self, date: Option<NaiveDate>, window: Option<usize>) -> ReturnSeries {
        let end = date.map_or(self.returns.len(), |d| {
            self.returns.partition_point(|r| r.0 < d)
        });
        let start = window.map_or(0, |w| end.saturating_sub(w));
        ReturnSeries {
            returns: self.returns[start..end].to_vec(),
        }
    }
}

/// Implied-vol return series by underlying, from one of the two vol-history layouts.
#[derive(Debug, Clone, PartialEq)]
pub enum VolHistory {
    /// One implied-vol level per underlying (wide file): underlying → returns of ln implied
    /// vol, for the single factor `U.vol`.
    Levels(BTreeMap<String, ReturnSeries>),
    /// ATM implied vols at tenor pillars (long file): underlying → tenor in calendar days →
    /// returns of ln ATM implied vol, for the factors `U.vol.{N}d`.
    Pillars(BTreeMap<String, BTreeMap<u32, ReturnSeries>>),
}

impl Default for VolHistory {
    /// No vol history: every underlying gets the default `U.vol`.
    fn default() -> Self {
        VolHistory::Levels(BTreeMap::new())
    }
}

/// Weights of `n` returns, oldest first, summing to 1.
fn weights(n: usize, weighting: Weighting) -> Vec<f64> {
    let raw: Vec<f64> = match weighting {
        Weighting::Ewma { lambda } => (0..n).map(|i| lambda.powi((n - 1 - i) as i32)).collect(),
        Weighting::Sample => vec![1.0; n],
    };
    let total: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / total).collect()
}

/// Weighted second moment (EWMA, zero mean) or variance (sample) of values, oldest first.
fn weighted_variance(values: &[f64], weighting: Weighting) -> f64 {
    weighted_covariance(values, values, weighting)
}

fn weighted_covariance(a: &[f64], b: &[f64], weighting: Weighting) -> f64 {
    let n = a.len();
    if n < 2 {
        return f64::NAN;
    }
    let w = weights(n, weighting);
    let (ma, mb) = match weighting {
        Weighting::Ewma { .. } => (0.0, 0.0),
        Weighting::Sample => (
            a.iter().sum::<f64>() / n as f64,
            b.iter().sum::<f64>() / n as f64,
        ),
    };
    let bessel = match weighting {
        Weighting::Ewma { .. } => 1.0,
        Weighting::Sample => n as f64 / (n as f64 - 1.0),
    };
    bessel
        * (0..n)
            .map(|i| w[i] * (a[i] - ma) * (b[i] - mb))
            .sum::<f64>()
}

/// Annualised volatility of a return series (365-day year).
pub fn annualised_vol(series: &ReturnSeries, weighting: Weighting) -> f64 {
    let values: Vec<f64> = series.returns.iter().map(|r| r.2).collect();
    (weighted_variance(&values, weighting) * DAYS_PER_YEAR).sqrt()
}

/// Correlation of two return series over the returns with the same end date and gap.
/// `None` with fewer than [`MIN_COMMON_RETURNS`] in common.
pub fn pairwise_correlation(
    a: &ReturnSeries,
    b: &ReturnSeries,
    weighting: Weighting,
) -> Option<f64> {
    let index: BTreeMap<(NaiveDate, u32), f64> =
        b.returns.iter().map(|&(d, g, r)| ((d, g), r)).collect();
    let (xa, xb): (Vec<f64>, Vec<f64>) = a
        .returns
        .iter()
        .filter_map(|&(d, g, r)| index.get(&(d, g)).map(|&s| (r, s)))
        .unzip();
    if xa.len() < MIN_COMMON_RETURNS {
        return None;
    }
    let cov = weighted_covariance(&xa, &xb, weighting);
    let scale = (weighted_variance(&xa, weighting) * weighted_variance(&xb, weighting)).sqrt();
    (scale > 0.0).then(|| (cov / scale).clamp(-1.0, 1.0))
}

/// Returns standardised by their one-day-ahead volatility: EWMA filtered (seeded with the
/// first 20 returns' mean square) or the window's sample volatility.
pub fn standardised(series: &ReturnSeries, weighting: Weighting) -> Vec<f64> {
    let values: Vec<f64> = series.returns.iter().map(|r| r.2).collect();
    match weighting {
        Weighting::Sample => {
            let sd = weighted_variance(&values, weighting).sqrt();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            values.iter().map(|v| (v - mean) / sd).collect()
        }
        Weighting::Ewma { lambda } => {
            let seed = values.len().min(20);
            if seed < 2 {
                return Vec::new();
            }
            let mut variance = values[..seed].iter().map(|v| v * v).sum::<f64>() / seed as f64;
            let mut out = Vec::with_capacity(values.len() - seed);
            for &v in &values[seed..] {
                if variance > 0.0 {
                    out.push(v / variance.sqrt());
                }
                variance = lambda * variance + (1.0 - lambda) * v * v;
            }
            out
        }
    }
}

/// Log-likelihood of unit-variance Student-t with `dof` for standardised values.
pub fn t_log_likelihood(z: &[f64], dof: f64) -> f64 {
    let constant = libm::lgamma((dof + 1.0) / 2.0)
        - libm::lgamma(dof / 2.0)
        - 0.5 * (std::f64::consts::PI * (dof - 2.0)).ln();
    z.iter()
        .map(|x| constant - (dof + 1.0) / 2.0 * (x * x / (dof - 2.0)).ln_1p())
        .sum()
}

/// Maximum-likelihood degrees of freedom of unit-variance Student-t for `z`, in (2, MAX_DOF].
pub fn fit_dof(z: &[f64]) -> f64 {
    let f = |u: f64| -t_log_likelihood(z, 2.0 + u.exp());
    let (mut a, mut b) = ((0.01_f64).ln(), (MAX_DOF - 2.0).ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > 1e-7 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - ratio * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + ratio * (b - a);
            fd = f(d);
        }
    }
    2.0 + ((a + b) / 2.0).exp()
}

/// A calibrated model, ready to print as a scenario file's `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// How the returns were weighted (EWMA decay or equal weights).
    pub weighting: Weighting,
    /// Returns used per series (the last N before the cut-off), all when `None`.
    pub window: Option<usize>,
    /// Last return date used.
    pub last_date: Option<String>,
    /// Student-t degrees of freedom fitted by maximum likelihood on the standardised spot returns:
    /// above 2, at most [`MAX_DOF`], and [`MAX_DOF`] itself when there are 10 standardised
    /// returns or fewer.
    pub dof: f64,
    /// Per underlying, sorted by name: spot vol, vol of vol (per pillar with a pillar
    /// history), whether the vol parameters come from history.
    pub underlyings: Vec<CalibratedUnderlying>,
    /// Factor names in matrix order: every `U.spot`, then per underlying (sorted by name) its
    /// vol factors: `U.vol`, or with a pillar history `U.vol.{N}d` by ascending tenor N.
    pub factors: Vec<String>,
    /// Correlation matrix of `factors` (same order), repaired by Higham's method when the pairwise
    /// estimate was indefinite.
    pub correlation: Vec<Vec<f64>>,
    /// Pairs with too few common returns (correlation set to 0 or the default).
    pub sparse_pairs: Vec<(String, String)>,
    /// What Higham's repair changed; `None` when no repair was needed (or it did not converge).
    pub repair: Option<RepairReport>,
    /// Remarks on the inputs, printed as comments (e.g. vol-history underlyings that were not
    /// calibrated); empty from [`calibrate`] itself.
    pub notes: Vec<String>,
}

/// One underlying's calibrated parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibratedUnderlying {
    /// Underlying name (price column `U` or `U:close`).
    pub name: String,
    /// Annualised volatility of ln(spot) as a fraction (0.55 = 55 %), 365-day year.
    pub spot_vol: f64,
    /// Annualised volatility of ln(implied vol) as a fraction (1.0 = 100 %), 365-day year;
    /// [`DEFAULT_VOL_OF_VOL`] without a vol history. With pillars, a summary: the value of the
    /// pillar nearest [`SUMMARY_TENOR_DAYS`] (the shorter on a tie); the model takes
    /// `pillar_vol_of_vol`.
    pub vol_of_vol: f64,
    /// True when `vol_of_vol` (or `pillar_vol_of_vol`) and its correlations come from a vol
    /// history.
    pub vol_from_history: bool,
    /// Returns used for the spot vol.
    pub returns: usize,
    /// Tenor pillars in calendar days, ascending (factors `U.vol.{N}d`); empty without a pillar
    /// history for this underlying (single factor `U.vol`).
    pub vol_pillars: Vec<u32>,
    /// Annualised volatility of ln(ATM implied vol) at each of `vol_pillars`, same order, as a
    /// fraction, 365-day year; empty without pillars.
    pub pillar_vol_of_vol: Vec<f64>,
}

/// One implied-vol factor of the calibration.
struct VolFactor {
    /// Index of its underlying among the spot names.
    owner: usize,
    /// Tenor pillar in days; `None` for the single factor `U.vol`.
    tenor: Option<u32>,
    /// Its returns (cut to the window); `None` without history (defaults).
    series: Option<ReturnSeries>,
}

/// Calibrates from spot return series and an implied-vol history (levels or pillars), by
/// underlying name; vol series of underlyings without spot series are ignored. `before`
/// restricts to returns ending strictly before a date, `window` to the last N of each series.
pub fn calibrate(
    spots: &BTreeMap<String, ReturnSeries>,
    vols: &VolHistory,
    weighting: Weighting,
    window: Option<usize>,
    before: Option<NaiveDate>,
) -> Calibration {
    let cut = |s: &ReturnSeries| s.before(before, window);
    let spots: BTreeMap<&String, ReturnSeries> = spots.iter().map(|(k, v)| (k, cut(v))).collect();
    let names: Vec<&String> = spots.keys().copied().collect();
    let vol_factors: Vec<VolFactor> = names
        .iter()
        .enumerate()
        .flat_map(|(owner, name)| {
            let single = |series: Option<ReturnSeries>| {
                vec![VolFactor {
                    owner,
                    tenor: None,
                    series,
                }]
            };
            match vols {
                VolHistory::Levels(levels) => single(levels.get(*name).map(cut)),
                VolHistory::Pillars(pillars) => match pillars.get(*name) {
                    Some(p) if !p.is_empty() => p
                        .iter()
                        .map(|(&tenor, s)| VolFactor {
                            owner,
                            tenor: Some(tenor),
                            series: Some(cut(s)),
                        })
                        .collect(),
                    _ => single(None),
                },
            }
        })
        .collect();
    let underlyings: Vec<CalibratedUnderlying> = spots
        .iter()
        .enumerate()
        .map(|(owner, (name, s))| {
            let own: Vec<&VolFactor> = vol_factors.iter().filter(|f| f.owner == owner).collect();
            let vols_of_vol: Vec<f64> = own
                .iter()
                .map(|f| {
                    f.series
                        .as_ref()
                        .map_or(DEFAULT_VOL_OF_VOL, |v| annualised_vol(v, weighting))
                })
                .collect();
            let pillars: Vec<u32> = own.iter().filter_map(|f| f.tenor).collect();
            let summary = pillars
                .iter()
                .enumerate()
                .min_by_key(|&(_, &t)| (t.abs_diff(SUMMARY_TENOR_DAYS), t))
                .map_or(0, |(i, _)| i);
            CalibratedUnderlying {
                name: (*name).clone(),
                spot_vol: annualised_vol(s, weighting),
                vol_of_vol: vols_of_vol[summary],
                vol_from_history: own.iter().any(|f| f.series.is_some()),
                returns: s.returns.len(),
                pillar_vol_of_vol: if pillars.is_empty() {
                    Vec::new()
                } else {
                    vols_of_vol
                },
                vol_pillars: pillars,
            }
        })
        .collect();
    let n = names.len();
    let mut factors: Vec<String> = names.iter().map(|n| format!("{n}.spot")).collect();
    factors.extend(vol_factors.iter().map(|f| match f.tenor {
        None => format!("{}.vol", names[f.owner]),
        Some(t) => format!("{}.vol.{t}d", names[f.owner]),
    }));
    let series = |f: usize| -> Option<&ReturnSeries> {
        if f < n {
            spots.get(names[f])
        } else {
            vol_factors[f - n].series.as_ref()
        }
    };
    // the underlying a vol factor belongs to, by factor index
    let owners: Vec<usize> = vol_factors.iter().map(|f| f.owner).collect();
    let k = factors.len();
    let mut matrix = vec![vec![0.0; k]; k];
    let mut sparse_pairs = Vec::new();
    for i in 0..k {
        matrix[i][i] = 1.0;
        for j in 0..i {
            let measured = match (series(i), series(j)) {
                (Some(a), Some(b)) => {
                    let rho = pairwise_correlation(a, b, weighting);
                    if rho.is_none() {
                        sparse_pairs.push((factors[j].clone(), factors[i].clone()));
                    }
                    rho
                }
                _ => None,
            };
            let rho = measured.unwrap_or_else(|| {
                default_correlation(i, j, n, &owners, |a, b| {
                    series(a)
                        .zip(series(b))
                        .and_then(|(x, y)| pairwise_correlation(x, y, weighting))
                        .unwrap_or(0.0)
                })
            });
            matrix[i][j] = rho;
            matrix[j][i] = rho;
        }
    }
    let (correlation, repair) = positive_definite(matrix);
    let z: Vec<f64> = spots
        .values()
        .flat_map(|s| standardised(s, weighting))
        .collect();
    Calibration {
        weighting,
        window,
        last_date: spots
            .values()
            .filter_map(|s| s.returns.last().map(|r| r.0))
            .max()
            .map(|d| d.to_string()),
        dof: if z.len() > 10 { fit_dof(&z) } else { MAX_DOF },
        underlyings,
        factors,
        correlation,
        sparse_pairs,
        repair,
        notes: Vec::new(),
    }
}

/// The default correlation of factors i > j (the `n` spots first, then the vol factors, the
/// vol factor `n + v` belonging to underlying `owners[v]`) when no history measures it;
/// `spot_rho(a, b)` is the measured correlation of spots a and b.
fn default_correlation(
    i: usize,
    j: usize,
    n: usize,
    owners: &[usize],
    spot_rho: impl Fn(usize, usize) -> f64,
) -> f64 {
    match (i >= n, j >= n) {
        (false, false) => 0.0,
        (true, true) => {
            if owners[i - n] == owners[j - n] {
                DEFAULT_PILLAR_CORRELATION
            } else {
                DEFAULT_VOL_VOL_CORRELATION
            }
        }
        (true, false) | (false, true) => {
            let (spot, vol) = if i < n {
                (i, owners[j - n])
            } else {
                (j, owners[i - n])
            };
            if spot == vol {
                DEFAULT_SPOT_VOL_CORRELATION
            } else {
                DEFAULT_SPOT_VOL_CORRELATION * spot_rho(spot, vol)
            }
        }
    }
}

/// The matrix, or its nearest correlation matrix when not positive definite.
fn positive_definite(matrix: Vec<Vec<f64>>) -> (Vec<Vec<f64>>, Option<RepairReport>) {
    let k = matrix.len();
    let m = Mat::from_fn(k, k, |i, j| matrix[i][j]);
    if smallest_eigenvalue(m.as_ref()) > MIN_EIGENVALUE {
        return (matrix, None);
    }
    match nearest_correlation(m.as_ref()) {
        Some((repaired, report)) => (
            (0..k)
                .map(|i| (0..k).map(|j| repaired[(i, j)]).collect())
                .collect(),
            Some(report),
        ),
        None => (matrix, None),
    }
}

impl Calibration {
    /// The `[model]` section of a scenario file, with a comment on its origin.
    pub fn to_toml(&self, source: &str) -> String {
        let mut out = String::new();
        let method = match self.weighting {
            Weighting::Ewma { lambda } => format!("EWMA, lambda {lambda}"),
            Weighting::Sample => "sample".to_owned(),
        };
        let _ = writeln!(
            out,
            "# Calibrated by `tailrisk calibrate` from {source}: {method}, window {}, last return {}.",
            self.window.map_or("all returns".to_owned(), |w| format!("{w} returns")),
            self.last_date.as_deref().unwrap_or("none")
        );
        if let Some(r) = &self.repair {
            let _ = writeln!(
                out,
                "# The pairwise correlation matrix was indefinite (smallest eigenvalue {:.4}); \
                 repaired by Higham's method (Frobenius distance {:.4}).",
                r.min_eigenvalue_before, r.frobenius_distance
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "# note: {note}");
        }
        for (a, b) in &self.sparse_pairs {
            let _ = writeln!(
                out,
                "# too few common returns for corr({a}, {b}): default used"
            );
        }
        let _ = writeln!(
            out,
            "[model]\ndistribution = \"student-t\"\ndof = {:.4}",
            self.dof
        );
        for u in &self.underlyings {
            let origin = if u.vol_from_history {
                "from the vol history"
            } else {
                "default: no implied-vol history"
            };
            if u.vol_pillars.is_empty() {
                let _ = writeln!(
                    out,
                    "\n[model.factors.{}]\nspot_vol = {:.6}   # {} returns\nvol_of_vol = {:.6}   # {origin}",
                    u.name, u.spot_vol, u.returns, u.vol_of_vol
                );
            } else {
                let pillars: Vec<String> = u.vol_pillars.iter().map(u32::to_string).collect();
                let vols: Vec<String> = u
                    .pillar_vol_of_vol
                    .iter()
                    .map(|v| format!("{v:.6}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "\n[model.factors.{}]\nspot_vol = {:.6}   # {} returns\n\
                     vol_pillars = [{}]   # tenor days\nvol_of_vol = [{}]   # per pillar, {origin}",
                    u.name,
                    u.spot_vol,
                    u.returns,
                    pillars.join(", "),
                    vols.join(", ")
                );
            }
        }
        let quoted: Vec<String> = self.factors.iter().map(|f| format!("\"{f}\"")).collect();
        let _ = writeln!(
            out,
            "\n[model.correlation]\nfactors = [{}]\nmatrix = [",
            quoted.join(", ")
        );
        for row in &self.correlation {
            let cells: Vec<String> = row.iter().map(|x| format!("{x:.10}")).collect();
            let _ = writeln!(out, "  [{}],", cells.join(", "));
        }
        out.push_str("]\n");
        out
    }
}
/// The return series a calibration starts from, as read by [`load_returns`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryReturns {
    /// underlying → returns of ln spot.
    pub spots: BTreeMap<String, ReturnSeries>,
    /// The implied-vol returns of the same underlyings (levels or pillars; empty levels
    /// without a vol history).
    pub vols: VolHistory,
    /// Remarks for the calibration's `notes` (e.g. vol-history underlyings ignored).
    pub notes: Vec<String>,
}

/// The spot return series of `underlyings` (all price columns when empty) from the daily
/// price history `history`, and the implied-vol return series of the same underlyings from
/// `vol_history`: wide (`U` or `U:vol` columns) or long (`date, underlying, tenor_days, vol`,
/// see [`crate::model::vol_history`]); no vol series without one. Underlyings of a long vol
/// history that are not calibrated are ignored with a note.
pub fn load_returns(
    history: &Path,
    vol_history: Option<&Path>,
    underlyings: &[String],
) -> Result<HistoryReturns> {
    let names: Vec<&str> = underlyings.iter().map(String::as_str).collect();
    let chosen = (!names.is_empty()).then_some(names.as_slice());
    let to_returns = |h: PriceHistory| -> BTreeMap<String, ReturnSeries> {
        h.series
            .iter()
            .map(|(u, levels)| (u.clone(), ReturnSeries::from_levels(levels)))
            .collect()
    };
    let spots = to_returns(PriceHistory::load_levels(history, chosen, ":close")?);
    let mut notes = Vec::new();
    let vols = match vol_history {
        Some(path) => {
            let spot_names: Vec<&str> = spots.keys().map(String::as_str).collect();
            let table = Table::read(path)?;
            if is_pillar_table(&table) {
                let pillars = read_pillars(&table, &spot_names)?;
                if !pillars.ignored.is_empty() {
                    notes.push(format!(
                        "{}: rows of {} ignored (not in the price history, or not among \
                         --underlyings)",
                        path.display(),
                        pillars.ignored.join(", ")
                    ));
                }
                VolHistory::Pillars(
                    pillars
                        .series
                        .into_iter()
                        .map(|(u, by_tenor)| {
                            let returns = by_tenor
                                .into_iter()
                                .map(|(t, levels)| (t, ReturnSeries::from_levels(&levels)))
                                .collect();
                            (u, returns)
                        })
                        .collect(),
                )
            } else {
                VolHistory::Levels(to_returns(PriceHistory::from_table(
                    &table,
                    Some(&spot_names),
                    ":vol",
                )?))
            }
        }
        None => VolHistory::default(),
    };
    Ok(HistoryReturns { spots, vols, notes })
}
