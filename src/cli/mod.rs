//! The command line: `tailrisk run`, `exposures`, `whatif`, `stress`, `report`,
//! `calibrate`, `backtest` and `synthetic`. The binary only calls [`main`].

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use tailrisk::backtest::rolling::{rolling_backtest, RollingSettings, ShockModel};
use tailrisk::backtest::statistics::{backtest, load_series, MIN_OBSERVATIONS};
use tailrisk::book::exposures::exposures;
use tailrisk::error::{Error, Result, EXIT_OK};
use tailrisk::input::job::Job;
use tailrisk::input::scenario::load_stress_file;
use tailrisk::input::synthetic::{write_synthetic_scenario, SyntheticSpec};
use tailrisk::mc::importance::importance_sampled_run;
use tailrisk::mc::shard::{merge, write_shard, ShardPaths, ShardSlice, ShardSpec};
use tailrisk::mc::shocks::BLOCK_PATHS;
use tailrisk::mc::simulation::{RevaluationMode, SimulationSettings, Simulator, MAX_PATHS};
use tailrisk::model::calibration::{calibrate, ReturnSeries, Weighting};
use tailrisk::report::files::{write_backtest_series, write_run_outputs, write_summary};
use tailrisk::report::html::{committee_report, CommitteeInputs};
use tailrisk::report::text::{
    render_backtest, render_contributions, render_exposures, render_run, render_stress,
    render_what_if, report_context, run_report, Alternative, BacktestReport, RunReport,
    StressReport,
};
use tailrisk::risk::contributions::{
    contributions, entities, Additivity, Contribution, SimulatedLosses, TailPlan,
};
use tailrisk::risk::measures::{block_moments, mean_and_stdev, tail_keep};
use tailrisk::risk::whatif::what_if;
use tailrisk::stress::replay::{replay, PriceHistory};
use tailrisk::stress::reverse::reverse_stress;
use tailrisk::stress::scenarios::{stress_grids, StressBook, GRID_SPOT_MOVES, GRID_VOL_MOVES};

/// Monte Carlo VaR and Expected Shortfall for crypto derivatives books.
#[derive(Debug, Parser)]
#[command(
    name = "tailrisk",
    version,
    about,
    long_about = "Monte Carlo Value-at-Risk and Expected Shortfall for crypto derivatives books.\n\n\
Positions (spot, perpetuals, futures, European options) held on several venues are netted per \
instrument, revalued across correlated fat-tailed paths of prices and implied vols, and the \
loss distribution is summarised as VaR and ES (positive numbers = losses) with Monte Carlo \
standard errors.\n\n\
Exit codes: 0 success, 1 failure writing outputs or numerical failure, 2 bad command line, \
3 bad input file (the message names file, row and field), 4 unusable model (e.g. a correlation \
matrix that is not positive definite).",
    after_help = "Example: tailrisk run scenarios/fund.toml --paths 200000 --format json"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate the book over the horizon and report VaR and ES at every confidence level.
    Run(RunArgs),
    /// Net delta, gamma, vega and theta by underlying, venue, counterparty and book.
    Exposures(ExposuresArgs),
    /// VaR and ES before and after adding trades and/or removing positions, on common random
    /// numbers, with the standard error of the change.
    Whatif(WhatifArgs),
    /// Named stress scenarios (with their breakdown), the spot × implied-vol grid,
    /// historical replay and reverse stress.
    Stress(StressArgs),
    /// Write the risk committee report: one self-contained HTML file with the summary,
    /// exposures, P&L distribution, contributions, stress table, spot × vol heatmap, model
    /// and data provenance.
    Report(ReportArgs),
    /// Calibrate the model (vols, correlations, Student-t dof) from daily history and print
    /// it as a scenario file's [model] section.
    Calibrate(CalibrateArgs),
    /// Backtest VaR and ES: a rolling out-of-sample forecast of the book on a price history,
    /// or a given series (--series date,pnl,var[,es]).
    Backtest(BacktestArgs),
    /// Merge the shards of one run (`run --shard I/N --out DIR`) into the single-machine
    /// result.
    Merge(MergeArgs),
    /// Write a synthetic scenario folder (scenario.toml, market.csv, positions.csv) of any
    /// size, for benchmarks and scale tests.
    Synthetic(SyntheticArgs),
}

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A readable report.
    Table,
    /// A JSON document for scripts (keys as in the SPEC).
    Json,
}

#[derive(Debug, Args)]
struct ScenarioArgs {
    /// Scenario file (TOML): run settings, model, market file, positions file.
    scenario: PathBuf,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// If the correlation matrix is not positive definite, replace it by Higham's nearest
    /// correlation matrix (and report how far it moved) instead of refusing to run.
    #[arg(long)]
    repair_correlation: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Flags of every command that simulates.
#[derive(Debug, Args)]
struct SimulationArgs {
    /// Monte Carlo paths (overrides `[run] paths`; at most 2^30).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=MAX_PATHS))]
    paths: Option<u64>,
    /// Random seed (overrides `[run] seed`). The same seed gives the same numbers to the
    /// last bit on any number of threads.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

impl SimulationArgs {
    /// The run settings of `job` with these overrides.
    fn settings(&self, job: &Job) -> SimulationSettings {
        let run = &job.scenario.run;
        SimulationSettings {
            paths: self.paths.unwrap_or(run.paths),
            seed: self.seed.unwrap_or(run.seed),
            horizon_days: run.horizon_days,
            steps: run.steps,
        }
    }

    /// A rayon pool of `--threads` workers (default: all cores) and its size.
    fn pool(&self) -> Result<(rayon::ThreadPool, usize)> {
        let threads = self
            .threads
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Numerical {
                message: format!("cannot start {threads} threads: {e}"),
            })?;
        Ok((pool, threads))
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: ScenarioArgs,
    #[command(flatten)]
    simulation: SimulationArgs,
    /// Write pnl.parquet (per-path P&L), summary.json and measures.csv into this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// How options are revalued: `full` (every option on every path), `grid` (per-underlying
    /// revaluation surfaces), or `auto` (the grid where its error seen on pilot paths is
    /// below 0.1 % of VaR, else full). After a grid pass, every path that can reach the
    /// reported tails is revalued in full, so VaR, ES and their standard errors are the
    /// full-revaluation figures. Contributions and importance sampling always use full
    /// revaluation.
    #[arg(long, value_enum, default_value_t = Revaluation::Auto)]
    revaluation: Revaluation,
    /// Simulate only shard I of N (0-based): a disjoint slice of the paths, written with
    /// --out for `tailrisk merge`, which gives exactly the single-machine result.
    #[arg(long, value_name = "I/N", value_parser = ShardSpec::parse, requires = "out", conflicts_with = "contributions")]
    shard: Option<ShardSpec>,
    /// Importance sampling for far tails (one-step runs, normal or Student-t): a plain pilot
    /// finds the tail regions (a short straddle has two), paths are drawn from a mixture of
    /// shocks shifted to each region's design point (and a tilted chi-square under
    /// Student-t) plus a 20% share of the model itself, with exact likelihood-ratio weights
    /// bounded by 5. Prints the variance gain; falls back to plain Monte Carlo, saying why,
    /// when the pilot's tail cannot be covered. Revalues in full.
    #[arg(long, conflicts_with_all = ["shard", "contributions", "out"])]
    importance_sampling: bool,
    /// Add component (Euler), marginal and incremental VaR and ES by this grouping.
    #[arg(long, value_enum, value_name = "GROUP")]
    contributions: Option<ContributionGroup>,
    /// Confidence level of the contributions (default: the highest configured level).
    #[arg(long, value_name = "LEVEL", requires = "contributions", value_parser = parse_level)]
    contribution_level: Option<f64>,
}

/// How options are revalued on each path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Revaluation {
    Full,
    Grid,
    Auto,
}

impl Revaluation {
    fn mode(self) -> RevaluationMode {
        match self {
            Revaluation::Full => RevaluationMode::Full,
            Revaluation::Grid => RevaluationMode::Grid,
            Revaluation::Auto => RevaluationMode::Auto,
        }
    }
}

/// What contributions are reported by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ContributionGroup {
    Position,
    Underlying,
    Venue,
    Counterparty,
    Book,
}

impl ContributionGroup {
    fn name(self) -> &'static str {
        match self {
            ContributionGroup::Position => "position",
            ContributionGroup::Underlying => "underlying",
            ContributionGroup::Venue => "venue",
            ContributionGroup::Counterparty => "counterparty",
            ContributionGroup::Book => "book",
        }
    }
}

/// A number of backtest days: at least [`MIN_OBSERVATIONS`].
fn parse_days(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(days) if days >= MIN_OBSERVATIONS => Ok(days),
        _ => Err(format!(
            "expected a number of days of at least {MIN_OBSERVATIONS} (the fewest a backtest \
             accepts), found '{text}'"
        )),
    }
}

/// A confidence level strictly between 0 and 1.
fn parse_level(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(a) if a > 0.0 && a < 1.0 => Ok(a),
        _ => Err(format!("expected a level like 0.99, found '{text}'")),
    }
}

#[derive(Debug, Args)]
struct ExposuresArgs {
    #[command(flatten)]
    common: ScenarioArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("edit").required(true).multiple(true).args(["trades", "remove"])))]
struct WhatifArgs {
    #[command(flatten)]
    common: ScenarioArgs,
    #[command(flatten)]
    simulation: SimulationArgs,
    /// Proposed trades: a CSV or Parquet file with the positions file's columns (a negative
    /// quantity reduces a position). Ids must differ from the book's.
    #[arg(long, value_name = "FILE")]
    trades: Option<PathBuf>,
    /// Position ids to take out of the book, comma separated.
    #[arg(long, value_name = "ID,ID", value_delimiter = ',')]
    remove: Vec<String>,
}

#[derive(Debug, Args)]
struct StressArgs {
    #[command(flatten)]
    common: ScenarioArgs,
    #[command(flatten)]
    options: StressOptions,
}

/// What a stress run covers beyond the scenario file's `[[stress]]` and the grid.
#[derive(Debug, Args)]
struct StressOptions {
    /// More `[[stress]]` scenarios from these files (e.g. scenarios/stress/crypto_history.toml).
    #[arg(long = "stress-file", value_name = "FILE")]
    stress_files: Vec<PathBuf>,
    /// Replay every historical move of this daily price file (columns date, then U or
    /// U:close per underlying; CSV or Parquet).
    #[arg(long, value_name = "PRICES")]
    history: Option<PathBuf>,
    /// Length of the replayed moves in calendar days.
    #[arg(long, default_value_t = 1, requires = "history", value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// How many of the worst historical windows to report.
    #[arg(long, default_value_t = 10, requires = "history")]
    worst: usize,
    /// Find the most plausible move (smallest Mahalanobis distance) losing at least LOSS.
    #[arg(long, value_name = "LOSS", value_parser = parse_loss)]
    reverse: Option<f64>,
}

/// A positive amount of money.
fn parse_loss(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "expected a positive loss like 1000000, found '{text}'"
        )),
    }
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Repair a correlation matrix that is not positive definite (Higham).
    #[arg(long)]
    repair_correlation: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    simulation: SimulationArgs,
    #[command(flatten)]
    stress: StressOptions,
}

/// How the past is weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// Exponentially weighted (RiskMetrics), decay --lambda.
    Ewma,
    /// Equally weighted over the window, mean removed.
    Sample,
}

/// Flags of every command that calibrates.
#[derive(Debug, Args)]
struct CalibrationArgs {
    /// Daily prices: a date column, then `U` or `U:close` per underlying (CSV or Parquet).
    #[arg(long, value_name = "PRICES")]
    history: PathBuf,
    /// Daily implied-vol levels (`U` or `U:vol` columns); without it, vol factors get the
    /// documented defaults.
    #[arg(long, value_name = "VOLS")]
    vol_history: Option<PathBuf>,
    #[command(flatten)]
    weighting: WeightingArgs,
}

/// How each calibration weights the past.
#[derive(Debug, Args)]
struct WeightingArgs {
    /// Weighting of the past.
    #[arg(long, value_enum, default_value_t = Method::Ewma)]
    method: Method,
    /// EWMA decay per day.
    #[arg(long, default_value_t = 0.94, value_parser = parse_lambda)]
    lambda: f64,
    /// Use only the last N returns of each series (before each day, when backtesting).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    window: Option<u64>,
}

impl WeightingArgs {
    fn weighting(&self) -> Weighting {
        match self.method {
            Method::Ewma => Weighting::Ewma {
                lambda: self.lambda,
            },
            Method::Sample => Weighting::Sample,
        }
    }

    fn window(&self) -> Option<usize> {
        self.window.map(|w| w as usize)
    }
}

/// A decay factor strictly between 0 and 1.
fn parse_lambda(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!(
            "expected a decay in (0, 1) like 0.94, found '{text}'"
        )),
    }
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    #[command(flatten)]
    calibration: CalibrationArgs,
    /// Only these underlyings (default: every price column).
    #[arg(long, value_delimiter = ',', value_name = "U,U")]
    underlyings: Vec<String>,
    /// Output: the [model] section as TOML (`table`) or the calibration as JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also write the [model] section to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BacktestArgs {
    /// Scenario file whose book is backtested (with --history).
    #[arg(required_unless_present = "series", requires = "history")]
    scenario: Option<PathBuf>,
    /// Daily prices for the rolling backtest (`U` or `U:close` columns).
    #[arg(long, value_name = "PRICES", conflicts_with = "series")]
    history: Option<PathBuf>,
    /// Backtest a given series instead: CSV or Parquet with date,pnl,var and optionally es.
    #[arg(long, value_name = "FILE")]
    series: Option<PathBuf>,
    /// Confidence level tested (default: the scenario's highest level, or 0.99).
    #[arg(long, value_parser = parse_level)]
    confidence: Option<f64>,
    #[command(flatten)]
    weighting: WeightingArgs,
    /// Forecast with normal shocks instead of the fitted Student-t.
    #[arg(long)]
    normal: bool,
    /// Backtest only the last N usable days (at least 100).
    #[arg(long, value_name = "N", value_parser = parse_days)]
    days: Option<usize>,
    /// Monte Carlo paths per daily forecast.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    paths: u64,
    /// Random seed (day i uses seed + i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Exception rate the rate multiplier targets (default 1 − confidence).
    #[arg(long, value_name = "RATE", value_parser = parse_level)]
    target_rate: Option<f64>,
    /// Skip the alternative models (normal vs Student-t, EWMA vs sample).
    #[arg(long)]
    no_alternatives: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the daily series (date, pnl, var, es, exception) as Parquet and CSV here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The shards' JSON files (shard-I-of-N.json), every one of the run.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write summary.json and measures.csv into this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SyntheticArgs {
    /// Folder to write (created if missing).
    dir: PathBuf,
    /// Number of underlyings.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    underlyings: u16,
    /// Number of option positions (distinct contracts).
    #[arg(long, default_value_t = 10_000)]
    options: usize,
    /// `[run] paths` of the written scenario.
    #[arg(long, default_value_t = 200_000)]
    paths: u64,
    /// Seed of the book's random draws (the same seed writes the same files).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Parses the command line, runs the command, prints errors on stderr and returns the exit
/// code (see `--help`).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let outcome = match cli.command {
        Command::Run(args) => run(&args),
        Command::Exposures(args) => show_exposures(&args),
        Command::Whatif(args) => run_what_if(&args),
        Command::Stress(args) => run_stress(&args),
        Command::Report(args) => write_report(&args),
        Command::Calibrate(args) => run_calibrate(&args),
        Command::Backtest(args) => run_backtest(&args),
        Command::Merge(args) => run_merge(&args),
        Command::Synthetic(args) => write_synthetic(&args),
    };
    match outcome {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &RunArgs) -> Result<()> {
    let job = Job::load(&args.common.scenario, args.common.repair_correlation)?;
    let run = &job.scenario.run;
    let settings = args.simulation.settings(&job);
    let (pool, threads) = args.simulation.pool()?;
    let lowest_level = run.confidence.iter().copied().fold(f64::NAN, f64::min);
    // the largest losses the estimators read: exact with the grid too
    let keep = tail_keep(settings.paths as usize, &run.confidence);
    let mode = if args.contributions.is_some() || args.importance_sampling {
        RevaluationMode::Full
    } else {
        args.revaluation.mode()
    };
    let started = Instant::now();
    let (simulator, check) = pool.install(|| {
        Simulator::new(&job.model, &job.aggregated, settings)
            .map(|s| s.with_revaluation(&job.model, mode, lowest_level))
    })?;
    if let (Some(spec), Some(dir)) = (args.shard, &args.out) {
        let slice = ShardSlice {
            spec,
            blocks: spec.blocks(simulator.block_count()),
            total_blocks: simulator.block_count(),
        };
        let mut pnl = pool.install(|| simulator.pnl_of_blocks(slice.blocks.clone(), &|_| {}))?;
        let moments = block_moments(&pnl, BLOCK_PATHS);
        let exact = pool.install(|| simulator.exact_tail(slice.blocks.clone(), &mut pnl, keep))?;
        let mut report = report_context(&job, &settings);
        report.revaluation = match exact {
            Some(_) => check.with_exact_tail(keep, None),
            None => check,
        };
        let paths = ShardPaths {
            pnl: &pnl,
            block_moments: moments,
            exact,
        };
        let file = write_shard(dir, &slice, &report, &run.confidence, paths)?;
        eprintln!(
            "wrote {} ({} paths of {})",
            file.display(),
            pnl.len(),
            settings.paths
        );
        return Ok(());
    }
    if args.importance_sampling {
        let (report, pnl) = pool.install(|| importance_sampled_run(&job, simulator))?;
        if let Some(reason) = report
            .importance_sampling
            .as_ref()
            .and_then(|is| is.fallback.as_ref())
        {
            eprintln!("importance sampling not used, plain Monte Carlo instead: {reason}");
        }
        let report = RunReport {
            revaluation: check,
            ..report
        };
        return finish_run(
            args,
            &report,
            &pnl,
            started.elapsed().as_secs_f64(),
            threads,
        );
    }
    let bar = progress_bar(settings.paths, "paths", args.common.quiet);
    let mut pnl = pool.install(|| simulator.pnl(&|done| bar.inc(done)))?;
    bar.finish_and_clear();
    // moments of the grid P&L with the grid, as shards record them
    let (pnl_mean, pnl_stdev) = mean_and_stdev(&pnl);
    let exact =
        pool.install(|| simulator.exact_tail(0..simulator.block_count(), &mut pnl, keep))?;
    let mut report = RunReport {
        pnl_mean,
        pnl_stdev,
        revaluation: match &exact {
            Some(exact) => check.with_exact_tail(keep, Some(exact.max_error())),
            None => check,
        },
        ..run_report(&job, &settings, &pnl)
    };
    if let Some(group) = args.contributions {
        let level = args
            .contribution_level
            .unwrap_or_else(|| run.confidence.iter().copied().fold(f64::NAN, f64::max));
        let (rows, additivity) =
            pool.install(|| contributions_of(&job, &simulator, &pnl, group.name(), level));
        report.contributions = Some(rows);
        report.contribution_additivity = Some(additivity);
    }
    finish_run(
        args,
        &report,
        &pnl,
        started.elapsed().as_secs_f64(),
        threads,
    )
}

/// Writes `--out` files and prints the run's report.
fn finish_run(
    args: &RunArgs,
    report: &RunReport,
    pnl: &[f64],
    elapsed: f64,
    threads: usize,
) -> Result<()> {
    if let Some(dir) = &args.out {
        write_run_outputs(dir, report, pnl)?;
    }
    match args.common.format {
        Format::Json => print_json(report, &args.common.scenario),
        Format::Table => {
            let scenario = args.common.scenario.display().to_string();
            print!("{}", render_run(report, &scenario, elapsed, threads));
            if let (Some(rows), Some(additivity)) =
                (&report.contributions, &report.contribution_additivity)
            {
                print!("{}", render_contributions(rows, additivity));
            }
            if let Some(dir) = &args.out {
                println!("outputs written to {}", dir.display());
            }
            Ok(())
        }
    }
}

fn contributions_of(
    job: &Job,
    simulator: &Simulator,
    pnl: &[f64],
    group: &'static str,
    level: f64,
) -> (Vec<Contribution>, Additivity) {
    let revaluer = simulator.revaluer();
    let instrument_of: Vec<usize> = job
        .aggregated
        .holdings
        .iter()
        .map(|&h| revaluer.instrument_index(h))
        .collect();
    let entities = entities(&job.book, &instrument_of, group);
    let losses = SimulatedLosses {
        simulator,
        entities: &entities,
    };
    let plan = TailPlan::new(pnl, level);
    contributions(pnl, &plan, &entities, &losses)
}

fn show_exposures(args: &ExposuresArgs) -> Result<()> {
    let job = Job::load(&args.common.scenario, args.common.repair_correlation)?;
    let rows = exposures(&job.book, &job.aggregated);
    let valuation_time = job.valuation_time.to_rfc3339();
    match args.common.format {
        Format::Json => print_json(
            &serde_json::json!({
                "valuation_time": valuation_time,
                "base_value": job.aggregated.base_value(),
                "exposures": rows,
            }),
            &args.common.scenario,
        ),
        Format::Table => {
            print!("{}", render_exposures(&rows, &valuation_time));
            Ok(())
        }
    }
}

fn run_what_if(args: &WhatifArgs) -> Result<()> {
    let job = Job::load(&args.common.scenario, args.common.repair_correlation)?;
    let settings = args.simulation.settings(&job);
    let (pool, _) = args.simulation.pool()?;
    let result = pool.install(|| what_if(&job, args.trades.as_deref(), &args.remove, settings))?;
    match args.common.format {
        Format::Json => print_json(&result, &args.common.scenario),
        Format::Table => {
            print!("{}", render_what_if(&result));
            Ok(())
        }
    }
}

fn run_stress(args: &StressArgs) -> Result<()> {
    let job = Job::load(&args.common.scenario, args.common.repair_correlation)?;
    let report = stress_report(&job, &args.options)?;
    match args.common.format {
        Format::Json => print_json(&report, &args.common.scenario),
        Format::Table => {
            print!("{}", render_stress(&report));
            Ok(())
        }
    }
}

/// Named scenarios (the scenario file's and `--stress-file`s), grids, and the optional
/// historical replay and reverse stress.
fn stress_report(job: &Job, args: &StressOptions) -> Result<StressReport> {
    let book = StressBook::new(job);
    let mut scenarios = Vec::new();
    for spec in &job.scenario.stress {
        scenarios.push(book.run_spec(spec, &job.scenario.path)?);
    }
    for file in &args.stress_files {
        for spec in load_stress_file(file)? {
            scenarios.push(book.run_spec(&spec, file)?);
        }
    }
    Ok(StressReport {
        base_value: job.aggregated.base_value(),
        horizon_days: job.scenario.run.horizon_days,
        valuation_time: job.valuation_time.to_rfc3339(),
        stress: scenarios,
        grid: stress_grids(&book, &GRID_SPOT_MOVES, &GRID_VOL_MOVES),
        history: match &args.history {
            Some(file) => {
                let history = PriceHistory::load(file, &book.underlying_names())?;
                Some(replay(&book, &history, args.window, args.worst))
            }
            None => None,
        },
        reverse: args.reverse.map(|loss| reverse_stress(job, &book, loss)),
    })
}

fn write_report(args: &ReportArgs) -> Result<()> {
    let job = Job::load(&args.scenario, args.repair_correlation)?;
    let settings = args.simulation.settings(&job);
    let (pool, _) = args.simulation.pool()?;
    let simulator = Simulator::new(&job.model, &job.aggregated, settings)?;
    let bar = progress_bar(settings.paths, "paths", args.quiet);
    let pnl = pool.install(|| simulator.pnl(&|done| bar.inc(done)))?;
    bar.finish_and_clear();
    let run = run_report(&job, &settings, &pnl);
    let level = job
        .scenario
        .run
        .confidence
        .iter()
        .copied()
        .fold(f64::NAN, f64::max);
    let by = |group| pool.install(|| contributions_of(&job, &simulator, &pnl, group, level));
    let inputs = CommitteeInputs {
        job: &job,
        run: &run,
        pnl: &pnl,
        exposures: exposures(&job.book, &job.aggregated),
        by_underlying: by("underlying"),
        by_position: by("position"),
        stress: stress_report(&job, &args.stress)?,
    };
    let html = committee_report(&inputs);
    std::fs::write(&args.out, html).map_err(|e| Error::output(&args.out, e))?;
    if !args.quiet {
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}

/// Spot and implied-vol return series of `underlyings` (all columns when empty).
fn load_returns(
    args: &CalibrationArgs,
    underlyings: &[String],
) -> Result<(
    BTreeMap<String, ReturnSeries>,
    BTreeMap<String, ReturnSeries>,
)> {
    let names: Vec<&str> = underlyings.iter().map(String::as_str).collect();
    let chosen = (!names.is_empty()).then_some(names.as_slice());
    let to_returns = |h: PriceHistory| -> BTreeMap<String, ReturnSeries> {
        h.series
            .iter()
            .map(|(u, levels)| (u.clone(), ReturnSeries::from_levels(levels)))
            .collect()
    };
    let spots = to_returns(PriceHistory::load_levels(&args.history, chosen, ":close")?);
    let vols = match &args.vol_history {
        Some(path) => {
            let spot_names: Vec<&str> = spots.keys().map(String::as_str).collect();
            to_returns(PriceHistory::load_levels(path, Some(&spot_names), ":vol")?)
        }
        None => BTreeMap::new(),
    };
    Ok((spots, vols))
}

fn run_calibrate(args: &CalibrateArgs) -> Result<()> {
    let (spots, vols) = load_returns(&args.calibration, &args.underlyings)?;
    let calibration = calibrate(
        &spots,
        &vols,
        args.calibration.weighting.weighting(),
        args.calibration.weighting.window(),
        None,
    );
    let text = calibration.to_toml(&args.calibration.history.display().to_string());
    if let Some(out) = &args.out {
        std::fs::write(out, &text).map_err(|e| Error::output(out, e))?;
    }
    match args.format {
        Format::Json => print_json(&calibration, &args.calibration.history),
        Format::Table => {
            print!("{text}");
            Ok(())
        }
    }
}

fn run_backtest(args: &BacktestArgs) -> Result<()> {
    let report = match (&args.series, &args.scenario, &args.history) {
        (Some(series), _, _) => {
            let confidence = args.confidence.unwrap_or(0.99);
            let observations = load_series(series)?;
            BacktestReport {
                source: series.display().to_string(),
                backtest: backtest(&observations, confidence, args.target_rate, series)?,
                model: None,
                alternatives: Vec::new(),
                positions_left_out: Vec::new(),
                series: observations,
            }
        }
        (None, Some(scenario), Some(history)) => rolling_report(args, scenario, history)?,
        _ => unreachable_arguments()?,
    };
    if let Some(dir) = &args.out {
        write_backtest_series(dir, &report.series)?;
    }
    match args.format {
        Format::Json => print_json(&report, Path::new(&report.source)),
        Format::Table => {
            print!("{}", render_backtest(&report));
            Ok(())
        }
    }
}

/// clap guarantees a scenario with a history, or a series.
fn unreachable_arguments() -> Result<BacktestReport> {
    Err(Error::Numerical {
        message: "give SCENARIO --history PRICES, or --series FILE".to_owned(),
    })
}

fn rolling_report(args: &BacktestArgs, scenario: &Path, history: &Path) -> Result<BacktestReport> {
    let job = Job::load(scenario, false)?;
    let held: Vec<&str> = job
        .aggregated
        .underlyings
        .iter()
        .map(|u| u.name.as_str())
        .collect();
    let returns: BTreeMap<String, ReturnSeries> = PriceHistory::load(history, &held)?
        .series
        .iter()
        .map(|(u, levels)| (u.clone(), ReturnSeries::from_levels(levels)))
        .collect();
    let levels = &job.scenario.run.confidence;
    let confidence = args
        .confidence
        .unwrap_or_else(|| levels.iter().copied().fold(f64::NAN, f64::max));
    let mut job = job;
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
    let settings = RollingSettings {
        weighting: args.weighting.weighting(),
        window: args.weighting.window(),
        shocks: if args.normal {
            ShockModel::Normal
        } else {
            ShockModel::StudentT
        },
        days: args.days,
        paths: args.paths,
        seed: args.seed,
    };
    let (pool, _) = SimulationArgs {
        paths: None,
        seed: None,
        threads: args.threads,
    }
    .pool()?;
    let runs = if args.no_alternatives { 1 } else { 4 };
    let bar = progress_bar(0, "days", false);
    let run = |s: &RollingSettings| {
        let offset = bar.position();
        pool.install(|| {
            rolling_backtest(&job, &returns, history, s, &|done, total| {
                bar.set_length((total * runs) as u64);
                bar.set_position(offset + done as u64);
            })
        })
    };
    let main = run(&settings)?;
    let observations = main.observations(level);
    let mut alternatives = Vec::new();
    if !args.no_alternatives {
        for weighting in [
            Weighting::Ewma {
                lambda: args.weighting.lambda,
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
                    backtest: backtest(
                        &series.observations(level),
                        confidence,
                        args.target_rate,
                        history,
                    )?,
                });
            }
        }
    }
    bar.finish_and_clear();
    Ok(BacktestReport {
        source: history.display().to_string(),
        backtest: backtest(&observations, confidence, args.target_rate, history)?,
        model: Some(settings),
        alternatives,
        positions_left_out: main.positions_left_out,
        series: observations,
    })
}

fn run_merge(args: &MergeArgs) -> Result<()> {
    let report = merge(&args.shards)?;
    if let Some(dir) = &args.out {
        write_summary(dir, &report)?;
    }
    match args.format {
        Format::Json => print_json(&report, &args.shards[0]),
        Format::Table => {
            print!("{}", render_run(&report, "merged shards", 0.0, 0));
            Ok(())
        }
    }
}

fn write_synthetic(args: &SyntheticArgs) -> Result<()> {
    let spec = SyntheticSpec {
        underlyings: usize::from(args.underlyings),
        options: args.options,
        paths: args.paths,
        seed: args.seed,
    };
    let scenario = write_synthetic_scenario(&args.dir, &spec)?;
    println!("wrote {}", scenario.display());
    Ok(())
}

fn print_json(value: &impl serde::Serialize, source: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Output {
        path: source.to_path_buf(),
        message: e.to_string(),
    })?;
    println!("{text}");
    Ok(())
}

/// A progress bar on stderr, drawn only when stderr is a terminal and not `--quiet`.
fn progress_bar(length: u64, unit: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    let template =
        format!("{{spinner}} {{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
