//! One run end to end, as `tailrisk run` performs it: simulate the book's paths (plain,
//! importance sampled, or one shard), make a grid run's tail exact, measure VaR and ES, and
//! add contributions when asked. The command line only loads, calls and presents.

use std::path::{Path, PathBuf};

use crate::book::grouping::Grouping;
use crate::error::{Error, Result};
use crate::input::job::Job;
use crate::mc::importance::importance_sampled_run;
use crate::mc::shard::{write_shard, ShardPaths, ShardSlice, ShardSpec};
use crate::mc::shocks::BLOCK_PATHS;
use crate::mc::simulation::{RevaluationMode, SimulationSettings, Simulator};
use crate::report::text::{report_context, run_report, RunReport};
use crate::risk::contributions::contributions_of;
use crate::risk::measures::{block_moments, mean_and_stdev, tail_keep};

/// What a run is asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunRequest {
    /// Paths, seed, horizon, steps and worker threads.
    pub settings: SimulationSettings,
    /// How paths are revalued (contributions and importance sampling revalue in full).
    pub revaluation: RevaluationMode,
    /// Importance sampling for far tails (one-step runs; else plain, with the reason).
    pub importance_sampling: bool,
    /// Contributions by this grouping at this confidence level, if asked.
    pub contributions: Option<(Grouping, f64)>,
}

/// A finished run: its report and the per-path P&L (path i at index i; unweighted values
/// under importance sampling).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The report (JSON of `run`).
    pub report: RunReport,
    /// Per-path P&L in the reporting currency, positive = gain.
    pub pnl: Vec<f64>,
}

/// The revaluation actually used: contributions and importance sampling need every path
/// revalued in full.
fn revaluation_of(request: &RunRequest) -> RevaluationMode {
    if request.contributions.is_some() || request.importance_sampling {
        RevaluationMode::Full
    } else {
        request.revaluation
    }
}

/// The simulator of `job` for `settings`, with its revaluation chosen.
fn simulator(
    job: &Job,
    settings: SimulationSettings,
    mode: RevaluationMode,
) -> Result<(Simulator, crate::mc::simulation::GridCheck)> {
    let lowest = job.scenario.run.lowest_level();
    let simulator = Simulator::new(&job.model, &job.aggregated, settings)?
        .in_currency(&job.currency, job.aggregated.base_value());
    Ok(simulator.with_revaluation(&job.model, mode, lowest))
}

/// Runs `job` as `request` says; `progress` is called with the number of paths of each
/// finished block of a plain run.
pub fn run(job: &Job, request: &RunRequest, progress: &(dyn Fn(u64) + Sync)) -> Result<RunOutcome> {
    let settings = request.settings;
    if request.contributions.is_some() && job.currency.coin.is_some() {
        return Err(Error::Usage {
            message: format!(
                "contributions are reported in USD only for now: drop --currency {} (or \
                 [run] currency) to compute them",
                job.currency.name
            ),
        });
    }
    let (simulator, check) = simulator(job, settings, revaluation_of(request))?;
    if request.importance_sampling {
        let (report, pnl) = importance_sampled_run(job, simulator)?;
        let report = RunReport {
            revaluation: check,
            ..report
        };
        return Ok(RunOutcome { report, pnl });
    }
    // the largest losses the estimators read: exact with the grid too
    let keep = tail_keep(settings.paths as usize, &job.scenario.run.confidence);
    let all_blocks = 0..simulator.block_count();
    let (mut pnl, stash) = simulator.pnl_with_tail_stash(all_blocks.clone(), keep, progress)?;
    // moments of the grid P&L with the grid, as shards record them
    let (pnl_mean, pnl_stdev) = mean_and_stdev(&pnl);
    let exact = simulator.exact_tail(all_blocks, &mut pnl, keep, &stash)?;
    drop(stash);
    let mut report = RunReport {
        pnl_mean,
        pnl_stdev,
        revaluation: match &exact {
            Some(exact) => check.with_exact_tail(keep, Some(exact.max_error())),
            None => check,
        },
        ..run_report(job, &settings, &pnl)
    };
    if let Some((group, level)) = request.contributions {
        let (rows, additivity) = contributions_of(job, &simulator, &pnl, group, level);
        report.contributions = Some(rows);
        report.contribution_additivity = Some(additivity);
    }
    Ok(RunOutcome { report, pnl })
}

/// Simulates shard `spec` of the run and writes it into `dir` for `tailrisk merge`; returns
/// the file written and the number of paths it holds.
pub fn run_shard(
    job: &Job,
    request: &RunRequest,
    spec: ShardSpec,
    dir: &Path,
) -> Result<(PathBuf, usize)> {
    let settings = request.settings;
    let (simulator, check) = simulator(job, settings, revaluation_of(request))?;
    let keep = tail_keep(settings.paths as usize, &job.scenario.run.confidence);
    let slice = ShardSlice {
        spec,
        blocks: spec.blocks(simulator.block_count()),
        total_blocks: simulator.block_count(),
    };
    let (mut pnl, stash) = simulator.pnl_with_tail_stash(slice.blocks.clone(), keep, &|_| {})?;
    let moments = block_moments(&pnl, BLOCK_PATHS);
    let exact = simulator.exact_tail(slice.blocks.clone(), &mut pnl, keep, &stash)?;
    drop(stash);
    let mut report = report_context(job, &settings);
    report.revaluation = match exact {
        Some(_) => check.with_exact_tail(keep, None),
        None => check,
    };
    let paths = ShardPaths {
        pnl: &pnl,
        block_moments: moments,
        exact,
    };
    let file = write_shard(dir, &slice, &report, &job.scenario.run.confidence, paths)?;
    Ok((file, pnl.len()))
}
