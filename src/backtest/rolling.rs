//! The rolling out-of-sample backtest of the static book: each day t, calibrate the model on
//! the returns before t only, forecast the 1-day VaR and ES by Monte Carlo, and revalue
//! today's book with the moves realised on day t.
//!
//! The history has prices only, so implied vols are held fixed on both sides (the forecast
//! model has no vol factors; the realised P&L keeps vols unchanged), and positions on
//! underlyings without a price column are left out (reported). Days are used when every
//! underlying of the book has a one-day return ending that day and at least
//! [`MIN_HISTORY`] returns before it.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;

use crate::backtest::statistics::{Observation, MIN_OBSERVATIONS};
use crate::book::aggregate::AggregatedBook;
use crate::book::instrument::Instrument;
use crate::book::positions::{Book, Position};
use crate::error::{Error, Result};
use crate::input::job::Job;
use crate::input::scenario::{
    ChiSquareMixing, CorrelationSpec, Distribution, FactorSpec, ModelSpec, SmileDynamics,
};
use crate::market::USD_STABLECOINS;
use crate::mc::paths::PathMove;
use crate::mc::simulation::{SimulationSettings, Simulator};
use crate::mc::threads::Threads;
use crate::model::calibration::{calibrate, ReturnSeries, VolHistory, Weighting};
use crate::model::factors::FactorModel;
use crate::pricing::revaluation::Revaluer;
use crate::risk::measures::var_es;

/// Fewest past returns per underlying before a day can be forecast.
pub const MIN_HISTORY: usize = 60;

/// The forecast distribution of the rolling model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShockModel {
    /// Student-t with the dof fitted each day.
    StudentT,
    /// Normal shocks (no fitted dof): the thin-tailed alternative.
    Normal,
}

/// How the rolling backtest forecasts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RollingSettings {
    /// How each day's calibration weights past returns (EWMA decay or equal weights).
    pub weighting: Weighting,
    /// Returns per calibration (the last N before the day), all when `None`.
    pub window: Option<usize>,
    /// Forecast shock distribution: Student-t with the dof fitted each day, or normal.
    pub shocks: ShockModel,
    /// Backtest only the last `days` usable days, all when `None`.
    pub days: Option<usize>,
    /// Monte Carlo paths per daily forecast (count).
    pub paths: u64,
    /// Random seed; day i of the backtest (0-based) uses `seed + i` (wrapping).
    pub seed: u64,
}

/// One day's forecast and outcome at every confidence level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyForecast {
    /// The day whose one-day return is realised, as an ISO 8601 date (`2024-03-15`).
    pub date: String,
    /// Realised P&L of today's book revalued with that day's spot moves (implied vols held fixed),
    /// in reporting currency (USD), positive = gain.
    pub pnl: f64,
    /// VaR and ES per configured level (same order as the levels).
    pub var: Vec<f64>,
    /// ES forecast per configured level (same order as the levels), in reporting currency (USD),
    /// positive = loss.
    pub es: Vec<f64>,
    /// Degrees of freedom used that day (None for normal).
    pub dof: Option<f64>,
}

/// The rolling backtest's daily series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollingSeries {
    /// Confidence levels forecast each day, as fractions (0.99 = 99 %), in the order of each day's
    /// `var` and `es`.
    pub confidence: Vec<f64>,
    /// One forecast per usable day, in date order.
    pub days: Vec<DailyForecast>,
    /// Positions left out because their underlying has no history.
    pub positions_left_out: Vec<String>,
    /// Underlyings the forecasts cover: those the book holds that have a price history, sorted by
    /// name.
    pub underlyings: Vec<String>,
}

impl RollingSeries {
    /// The series at level index `level` as backtest observations.
    pub fn observations(&self, level: usize) -> Vec<Observation> {
        self.days
            .iter()
            .map(|d| Observation {
                date: d.date.clone(),
                pnl: d.pnl,
                var: d.var[level],
                es: Some(d.es[level]),
            })
            .collect()
    }
}

/// Runs the rolling backtest of `job`'s book on the spot return `history` (read from
/// `history_file`, named in errors), calling `progress(done, total)` after each day. Fewer
/// than [`MIN_OBSERVATIONS`] usable days is an input error, found before any forecast.
pub fn rolling_backtest(
    job: &Job,
    history: &BTreeMap<String, ReturnSeries>,
    history_file: &Path,
    settings: &RollingSettings,
    threads: Threads,
    progress: &dyn Fn(usize, usize),
) -> Result<RollingSeries> {
    let (book, left_out) = book_with_history(&job.book, history);
    let held: BTreeMap<String, ReturnSeries> = history
        .iter()
        .filter(|(u, _)| book.positions.iter().any(|p| &p.underlying == *u))
        .map(|(u, s)| (u.clone(), s.clone()))
        .collect();
    let mut dates = usable_days(&held);
    if dates.len() < MIN_OBSERVATIONS {
        return Err(Error::in_file(
            history_file,
            format!(
                "only {} usable days (a day needs a one-day return of every underlying held, \
                 {}, and {MIN_HISTORY} returns before it); a backtest needs at least \
                 {MIN_OBSERVATIONS}",
                dates.len(),
                held.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if let Some(days) = settings.days {
        dates.drain(..dates.len().saturating_sub(days));
    }
    let confidence = job.scenario.run.confidence.clone();
    let mut days = Vec::with_capacity(dates.len());
    for (i, date) in dates.iter().enumerate() {
        days.push(forecast_day(
            job, &book, &held, *date, i as u64, settings, threads,
        )?);
        progress(i + 1, dates.len());
    }
    Ok(RollingSeries {
        confidence,
        days,
        positions_left_out: left_out,
        underlyings: held.keys().cloned().collect(),
    })
}

/// The book without positions on underlyings missing from the history (USD and stablecoin
/// balances kept), and their ids.
fn book_with_history(book: &Book, history: &BTreeMap<String, ReturnSeries>) -> (Book, Vec<String>) {
    let (kept, dropped): (Vec<_>, Vec<_>) = book
        .positions
        .iter()
        .cloned()
        .partition(|p| history.contains_key(&p.underlying) || is_usd_balance(p));
    (
        Book {
            file: book.file.clone(),
            positions: kept,
        },
        dropped.into_iter().map(|p| p.id).collect(),
    )
}

/// A balance in USD or a USD stablecoin: worth its peg, it needs no price history (a de-peg
/// is not backtested).
fn is_usd_balance(p: &Position) -> bool {
    p.instrument == Instrument::Cash
        && (p.underlying == "USD" || USD_STABLECOINS.contains(&p.underlying.as_str()))
}

/// Days on which every series has a one-day return and MIN_HISTORY returns before it.
fn usable_days(held: &BTreeMap<String, ReturnSeries>) -> Vec<NaiveDate> {
    let mut counts: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for series in held.values() {
        for (i, &(date, gap, _)) in series.returns.iter().enumerate() {
            if gap == 1 && i >= MIN_HISTORY {
                *counts.entry(date).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter(|&(_, n)| n == held.len())
        .map(|(d, _)| d)
        .collect()
}

fn forecast_day(
    job: &Job,
    book: &Book,
    held: &BTreeMap<String, ReturnSeries>,
    date: NaiveDate,
    index: u64,
    settings: &RollingSettings,
    threads: Threads,
) -> Result<DailyForecast> {
    let confidence = &job.scenario.run.confidence;
    let calibration = calibrate(
        held,
        &VolHistory::default(),
        settings.weighting,
        settings.window,
        Some(date),
    );
    let n = calibration.underlyings.len();
    let distribution = match settings.shocks {
        ShockModel::StudentT => Distribution::StudentT {
            dof: calibration.dof,
        },
        ShockModel::Normal => Distribution::Normal,
    };
    let spec = ModelSpec {
        distribution,
        chi_square: ChiSquareMixing::PerPath,
        smile: SmileDynamics::StickyStrike,
        factors: calibration
            .underlyings
            .iter()
            .map(|u| (u.name.clone(), FactorSpec::spot_only(u.spot_vol)))
            .collect(),
        correlation: Some(CorrelationSpec {
            factors: calibration.factors[..n].to_vec(),
            matrix: calibration.correlation[..n]
                .iter()
                .map(|row| row[..n].to_vec())
                .collect(),
        }),
        depeg: Default::default(),
        venue_defaults: Default::default(),
        simulate_defaults: false,
    };
    let model = FactorModel::build(&spec, &job.scenario.path, true)?;
    let aggregated = AggregatedBook::build(
        book,
        &job.market,
        &model,
        job.valuation_time,
        &job.scenario.path,
    )?;
    let simulation = SimulationSettings {
        paths: settings.paths,
        seed: settings.seed.wrapping_add(index),
        horizon_days: 1.0,
        steps: 1,
        threads,
    };
    let pnl = Simulator::new(&model, &aggregated, simulation)?.pnl(&|_| {})?;
    let measures = var_es(&pnl, confidence);
    let log_spot: Vec<f64> = model
        .underlyings
        .iter()
        .map(|u| realised_return(&held[&u.name], date))
        .collect();
    let realised = Revaluer::new(&aggregated, &model, 1.0).path_pnl(PathMove::new(
        &log_spot,
        &vec![1.0; log_spot.len()],
        &[],
    ));
    Ok(DailyForecast {
        date: date.to_string(),
        pnl: realised,
        var: measures.iter().map(|m| m.var).collect(),
        es: measures.iter().map(|m| m.es).collect(),
        dof: match distribution {
            Distribution::StudentT { dof } => Some(dof),
            Distribution::Normal => None,
        },
    })
}

/// The one-day log return ending on `date` (usable days guarantee it exists).
fn realised_return(series: &ReturnSeries, date: NaiveDate) -> f64 {
    series
        .returns
        .iter()
        .find(|r| r.0 == date)
        .map_or(0.0, |r| r.2)
}
