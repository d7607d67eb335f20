//! The command line's arguments: one struct per command, with the flags every simulating,
//! calibrating or stressing command shares, and their parsers.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use tailrisk::backtest::statistics::MIN_OBSERVATIONS;
use tailrisk::book::grouping::Grouping;
use tailrisk::input::job::Job;
use tailrisk::mc::shard::ShardSpec;
use tailrisk::mc::simulation::{RevaluationMode, SimulationSettings, MAX_PATHS};
use tailrisk::mc::threads::Threads;
use tailrisk::model::calibration::Weighting;

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
Exit codes: 0 success, 1 failure writing outputs, numerical failure or too few resources, 2 bad \
command line or a request that cannot be carried out, \
3 bad input file (the message names file, row and field), 4 unusable model (e.g. a correlation \
matrix that is not positive definite).",
    after_help = "Example: tailrisk run scenarios/fund.toml --paths 200000 --format json"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Simulate the book over the horizon and report VaR and ES at every confidence level.
    Run(RunArgs),
    /// Net delta, gamma, vega and theta by underlying, venue, counterparty and book.
    Exposures(ExposuresArgs),
    /// VaR and ES before and after adding trades and/or removing positions, on common random
    /// numbers, with the standard error of the change.
    Whatif(WhatifArgs),
    /// Propose hedge trades among candidate instruments: least ES, or the cheapest reaching a
    /// target ES (a linear program on the simulated paths), or delta / vega neutral; judged on
    /// fresh paths with the in-sample figure beside.
    Hedge(HedgeArgs),
    /// Margin per `[[venue]]` today and along the paths: margin calls, liquidations, their
    /// probabilities and timing, VaR and ES with liquidations, and capital buffers.
    Margin(MarginArgs),
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
    /// Keep the book, the market and the paths live behind an HTTP/JSON API: trades and
    /// market updates in, VaR / ES, exposures, contributions, pre-trade what-ifs, limits
    /// and events out; everything acknowledged is kept in an embedded SQLite database.
    Serve(ServeArgs),
}

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A readable report.
    Table,
    /// A JSON document for scripts (keys as in the SPEC).
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ScenarioArgs {
    /// Scenario file (TOML): run settings, model, market file, positions file.
    pub(crate) scenario: PathBuf,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// If the correlation matrix is not positive definite, replace it by Higham's nearest
    /// correlation matrix (and report how far it moved) instead of refusing to run.
    #[arg(long)]
    pub(crate) repair_correlation: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// `--currency`, for the commands that report values, VaR and ES.
#[derive(Debug, Args)]
pub(crate) struct CurrencyArg {
    /// Report values, P&L, VaR and ES in this currency: USD or a coin of the model (BTC,
    /// ETH, …; overrides `[run] currency`). Each path's P&L is converted at that path's
    /// simulated price of the coin, never at today's.
    #[arg(long, value_name = "CURRENCY")]
    pub(crate) currency: Option<String>,
}

/// Flags of every command that simulates.
#[derive(Debug, Args)]
pub(crate) struct SimulationArgs {
    /// Monte Carlo paths (overrides `[run] paths`; at most 2^30).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=MAX_PATHS))]
    pub(crate) paths: Option<u64>,
    /// Random seed (overrides `[run] seed`). The same seed gives the same numbers to the
    /// last bit on any number of threads.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
}

impl SimulationArgs {
    /// The run settings of `job` with these overrides.
    pub(crate) fn settings(&self, job: &Job) -> SimulationSettings {
        let run = &job.scenario.run;
        SimulationSettings {
            paths: self.paths.unwrap_or(run.paths),
            seed: self.seed.unwrap_or(run.seed),
            horizon_days: run.horizon_days,
            steps: run.steps,
            threads: threads(self.threads),
        }
    }
}

/// `--threads N`, or every core.
pub(crate) fn threads(flag: Option<u16>) -> Threads {
    flag.map_or_else(Threads::all, |n| Threads::exactly(usize::from(n)))
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) common: ScenarioArgs,
    #[command(flatten)]
    pub(crate) currency: CurrencyArg,
    #[command(flatten)]
    pub(crate) simulation: SimulationArgs,
    /// Write pnl.parquet (per-path P&L), summary.json and measures.csv into this folder.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// How options are revalued: `full` (every option on every path), `grid` (per-underlying
    /// revaluation surfaces), or `auto` (the grid where it is estimated to take less work
    /// than full revaluation for this book and path count and its error seen on pilot paths
    /// is below 0.1 % of VaR, else full). After a grid pass, every path that can reach the
    /// reported tails is revalued in full, so VaR, ES and their standard errors are the
    /// full-revaluation figures. Contributions and importance sampling always use full
    /// revaluation.
    #[arg(long, value_enum, default_value_t = Revaluation::Auto)]
    pub(crate) revaluation: Revaluation,
    /// Simulate only shard I of N (0-based): a disjoint slice of the paths, written with
    /// --out for `tailrisk merge`, which gives exactly the single-machine result.
    #[arg(long, value_name = "I/N", value_parser = ShardSpec::parse, requires = "out", conflicts_with = "contributions")]
    pub(crate) shard: Option<ShardSpec>,
    /// Importance sampling for far tails (one-step runs, normal or Student-t): a plain pilot
    /// finds the tail regions (a short straddle has two), paths are drawn from a mixture of
    /// shocks shifted to each region's design point (and a tilted chi-square under
    /// Student-t) plus a 20% share of the model itself, with exact likelihood-ratio weights
    /// bounded by 5. Prints the variance gain; falls back to plain Monte Carlo, saying why,
    /// when the pilot's tail cannot be covered. Revalues in full.
    #[arg(long, conflicts_with_all = ["shard", "contributions", "out"])]
    pub(crate) importance_sampling: bool,
    /// Add component (Euler), marginal and incremental VaR and ES by this grouping.
    /// One of: position, underlying, venue, counterparty, book.
    #[arg(long, value_name = "GROUP", value_parser = parse_grouping)]
    pub(crate) contributions: Option<Grouping>,
    /// Confidence level of the contributions (default: the highest configured level).
    #[arg(long, value_name = "LEVEL", requires = "contributions", value_parser = parse_level)]
    pub(crate) contribution_level: Option<f64>,
}

/// How options are revalued on each path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Revaluation {
    Full,
    Grid,
    Auto,
}

impl Revaluation {
    pub(crate) fn mode(self) -> RevaluationMode {
        match self {
            Revaluation::Full => RevaluationMode::Full,
            Revaluation::Grid => RevaluationMode::Grid,
            Revaluation::Auto => RevaluationMode::Auto,
        }
    }
}

/// A grouping's name (`position`, `underlying`, `venue`, `counterparty`, `book`).
fn parse_grouping(text: &str) -> std::result::Result<Grouping, String> {
    text.parse()
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
pub(crate) struct MarginArgs {
    #[command(flatten)]
    pub(crate) common: ScenarioArgs,
    #[command(flatten)]
    pub(crate) simulation: SimulationArgs,
    /// Steps at which margin is checked over the horizon (overrides `[run] steps`; e.g. 24
    /// for hourly over one day).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) steps: Option<u32>,
    /// Target liquidation probability of the capital buffers.
    #[arg(long, default_value_t = 0.01, value_parser = parse_probability)]
    pub(crate) target: f64,
    /// Hours before a central reserve can reach a venue after its first margin call.
    #[arg(long, value_name = "HOURS", default_value_t = 4.0, value_parser = parse_hours)]
    pub(crate) reserve_delay: f64,
}

/// A probability strictly between 0 and 1.
fn parse_probability(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(format!(
            "expected a probability between 0 and 1 like 0.01, found '{text}'"
        )),
    }
}

/// A non-negative number of hours.
fn parse_hours(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(h) if h.is_finite() && h >= 0.0 => Ok(h),
        _ => Err(format!(
            "expected a number of hours (0 or more), found '{text}'"
        )),
    }
}

#[derive(Debug, Args)]
pub(crate) struct ExposuresArgs {
    #[command(flatten)]
    pub(crate) common: ScenarioArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Routes: GET /health, /metrics, /risk, /limits, /events (server-sent \
events), / (dashboard); POST /trades, /whatif; DELETE /positions/{id}; PUT /market, /limits. \
See the README's API table.\n\nExample:\n  tailrisk serve scenarios/fund.toml --listen \
127.0.0.1:8080 --db tailrisk.db"
)]
pub(crate) struct ServeArgs {
    /// Scenario file (TOML): model, run settings, market file, and the positions file imported
    /// into an empty database.
    pub(crate) scenario: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// The SQLite database holding trades, market updates and limits (created if absent;
    /// WAL mode). The book is rebuilt from it on start.
    #[arg(long, value_name = "FILE", default_value = "tailrisk.db")]
    pub(crate) db: PathBuf,
    /// A positions file (CSV or Parquet) to import on start; ids already held are kept.
    #[arg(long, value_name = "FILE")]
    pub(crate) import: Option<PathBuf>,
    /// Monte Carlo paths of the live run (overrides `[run] paths`).
    #[arg(long)]
    pub(crate) paths: Option<u64>,
    /// Random seed (overrides `[run] seed`).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Worker threads of the runs and what-ifs (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<u16>,
    /// Grouping of the contributions in `GET /risk`: position, underlying, venue,
    /// counterparty or book.
    #[arg(long, value_name = "GROUP", value_parser = parse_grouping, default_value = "book")]
    pub(crate) group: Grouping,
    /// Repair a correlation matrix that is not positive definite (Higham's nearest).
    #[arg(long)]
    pub(crate) repair_correlation: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("edit").required(true).multiple(true).args(["trades", "remove"])))]
pub(crate) struct WhatifArgs {
    #[command(flatten)]
    pub(crate) common: ScenarioArgs,
    #[command(flatten)]
    pub(crate) currency: CurrencyArg,
    #[command(flatten)]
    pub(crate) simulation: SimulationArgs,
    /// Proposed trades: a CSV or Parquet file with the positions file's columns (a negative
    /// quantity reduces a position). Ids must differ from the book's.
    #[arg(long, value_name = "FILE")]
    pub(crate) trades: Option<PathBuf>,
    /// Position ids to take out of the book, comma separated.
    #[arg(long, value_name = "ID,ID", value_delimiter = ',')]
    pub(crate) remove: Vec<String>,
    /// Keep the base run in DIR (the book's P&L and every path's moves; about 8 bytes × paths
    /// × (1 + 2 × underlyings + surface slots)) and reuse it: the first call simulates and
    /// writes it, later calls on the same inputs revalue only the trades. Same numbers.
    #[arg(long, value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tailrisk hedge scenarios/fund.toml\n  tailrisk hedge \
scenarios/fund.toml --instruments scenarios/hedge/candidates.csv --target-es 500000 --budget 20000 \
--out hedge/\n  tailrisk whatif scenarios/fund.toml --trades hedge/trades.csv"
)]
pub(crate) struct HedgeArgs {
    #[command(flatten)]
    pub(crate) common: ScenarioArgs,
    #[command(flatten)]
    pub(crate) currency: CurrencyArg,
    #[command(flatten)]
    pub(crate) simulation: SimulationArgs,
    /// Candidate instruments: the positions file's columns (quantity not read) plus optional
    /// cost (USD per unit), bid / ask, min_quantity / max_quantity and lot. Default: one linear
    /// perpetual per coin held, at 5 bp of notional per unit.
    #[arg(long, value_name = "CANDIDATES")]
    pub(crate) instruments: Option<PathBuf>,
    /// Minimise ES at --level (the default goal).
    #[arg(long, value_enum, conflicts_with_all = ["target_es", "neutralize"])]
    pub(crate) minimize: Option<Minimize>,
    /// The cheapest trades whose ES at --level (costs included) is at most X, USD.
    #[arg(long, value_name = "X", value_parser = parse_loss, conflicts_with = "neutralize")]
    pub(crate) target_es: Option<f64>,
    /// Skip the optimisation: zero net delta per underlying with perpetuals, or net vega with
    /// each underlying's option candidate of most vega (then delta with perpetuals).
    #[arg(long, value_enum)]
    pub(crate) neutralize: Option<Greek>,
    /// ES confidence level.
    #[arg(long, default_value_t = 0.975, value_parser = parse_probability)]
    pub(crate) level: f64,
    /// Most net premium plus fees and spread the trades may spend, USD (not with
    /// --neutralize, whose quantities are fixed by the exposures).
    #[arg(long, value_name = "USD", value_parser = parse_budget, conflicts_with = "neutralize")]
    pub(crate) budget: Option<f64>,
    /// Seed of the fresh paths the trades are judged on (default: the run's seed + 1).
    #[arg(long)]
    pub(crate) check_seed: Option<u64>,
    /// Write trades.csv (positions format, ready for `whatif --trades`) and summary.json here.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// What `--minimize` may minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Minimize {
    /// Expected Shortfall at --level.
    Es,
}

/// A sensitivity `--neutralize` zeroes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Greek {
    /// Net delta per underlying, with perpetuals.
    Delta,
    /// Net vega per underlying, with option candidates (then delta).
    Vega,
}

/// A budget: a finite amount of money ≥ 0.
fn parse_budget(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("expected an amount ≥ 0 like 25000, found '{text}'")),
    }
}

#[derive(Debug, Args)]
pub(crate) struct StressArgs {
    #[command(flatten)]
    pub(crate) common: ScenarioArgs,
    #[command(flatten)]
    pub(crate) currency: CurrencyArg,
    #[command(flatten)]
    pub(crate) options: StressOptions,
}

/// What a stress run covers beyond the scenario file's `[[stress]]` and the grid.
#[derive(Debug, Args)]
pub(crate) struct StressOptions {
    /// More `[[stress]]` scenarios from these files (e.g. scenarios/stress/crypto_history.toml).
    #[arg(long = "stress-file", value_name = "FILE")]
    pub(crate) stress_files: Vec<PathBuf>,
    /// Replay every historical move of this daily price file (columns date, then U or
    /// U:close per underlying; CSV or Parquet).
    #[arg(long, value_name = "PRICES")]
    pub(crate) history: Option<PathBuf>,
    /// Length of the replayed moves in calendar days.
    #[arg(long, default_value_t = 1, requires = "history", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) window: u64,
    /// How many of the worst historical windows to report.
    #[arg(long, default_value_t = 10, requires = "history")]
    pub(crate) worst: usize,
    /// Find the most plausible move (smallest Mahalanobis distance) losing at least LOSS.
    #[arg(long, value_name = "LOSS", value_parser = parse_loss)]
    pub(crate) reverse: Option<f64>,
    /// Add term-structure grids, Deribit style: the grid's vol move is the 30-day one and an
    /// option with T days left moves its vol by (1 + move)^((30/T)^P); Deribit's portfolio
    /// margin uses P = 0.30 under 30 days and 0.13 beyond. P in [0, 1].
    #[arg(long, value_name = "P", value_parser = parse_power)]
    pub(crate) term_power: Option<f64>,
}

/// A term-structure power in [0, 1].
fn parse_power(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "expected a power in [0, 1] like 0.3, found '{text}'"
        )),
    }
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
pub(crate) struct ReportArgs {
    /// Scenario file (TOML).
    pub(crate) scenario: PathBuf,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Repair a correlation matrix that is not positive definite (Higham).
    #[arg(long)]
    pub(crate) repair_correlation: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) currency: CurrencyArg,
    #[command(flatten)]
    pub(crate) simulation: SimulationArgs,
    #[command(flatten)]
    pub(crate) stress: StressOptions,
    /// Add a proposed hedge: the least-ES trades at 97.5 % among the default perpetuals (one
    /// per coin held), judged on fresh paths (USD reports only).
    #[arg(long)]
    pub(crate) hedge: bool,
    /// Propose the hedge among these candidates instead (implies --hedge).
    #[arg(long, value_name = "CANDIDATES")]
    pub(crate) hedge_instruments: Option<PathBuf>,
}

/// How the past is weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Method {
    /// Exponentially weighted (RiskMetrics), decay --lambda.
    Ewma,
    /// Equally weighted over the window, mean removed.
    Sample,
}

/// Flags of every command that calibrates.
#[derive(Debug, Args)]
pub(crate) struct CalibrationArgs {
    /// Daily prices: a date column, then `U` or `U:close` per underlying (CSV or Parquet).
    #[arg(long, value_name = "PRICES")]
    pub(crate) history: PathBuf,
    /// Daily implied-vol history, CSV or Parquet, in one of two layouts told apart by the
    /// columns. Wide: a date column, then one implied-vol level per underlying in columns `U`
    /// or `U:vol` (one factor `U.vol`). Long (pillars): columns `date,underlying,tenor_days,vol`,
    /// one row per date, underlying and tenor (whole days ≥ 1), `vol` the ATM implied vol as a
    /// fraction (0.55); each underlying gets one factor `U.vol.{N}d` per distinct tenor and
    /// the output has `vol_pillars` and a `vol_of_vol` per pillar. Rows of underlyings not in
    /// the price history are ignored with a note. Without this file, vol factors get the
    /// documented defaults.
    #[arg(long, value_name = "VOLS")]
    pub(crate) vol_history: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) weighting: WeightingArgs,
}

/// How each calibration weights the past.
#[derive(Debug, Args)]
pub(crate) struct WeightingArgs {
    /// Weighting of the past.
    #[arg(long, value_enum, default_value_t = Method::Ewma)]
    pub(crate) method: Method,
    /// EWMA decay per day.
    #[arg(long, default_value_t = 0.94, value_parser = parse_lambda)]
    pub(crate) lambda: f64,
    /// Use only the last N returns of each series (before each day, when backtesting).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub(crate) window: Option<u64>,
}

impl WeightingArgs {
    pub(crate) fn weighting(&self) -> Weighting {
        match self.method {
            Method::Ewma => Weighting::Ewma {
                lambda: self.lambda,
            },
            Method::Sample => Weighting::Sample,
        }
    }

    pub(crate) fn window(&self) -> Option<usize> {
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
pub(crate) struct CalibrateArgs {
    #[command(flatten)]
    pub(crate) calibration: CalibrationArgs,
    /// Only these underlyings (default: every price column).
    #[arg(long, value_delimiter = ',', value_name = "U,U")]
    pub(crate) underlyings: Vec<String>,
    /// Output: the [model] section as TOML (`table`) or the calibration as JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// Also write the [model] section to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BacktestArgs {
    /// Scenario file whose book is backtested (with --history).
    #[arg(required_unless_present = "series", requires = "history")]
    pub(crate) scenario: Option<PathBuf>,
    /// Daily prices for the rolling backtest (`U` or `U:close` columns).
    #[arg(long, value_name = "PRICES", conflicts_with = "series")]
    pub(crate) history: Option<PathBuf>,
    /// Backtest a given series instead: CSV or Parquet with date,pnl,var and optionally es.
    #[arg(long, value_name = "FILE")]
    pub(crate) series: Option<PathBuf>,
    /// Confidence level tested (default: the scenario's highest level, or 0.99).
    #[arg(long, value_parser = parse_level)]
    pub(crate) confidence: Option<f64>,
    #[command(flatten)]
    pub(crate) weighting: WeightingArgs,
    /// Forecast with normal shocks instead of the fitted Student-t.
    #[arg(long)]
    pub(crate) normal: bool,
    /// Backtest only the last N usable days (at least 100).
    #[arg(long, value_name = "N", value_parser = parse_days)]
    pub(crate) days: Option<usize>,
    /// Monte Carlo paths per daily forecast.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub(crate) paths: u64,
    /// Random seed (day i uses seed + i).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
    /// Exception rate the rate multiplier targets (default 1 − confidence).
    #[arg(long, value_name = "RATE", value_parser = parse_level)]
    pub(crate) target_rate: Option<f64>,
    /// Skip the alternative models (normal vs Student-t, EWMA vs sample).
    #[arg(long)]
    pub(crate) no_alternatives: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// Write the daily series (date, pnl, var, es, exception) as Parquet and CSV here.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The shards' JSON files (shard-I-of-N.json), every one of the run.
    #[arg(required = true)]
    pub(crate) shards: Vec<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// Write summary.json and measures.csv into this folder.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SyntheticArgs {
    /// Folder to write (created if missing).
    pub(crate) dir: PathBuf,
    /// Number of underlyings.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) underlyings: u16,
    /// Number of option positions (distinct contracts).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) options: usize,
    /// `[run] paths` of the written scenario.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) paths: u64,
    /// Seed of the book's random draws (the same seed writes the same files).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}
