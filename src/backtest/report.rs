//! Everything `tailrisk backtest` reports, assembled in one call: a given series' tests, or
//! the rolling out-of-sample backtest of a scenario's book on a price history with the
//! alternative models beside it.

use std::path::Path;

use crate::backtest::rolling::{rolling_backtest, RollingSettings, ShockModel};
use crate::backtest::statistics::{backtest, load_series};
use crate::error::Result;
use crate::input::job::Job;
use crate::mc::threads::Threads;
use crate::model::calibration::{ReturnSeries, Weighting};
use crate::report::text::{Alternative, BacktestReport};
use crate::stress::replay::PriceHistory;

/// The tests of the given series file (`date, pnl, var[, es]`) at `confidence`, with the
/// rate multiplier aimed at `target_rate` (default 1 − confidence).
pub fn series_report(
    series: &Path,
    confidence: f64,
    target_rate: Option<f64>,
) -> Result<BacktestReport> {
    let observations = load_series(series)?;
    Ok(BacktestReport {
        source: series.display().to_string(),
        backtest: backtest(&observations, confidence, target_rate, series)?,
        model: None,
        alternatives: Vec::new(),
        positions_left_out: Vec::new(),
        series: observations,
    })
}

/// How a rolling backtest is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingRequest {
    /// The model of the forecasts.
    pub settings: RollingSettings,
    /// Level tested (default: the scenario's highest).
    pub confidence: Option<f64>,
    /// Exception rate the rate multiplier aims at (default 1 − confidence).
    pub target_rate: Option<f64>,
    /// Also backtest the alternatives: EWMA (decay `ewma_lambda`) and sample weighting,
    /// each with Student-t and normal shocks.
    pub alternatives: bool,
    /// EWMA decay of the alternatives, in (0, 1).
    pub ewma_lambda: f64,
    /// Worker threads of each day's simulation.
    pub threads: Threads,
}

/// The rolling backtest of `scenario`'s book on the daily prices `history`. `progress` is
/// called with (days done, days in all) across the main model and its alternatives.
pub fn rolling_report(
    scenario: &Path,
    history: &Path,
    request: &RollingRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<BacktestReport> {
    let mut job = Job::load(scenario, false)?;
    let held: Vec<&str> = job
        .aggregated
        .underlyings
        .iter()
        .map(|u| u.name.as_str())
        .collect();
    let returns: std::collections::BTreeMap<String, ReturnSeries> =
        PriceHistory::load(history, &held)?
            .series
            .iter()
            .map(|(u, levels)| (u.clone(), ReturnSeries::from_levels(levels)))
            .collect();
    let confidence = request
        .confidence
        .unwrap_or_else(|| job.scenario.run.highest_level());
    if !job.scenario.run.confidence.contains(&confidence) {
        job.scenario.run.confidence.push(confidence);
    }
    let level = job
        .scenario
        .run
        .confidence
        .iter()
        .position(|&a| a == confidence)
        .unwrap_or(0);
    let runs = if request.alternatives { 4 } else { 1 };
    let done_before = std::cell::Cell::new(0);
    let run = |settings: &RollingSettings| {
        let offset = done_before.get();
        let series = rolling_backtest(
            &job,
            &returns,
            history,
            settings,
            request.threads,
            &|done, total| progress(offset + done, total * runs),
        )?;
        done_before.set(offset + series.days.len());
        Ok::<_, crate::error::Error>(series)
    };
    let settings = request.settings;
    let main = run(&settings)?;
    let test = |series: &[crate::backtest::statistics::Observation]| {
        backtest(series, confidence, request.target_rate, history)
    };
    let observations = main.observations(level);
    let mut alternatives = Vec::new();
    if request.alternatives {
        for weighting in [
            Weighting::Ewma {
                lambda: request.ewma_lambda,
            },
            Weighting::Sample,
        ] {
            for shocks in [ShockModel::StudentT, ShockModel::Normal] {
                let alt = RollingSettings {
                    weighting,
                    shocks,
                    ..settings
                };
                let series = if alt == settings {
                    main.clone()
                } else {
                    run(&alt)?
                };
                alternatives.push(Alternative {
                    settings: alt,
                    backtest: test(&series.observations(level))?,
                });
            }
        }
    }
    Ok(BacktestReport {
        source: history.display().to_string(),
        backtest: test(&observations)?,
        model: Some(settings),
        alternatives,
        positions_left_out: main.positions_left_out,
        series: observations,
    })
}
