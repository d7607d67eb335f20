//! The live book, market and paths: the inputs as the store holds them, the last completed
//! run over them, and the background runner that recomputes it when they change.
//!
//! Consistency: a change is validated whole, stored in one transaction and applied to the
//! inputs under one lock, which bumps the input version; a request never sees part of it.
//! The runner takes a snapshot of the inputs, computes a run and publishes it whole; until
//! then the previous run keeps being served with its own version, and what-ifs use it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::book::aggregate::AggregatedBook;
use crate::book::exposures::{exposures, ExposureRow};
use crate::book::grouping::Grouping;
use crate::book::positions::Book;
use crate::error::{Error, Result};
use crate::input::job::{valuation_time, Job};
use crate::input::scenario::ScenarioFile;
use crate::input::table::Table;
use crate::market::vol_surface::VolSurfaces;
use crate::market::MarketData;
use crate::mc::simulation::SimulationSettings;
use crate::mc::threads::Threads;
use crate::model::factors::FactorModel;
use crate::pricing::revaluation::Revaluer;
use crate::risk::contributions::Contribution;
use crate::risk::measures::{var_es, RiskMeasure};
use crate::risk::whatif::{what_if_on, BaseRun, WhatIf};
use crate::service::limits::{net_delta, Limit, LimitMeasure, LimitScope, LimitStatus};
use crate::service::store::{MarketUpdate, Store, StoredPosition};

/// The columns of a positions file, in the order the service writes them.
pub const POSITION_COLUMNS: [&str; 13] = [
    "id",
    "kind",
    "underlying",
    "quantity",
    "venue",
    "counterparty",
    "book",
    "option_type",
    "strike",
    "expiry",
    "implied_vol",
    "multiplier",
    "settlement",
];

/// How the service runs: overrides of the scenario's simulation settings and the grouping
/// of contributions.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Paths of every run (the scenario's `[run] paths` when `None`).
    pub paths: Option<u64>,
    /// Seed of every run (the scenario's `[run] seed` when `None`).
    pub seed: Option<u64>,
    /// Worker threads of runs and what-ifs.
    pub threads: Threads,
    /// The grouping of `GET /risk`'s contributions.
    pub group: Grouping,
    /// Whether a correlation matrix that is not positive definite may be repaired.
    pub repair_correlation: bool,
}

/// The inputs of the next run.
#[derive(Debug, Clone)]
struct Inputs {
    positions: Vec<StoredPosition>,
    market: MarketData,
    /// The time the book is valued at: the scenario's `[run] valuation_time` where it pins
    /// one, else the as-of time of the last market update that gave one, else the market
    /// file's as-of ([`valuation_time`]).
    valuation_time: DateTime<Utc>,
    limits: Vec<Limit>,
    /// Bumped by every accepted change.
    version: u64,
    /// Bumped by changes of the book or the market (not of the limits): a run is needed.
    book_version: u64,
}

/// A completed run, served until the next one completes.
pub struct Completed {
    /// The input version it was computed from.
    pub version: u64,
    /// The book-and-market version of its simulation (a limits change reuses it).
    book_version: u64,
    /// The job it ran (book, market and model).
    pub job: Arc<Job>,
    /// Its paths, kept for what-ifs.
    pub base: Arc<BaseRun>,
    /// The book's P&L per path in the reporting currency (what the measures are of).
    book_pnl: Arc<Vec<f64>>,
    /// What `GET /risk` answers.
    pub risk: RiskView,
    /// The limits with their figures.
    pub limits: Vec<LimitStatus>,
}

/// One simulation of the book and market: what a limits-only change reuses.
struct Simulated {
    job: Arc<Job>,
    base: Arc<BaseRun>,
    book_pnl: Arc<Vec<f64>>,
    risk: RiskView,
}

/// The latest VaR, ES, exposures and contributions (`GET /risk`).
#[derive(Debug, Clone, Serialize)]
pub struct RiskView {
    /// The input version (trades, market and limits changes accepted) the figures are of.
    pub version: u64,
    /// When the run completed, RFC 3339 UTC.
    pub computed_at: String,
    /// Seconds the run took.
    pub run_seconds: f64,
    /// The valuation time, RFC 3339 UTC.
    pub valuation_time: String,
    /// Paths, seed, horizon (days) and steps.
    pub paths: u64,
    /// Random seed.
    pub seed: u64,
    /// Horizon in calendar days.
    pub horizon_days: f64,
    /// Reporting currency.
    pub currency: String,
    /// Mark-to-market value today, reporting currency.
    pub base_value: f64,
    /// Positions in the book.
    pub positions: usize,
    /// VaR and ES per level with standard errors, positive = loss.
    pub measures: Vec<RiskMeasure>,
    /// Net sensitivities by underlying, venue, counterparty and book.
    pub exposures: Vec<ExposureRow>,
    /// Euler contributions by the service's grouping at its highest level (USD books).
    pub contributions: Vec<Contribution>,
}

/// One simulation's figures, a point of `GET /history` (the dashboard's chart over time).
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    /// The input version of the run that simulated it.
    pub version: u64,
    /// When that run completed, RFC 3339 UTC.
    pub computed_at: String,
    /// VaR and ES per level with standard errors, positive = loss.
    pub measures: Vec<RiskMeasure>,
}

/// Simulations `GET /history` keeps (the oldest is dropped first): at one run a minute,
/// more than a trading day.
pub const HISTORY_LENGTH: usize = 1000;

/// Something the service announces on `GET /events`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServiceEvent {
    /// A run completed.
    RiskRecomputed {
        /// Its input version.
        version: u64,
        /// VaR and ES.
        measures: Vec<RiskMeasure>,
    },
    /// A limit's figure went above it.
    LimitBreached {
        /// The input version.
        version: u64,
        /// The limit and its figure.
        status: LimitStatus,
    },
    /// A breached limit's figure came back under it.
    LimitCleared {
        /// The input version.
        version: u64,
        /// The limit and its figure.
        status: LimitStatus,
    },
    /// A run failed (the previous one keeps being served).
    RunFailed {
        /// The input version.
        version: u64,
        /// Why.
        error: String,
    },
}

/// Counters for `GET /metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Runs completed.
    pub runs: AtomicU64,
    /// Runs failed.
    pub failed_runs: AtomicU64,
    /// Microseconds of the last run.
    pub last_run_micros: AtomicU64,
    /// What-ifs answered.
    pub what_ifs: AtomicU64,
    /// Microseconds spent answering what-ifs.
    pub what_if_micros: AtomicU64,
    /// Requests refused as bad input (4xx).
    pub rejected: AtomicU64,
}

/// The live service state shared by the request handlers and the runner.
pub struct Live {
    scenario: ScenarioFile,
    settings: LiveSettings,
    simulation: SimulationSettings,
    store: Store,
    inputs: Mutex<Inputs>,
    completed: RwLock<Option<Arc<Completed>>>,
    /// The figures of the last simulations since the service started, oldest first.
    history: Mutex<VecDeque<HistoryPoint>>,
    /// The input version the runner should reach, and its wake-up.
    wanted: (Mutex<u64>, Condvar),
    /// The last input version a run was tried on (a failed run is not retried on the same
    /// inputs).
    attempted: AtomicU64,
    /// Held through each change, from its checks to its commit: changes one at a time.
    changing: Mutex<()>,
    /// The last run's failure (input version, error), cleared by a completed run.
    last_failure: Mutex<Option<(u64, String)>>,
    events: broadcast::Sender<ServiceEvent>,
    /// Request and run counters.
    pub counters: Counters,
    /// What-ifs run one at a time, each on every worker, in the order they came (a fair
    /// queue: under load each waits its turn rather than some starving).
    pub what_if_turn: tokio::sync::Semaphore,
}

/// A change of the market: updates of spots and ATM vols, and the market's new as-of time
/// (the service's valuation time from then on), either optional.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketChange {
    /// Spot and ATM-vol updates, in the request's order.
    pub updates: Vec<MarketUpdate>,
    /// The time the market is as of, if the request gives one.
    pub as_of: Option<DateTime<Utc>>,
}

/// A change refused: the field at fault and why (a 4xx answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// HTTP status: 400 bad input, 404 unknown id, 409 conflicting id, 503 no run yet.
    pub status: u16,
    /// The field (path into the request) at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    /// A 400 about `field`.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// Either a refusal (the caller's fault) or a failure of the service.
#[derive(Debug)]
pub enum ChangeError {
    /// A 4xx.
    Refused(Refusal),
    /// A 5xx (database, run).
    Failed(Error),
}

impl From<Refusal> for ChangeError {
    fn from(r: Refusal) -> Self {
        ChangeError::Refused(r)
    }
}

impl From<Error> for ChangeError {
    fn from(e: Error) -> Self {
        ChangeError::Failed(e)
    }
}

/// A book of `positions` (in order) checked against `market` at `valuation_time`.
fn book_of(
    positions: &[StoredPosition],
    source_name: &str,
    market: &MarketData,
    valuation_time: DateTime<Utc>,
) -> Result<Book> {
    let mut names: Vec<String> = POSITION_COLUMNS.iter().map(|s| s.to_string()).collect();
    let extra: BTreeSet<&String> = positions
        .iter()
        .flat_map(|p| p.cells.keys())
        .filter(|k| !POSITION_COLUMNS.contains(&k.as_str()))
        .collect();
    names.extend(extra.into_iter().cloned());
    let records: Vec<BTreeMap<String, String>> =
        positions.iter().map(|p| p.cells.clone()).collect();
    let table = Table::from_records(&PathBuf::from(source_name), &names, &records);
    Book::from_table(&table, market, valuation_time)
}

/// A refusal from a loader's error about records (naming the row and field): record i of
/// those loaded (from 0) is `array[index(i)]` of the request (`None`: not one of its).
fn refused(e: Error, array: &str, index: impl Fn(usize) -> Option<usize>) -> Refusal {
    let at = |row: usize| row.checked_sub(1).and_then(&index);
    match &e {
        Error::Input {
            location: crate::error::Location::Row { row, .. },
            field,
            message,
            ..
        } if at(*row).is_some() => Refusal::bad(
            format!(
                "{array}[{}]{}",
                at(*row).unwrap_or_default(),
                field.as_ref().map_or(String::new(), |f| format!(".{f}"))
            ),
            message.clone(),
        ),
        _ => Refusal {
            status: 400,
            field: None,
            message: e.to_string(),
        },
    }
}

impl Live {
    /// Opens the store at `db`, imports `import` (or, into an empty store, the scenario's own
    /// positions file), applies the stored market updates and computes the first run.
    pub fn start(
        scenario_path: &Path,
        db: &Path,
        import: Option<&Path>,
        settings: LiveSettings,
    ) -> Result<Arc<Live>> {
        let scenario = ScenarioFile::load(scenario_path)?;
        let mut market = MarketData::load(&scenario.market_file)?;
        let store = Store::open(db)?;
        // a stored as-of time moves the file's forward, never back (a newer market file wins)
        let valuation_time = match (scenario.run.valuation_time, store.valuation_time()?) {
            (None, Some(as_of)) => as_of.max(valuation_time(&scenario, &market)),
            _ => valuation_time(&scenario, &market),
        };
        for update in store.market_updates()? {
            market
                .update(&update.underlying, update.spot, update.atm_vol)
                .map_err(|message| Error::Resource {
                    message: format!(
                        "database {}: a stored market update: {message}",
                        db.display()
                    ),
                })?;
        }
        let market = with_surfaces(market, &scenario, valuation_time)?;
        // the scenario's positions file seeds a new store only: deletions stay deleted
        let import = match import {
            Some(file) => Some(file.to_path_buf()),
            None if store.is_new()? => Some(scenario.portfolio_file.clone()),
            None => None,
        };
        if let Some(file) = import {
            let rows = file_positions(&file, &market, valuation_time)?;
            // ids held, or removed, are not imported again; under other fields they conflict
            let mut new = Vec::new();
            for row in rows {
                match store.known(&row.id)? {
                    None => new.push(row),
                    Some((cells, _))
                        if cells
                            == serde_json::to_string(&row.cells).expect("text cells serialise") => {
                    }
                    Some(_) => {
                        return Err(Error::in_file(
                            &file,
                            format!(
                                "position '{}' is in the database with other fields: give it \
                                 its own id (or remove it, then import it under a new one)",
                                row.id
                            ),
                        ))
                    }
                }
            }
            store.add_positions(&new)?;
        }
        store.mark_initialised()?;
        let positions = store.positions()?;
        let limits = store.limits()?;
        let (events, _) = broadcast::channel(256);
        let run = &scenario.run;
        let simulation = SimulationSettings {
            paths: settings.paths.unwrap_or(run.paths),
            seed: settings.seed.unwrap_or(run.seed),
            horizon_days: run.horizon_days,
            steps: run.steps,
            threads: settings.threads,
        };
        let live = Arc::new(Live {
            scenario,
            settings,
            simulation,
            store,
            inputs: Mutex::new(Inputs {
                positions,
                market,
                valuation_time,
                limits,
                version: 1,
                book_version: 1,
            }),
            completed: RwLock::new(None),
            history: Mutex::new(VecDeque::new()),
            wanted: (Mutex::new(1), Condvar::new()),
            attempted: AtomicU64::new(0),
            changing: Mutex::new(()),
            last_failure: Mutex::new(None),
            events,
            counters: Counters::default(),
            what_if_turn: tokio::sync::Semaphore::new(1),
        });
        // a first run that fails (a non-finite P&L on stored inputs) leaves the service up,
        // answering 503 for figures until a change makes the inputs runnable
        if let Err(e) = live.run_once() {
            live.failed(1, &e);
        }
        Ok(live)
    }

    /// Records a failed run of input version `version`.
    fn failed(&self, version: u64, error: &Error) {
        eprintln!("tailrisk: the run of input version {version} failed: {error}");
        self.counters.failed_runs.fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((version, error.to_string()));
        let _ = self.events.send(ServiceEvent::RunFailed {
            version,
            error: error.to_string(),
        });
        // not retried until the inputs change again
        self.mark_attempted(version);
    }

    /// The last failed run's input version and error, if the last run failed.
    pub fn last_failure(&self) -> Option<(u64, String)> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts the background runner (a thread that recomputes the run after each change).
    pub fn spawn_runner(self: &Arc<Live>) {
        let live = Arc::clone(self);
        std::thread::Builder::new()
            .name("tailrisk-runner".into())
            .spawn(move || loop {
                let wanted = {
                    let (lock, wake) = &live.wanted;
                    let mut wanted = lock.lock().unwrap_or_else(|p| p.into_inner());
                    while *wanted <= live.completed_version() {
                        wanted = wake.wait(wanted).unwrap_or_else(|p| p.into_inner());
                    }
                    *wanted
                };
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| live.run_once()));
                let error = match outcome {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(_) => Error::Numerical {
                        message: "the run panicked (a bug): see the service's stderr".into(),
                    },
                };
                live.failed(wanted, &error);
            })
            .expect("the runner thread starts");
    }

    /// The last completed run.
    pub fn completed(&self) -> Option<Arc<Completed>> {
        self.completed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The figures of the last [`HISTORY_LENGTH`] simulations, oldest first.
    pub fn history(&self) -> Vec<HistoryPoint> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().cloned().collect()
    }

    /// Adds a simulation's figures to the history.
    fn remember(&self, risk: &RiskView) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == HISTORY_LENGTH {
            history.pop_front();
        }
        history.push_back(HistoryPoint {
            version: risk.version,
            computed_at: risk.computed_at.clone(),
            measures: risk.measures.clone(),
        });
    }

    fn completed_version(&self) -> u64 {
        let attempted = self.attempted.load(Ordering::Acquire);
        self.completed().map_or(0, |c| c.version).max(attempted)
    }

    fn mark_attempted(&self, version: u64) {
        self.attempted.fetch_max(version, Ordering::AcqRel);
    }

    fn one_change_at_a_time(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The input version changes have reached.
    pub fn input_version(&self) -> u64 {
        self.inputs().version
    }

    /// The settings of every run.
    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Subscribes to the service's events.
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceEvent> {
        self.events.subscribe()
    }

    fn inputs(&self) -> std::sync::MutexGuard<'_, Inputs> {
        self.inputs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a change to the inputs (under their lock) and wakes the runner; `moves_book`:
    /// whether it changes the book or the market (else the last simulation is reused).
    fn accept(&self, moves_book: bool, change: impl FnOnce(&mut Inputs)) -> u64 {
        let version = {
            let mut inputs = self.inputs();
            change(&mut inputs);
            inputs.version += 1;
            if moves_book {
                inputs.book_version += 1;
            }
            inputs.version
        };
        let (lock, wake) = &self.wanted;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = version;
        wake.notify_all();
        version
    }

    /// Computes a run of the current inputs and publishes it; when only the limits changed
    /// since the last run, its simulation is reused and only the limits are measured.
    fn run_once(&self) -> Result<()> {
        let started = Instant::now();
        let inputs = self.inputs().clone();
        let previous = self.completed();
        let reused = previous
            .as_ref()
            .filter(|p| p.book_version == inputs.book_version);
        let simulated_now = reused.is_none();
        let Simulated {
            job,
            base,
            book_pnl,
            mut risk,
        } = match reused {
            Some(p) => Simulated {
                job: p.job.clone(),
                base: p.base.clone(),
                book_pnl: p.book_pnl.clone(),
                risk: p.risk.clone(),
            },
            None => self.simulate(&inputs, started)?,
        };
        let limits = statuses(&job, &base, &book_pnl, &inputs.limits)?;
        risk.version = inputs.version;
        let completed = Arc::new(Completed {
            version: inputs.version,
            book_version: inputs.book_version,
            job,
            base,
            book_pnl,
            risk,
            limits,
        });
        *self.completed.write().unwrap_or_else(|p| p.into_inner()) = Some(completed.clone());
        if simulated_now {
            self.remember(&completed.risk);
        }
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.counters.runs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .last_run_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.announce(previous.as_deref(), &completed);
        Ok(())
    }

    /// Simulates the book of `inputs` once: its job, the paths kept for what-ifs, and its
    /// P&L, VaR / ES and contributions read off them (the numbers of a full-revaluation
    /// `run` with `--contributions`, to the last bit).
    fn simulate(&self, inputs: &Inputs, started: Instant) -> Result<Simulated> {
        let job = self.job_of(
            &inputs.positions,
            inputs.market.clone(),
            inputs.valuation_time,
        )?;
        let simulation = self.simulation;
        let base = BaseRun::simulate(&job, simulation)?;
        let pnl = base.book_pnl_reported(&job)?;
        let measures = var_es(&pnl, &job.scenario.run.confidence);
        // contributions are computed in USD only
        let contributions = match job.currency.coin {
            None => {
                base.contributions(&job, self.settings.group, highest_level(&job))?
                    .0
            }
            Some(_) => Vec::new(),
        };
        let base = base.serving_requests();
        let seconds = started.elapsed().as_secs_f64();
        let risk = RiskView {
            version: inputs.version,
            computed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            run_seconds: seconds,
            valuation_time: job
                .valuation_time
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            paths: simulation.paths,
            seed: simulation.seed,
            horizon_days: simulation.horizon_days,
            currency: job.currency.name.clone(),
            base_value: job.base_value(),
            positions: job.book.positions.len(),
            measures,
            exposures: exposures(&job.book, &job.aggregated),
            contributions,
        };
        Ok(Simulated {
            job: Arc::new(job),
            base: Arc::new(base),
            book_pnl: Arc::new(pnl),
            risk,
        })
    }

    /// Events for a completed run: recomputed, then each limit that crossed.
    fn announce(&self, previous: Option<&Completed>, now: &Completed) {
        let _ = self.events.send(ServiceEvent::RiskRecomputed {
            version: now.version,
            measures: now.risk.measures.clone(),
        });
        let breached = |run: Option<&Completed>, limit: &Limit| {
            run.is_some_and(|r| {
                r.limits
                    .iter()
                    .any(|s| s.limit.same_figure(limit) && s.breached)
            })
        };
        for status in now.limits.iter().filter(|s| s.breached) {
            if !breached(previous, &status.limit) {
                let _ = self.events.send(ServiceEvent::LimitBreached {
                    version: now.version,
                    status: status.clone(),
                });
            }
        }
        // cleared: breached before, and now under its (possibly new) ceiling or withdrawn
        for before in previous
            .iter()
            .flat_map(|p| &p.limits)
            .filter(|s| s.breached)
        {
            if !breached(Some(now), &before.limit) {
                let status = now
                    .limits
                    .iter()
                    .find(|s| s.limit.same_figure(&before.limit))
                    .unwrap_or(before)
                    .clone();
                let _ = self.events.send(ServiceEvent::LimitCleared {
                    version: now.version,
                    status,
                });
            }
        }
    }

    /// The job of `positions` on `market`, valued at `valuation_time`.
    fn job_of(
        &self,
        positions: &[StoredPosition],
        market: MarketData,
        valuation_time: DateTime<Utc>,
    ) -> Result<Job> {
        let book = book_of(positions, "store", &market, valuation_time)?;
        Job::assemble(
            self.scenario.clone(),
            market,
            valuation_time,
            book,
            self.settings.repair_correlation,
        )
    }

    /// Adds trades (idempotent by id: a trade already held with the same cells is taken
    /// as delivered again; with other cells it is a conflict); all or none. Returns the
    /// new input version and the ids added.
    pub fn add_trades(
        &self,
        trades: Vec<StoredPosition>,
    ) -> std::result::Result<(u64, Vec<String>), ChangeError> {
        let _one = self.one_change_at_a_time();
        let (market, valuation_time) = {
            let inputs = self.inputs();
            (inputs.market.clone(), inputs.valuation_time)
        };
        let mut book = book_of(&trades, "POST /trades", &market, valuation_time)
            .map_err(|e| refused(e, "trades", Some))?;
        // the new trades and where each stood in the request
        let mut new = Vec::new();
        let mut request_index = Vec::new();
        for (i, trade) in trades.into_iter().enumerate() {
            // a trade delivered again (held, or removed since) is not booked twice
            match self.store.known(&trade.id)? {
                None => {
                    new.push(trade);
                    request_index.push(i);
                }
                Some((cells, _))
                    if cells == serde_json::to_string(&trade.cells).expect("cells") => {}
                Some((_, held)) => {
                    let was = if held {
                        "is already"
                    } else {
                        "was (removed since)"
                    };
                    return Err(Refusal {
                        status: 409,
                        field: Some(format!("trades[{i}].id")),
                        message: format!(
                            "'{}' {was} a position with other fields; give the trade its own id",
                            trade.id
                        ),
                    }
                    .into());
                }
            }
        }
        if new.is_empty() {
            return Ok((self.input_version(), Vec::new()));
        }
        // the whole book must still build (model, venues) before anything is stored
        let mut positions = self.inputs().positions.clone();
        let held = positions.len();
        positions.extend(new.iter().cloned());
        self.job_of(&positions, market.clone(), valuation_time)
            .map_err(|e| {
                refused(e, "trades", |row| {
                    row.checked_sub(held)
                        .and_then(|k| request_index.get(k).copied())
                })
            })?;
        book.positions.retain(|p| new.iter().any(|n| n.id == p.id));
        self.check_finite_on_live_paths(&book, &market, valuation_time)?;
        self.store.add_positions(&new)?;
        let ids = new.iter().map(|p| p.id.clone()).collect();
        let version = self.accept(true, |inputs| inputs.positions.extend(new));
        Ok((version, ids))
    }

    /// Refuses trades whose P&L is not finite on the live paths (absurd sizes or strikes),
    /// which would stop every later run.
    fn check_finite_on_live_paths(
        &self,
        book: &Book,
        market: &MarketData,
        valuation_time: DateTime<Utc>,
    ) -> std::result::Result<(), ChangeError> {
        let aggregated = |book: &Book, model: &FactorModel, path: &Path| {
            AggregatedBook::build(book, market, model, valuation_time, path)
                .map_err(|e| refused(e, "trades", Some).into())
        };
        if self.finite_on_live_paths(book, aggregated)? {
            return Ok(());
        }
        Err(Refusal::bad(
            "trades",
            "the trades' P&L is not finite on the live paths (a quantity, strike or price \
             beyond floating point)",
        )
        .into())
    }

    /// Whether `book`'s P&L is finite on every path of the last completed run (true before
    /// one), its aggregation built by `aggregate(book, model, scenario path)`.
    fn finite_on_live_paths(
        &self,
        book: &Book,
        aggregate: impl FnOnce(
            &Book,
            &FactorModel,
            &Path,
        ) -> std::result::Result<AggregatedBook, ChangeError>,
    ) -> std::result::Result<bool, ChangeError> {
        let Some(completed) = self.completed() else {
            return Ok(true);
        };
        let job = &completed.job;
        let aggregated = aggregate(book, &job.model, &job.scenario.path)?;
        let horizon = self.simulation.horizon_days;
        let revaluer = Revaluer::on_paths(&aggregated, &job.model, horizon);
        let pnl = completed.base.revalued(&revaluer)?;
        Ok(pnl.iter().all(|p| p.is_finite()))
    }

    /// Removes position `id`.
    pub fn remove_position(&self, id: &str) -> std::result::Result<u64, ChangeError> {
        let _one = self.one_change_at_a_time();
        if !self.inputs().positions.iter().any(|p| p.id == id) {
            return Err(Refusal {
                status: 404,
                field: Some("id".into()),
                message: format!("the book holds no position '{id}'"),
            }
            .into());
        }
        self.store.remove_position(id)?;
        Ok(self.accept(true, |inputs| inputs.positions.retain(|p| p.id != id)))
    }

    /// Applies market updates and the market's new as-of time (all or none). The as-of time
    /// becomes the valuation time: it may not go back, nor pass a held contract's expiry
    /// (a stale book is an error, not a zero), and a scenario that pins its valuation time
    /// takes none.
    pub fn update_market(&self, change: MarketChange) -> std::result::Result<u64, ChangeError> {
        let _one = self.one_change_at_a_time();
        let MarketChange { updates, as_of } = change;
        let (mut moved, current) = {
            let inputs = self.inputs();
            (inputs.market.clone(), inputs.valuation_time)
        };
        for u in &updates {
            let surfaced = moved
                .surfaces
                .as_ref()
                .is_some_and(|s| s.surface(&u.underlying).is_some());
            if u.atm_vol.is_some() && surfaced {
                return Err(Refusal::bad(
                    format!("{}.atm_vol", u.underlying),
                    format!(
                        "{}'s option vols are marked by the scenario's surface file, so an \
                         ATM vol would move none of them: update the surface file and restart",
                        u.underlying
                    ),
                )
                .into());
            }
            moved
                .update(&u.underlying, u.spot, u.atm_vol)
                .map_err(|message| Refusal::bad(u.underlying.clone(), message))?;
        }
        // the surfaces' forwards follow the spots, and the book must still value on the
        // market: first at the valuation time it has (a fault of the prices), then at the
        // market's new as-of time (a fault of the time)
        let positions = self.inputs().positions.clone();
        let build = |at: DateTime<Utc>,
                     field: &str|
         -> std::result::Result<(MarketData, Job), ChangeError> {
            let market = with_surfaces(moved.clone(), &self.scenario, at)
                .map_err(|e| Refusal::bad(field, e.to_string()))?;
            let job = self
                .job_of(&positions, market.clone(), at)
                .map_err(|e| Refusal::bad(field, e.to_string()))?;
            Ok((market, job))
        };
        let (mut market, mut job) = build(current, "market")?;
        let valuation_time = match as_of {
            None => current,
            Some(as_of) => self.next_valuation_time(current, as_of, &job.book)?,
        };
        if valuation_time != current {
            (market, job) = build(valuation_time, "as_of")?;
        }
        // a spot beyond floating point (1e307) would stop every later run: the positions on
        // the moved spots are revalued on the live paths
        let moved_spots: Vec<&str> = updates
            .iter()
            .filter(|u| u.spot.is_some())
            .map(|u| u.underlying.as_str())
            .collect();
        let mut book = job.book.clone();
        book.positions
            .retain(|p| moved_spots.contains(&p.underlying.as_str()));
        let aggregated = |book: &Book, model: &FactorModel, path: &Path| {
            AggregatedBook::build(book, &market, model, valuation_time, path)
                .map_err(|e| Refusal::bad("market", e.to_string()).into())
        };
        if !book.positions.is_empty() && !self.finite_on_live_paths(&book, aggregated)? {
            return Err(Refusal::bad(
                "market",
                "the book's P&L would not be finite on the live paths at these prices",
            )
            .into());
        }
        self.store.add_market_updates(&updates, as_of)?;
        Ok(self.accept(true, |inputs| {
            inputs.market = market;
            inputs.valuation_time = valuation_time;
        }))
    }

    /// The valuation time a market as of `as_of` gives, the service valuing `book` at
    /// `current`: refused where the scenario pins it, where it goes back, or where a
    /// contract of the book expires by then (409, naming them: remove them or book what
    /// they settled into).
    fn next_valuation_time(
        &self,
        current: DateTime<Utc>,
        as_of: DateTime<Utc>,
        book: &Book,
    ) -> std::result::Result<DateTime<Utc>, ChangeError> {
        if let Some(pinned) = self.scenario.run.valuation_time {
            return Err(Refusal::bad(
                "as_of",
                format!(
                    "the scenario pins [run] valuation_time = {}: remove the pin to let the \
                     market's as-of time move it",
                    pinned.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            )
            .into());
        }
        if as_of < current {
            return Err(Refusal::bad(
                "as_of",
                format!(
                    "goes back from the valuation time {}",
                    current.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            )
            .into());
        }
        let expired: Vec<&str> = book
            .positions
            .iter()
            .filter(|p| p.instrument.expiry().is_some_and(|e| e <= as_of))
            .map(|p| p.id.as_str())
            .collect();
        if !expired.is_empty() {
            return Err(Refusal {
                status: 409,
                field: Some("as_of".into()),
                message: format!(
                    "held contracts expire by then: {} (remove them, and book what they \
                     settled into, first)",
                    expired.join(", ")
                ),
            }
            .into());
        }
        Ok(as_of)
    }

    /// The limits in force with their figures on the last completed run, and its version.
    pub fn limits(&self) -> (u64, Vec<LimitStatus>) {
        self.completed()
            .map(|c| (c.version, c.limits.clone()))
            .unwrap_or_default()
    }

    /// Replaces the limits in force.
    pub fn replace_limits(&self, limits: Vec<Limit>) -> std::result::Result<u64, ChangeError> {
        let _one = self.one_change_at_a_time();
        for (i, limit) in limits.iter().enumerate() {
            if let Some((field, message)) = limit.problem() {
                return Err(Refusal::bad(format!("limits[{i}].{field}"), message).into());
            }
            let group_risk =
                limit.scope != LimitScope::Total && limit.measure != LimitMeasure::Delta;
            if group_risk && self.scenario.run.currency != "USD" {
                return Err(Refusal::bad(
                    format!("limits[{i}].scope"),
                    "a group's VaR or ES is computed in USD: report in USD to limit it",
                )
                .into());
            }
            let known = |name: &str| self.inputs().market.underlyings().any(|u| u == name);
            if let (LimitScope::Underlying, Some(name)) = (limit.scope, &limit.name) {
                if !known(name) {
                    return Err(Refusal::bad(
                        format!("limits[{i}].name"),
                        format!("the market has no underlying '{name}'"),
                    )
                    .into());
                }
            }
            if limits[..i].iter().any(|l| l.same_figure(limit)) {
                return Err(Refusal::bad(
                    format!("limits[{i}]"),
                    "caps the same figure as an earlier limit",
                )
                .into());
            }
        }
        self.store.replace_limits(&limits)?;
        Ok(self.accept(false, |inputs| inputs.limits = limits))
    }

    /// A pre-trade what-if on the last completed run's paths: `trades` added, `remove`
    /// taken out.
    pub fn what_if(
        &self,
        trades: Vec<StoredPosition>,
        remove: Vec<String>,
    ) -> std::result::Result<(u64, WhatIf), ChangeError> {
        let started = Instant::now();
        let Some(completed) = self.completed() else {
            return Err(Refusal {
                status: 503,
                field: None,
                message: "no run has completed yet".into(),
            }
            .into());
        };
        let job = &completed.job;
        if let Some(i) = remove
            .iter()
            .position(|id| !job.book.positions.iter().any(|p| &p.id == id))
        {
            return Err(Refusal {
                status: 404,
                field: Some(format!("remove[{i}]")),
                message: format!("the book holds no position '{}'", remove[i]),
            }
            .into());
        }
        let trades = if trades.is_empty() {
            None
        } else {
            Some(
                book_of(&trades, "POST /whatif", &job.market, job.valuation_time)
                    .map_err(|e| refused(e, "trades", Some))?,
            )
        };
        let result = what_if_on(job, &completed.base, trades, &remove).map_err(|e| match e {
            Error::Input { .. } | Error::Model { .. } => {
                ChangeError::Refused(refused(e, "trades", Some))
            }
            other => ChangeError::Failed(other),
        })?;
        self.counters.what_ifs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .what_if_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok((completed.version, result))
    }
}

/// `market` with the scenario's surface marks built over it (their forwards follow its
/// spots), as [`Job::load`] builds them.
fn with_surfaces(
    mut market: MarketData,
    scenario: &ScenarioFile,
    valuation_time: DateTime<Utc>,
) -> Result<MarketData> {
    if let Some(file) = &scenario.surface_file {
        market.surfaces = None;
        market.surfaces = Some(VolSurfaces::load(file, &market, valuation_time)?);
    }
    Ok(market)
}

/// The highest confidence level of the job's run settings.
fn highest_level(job: &Job) -> f64 {
    job.scenario
        .run
        .confidence
        .iter()
        .copied()
        .fold(f64::NAN, f64::max)
}

/// The positions of a positions file as stored cells (validated as a book first).
fn file_positions(
    file: &Path,
    market: &MarketData,
    valuation_time: DateTime<Utc>,
) -> Result<Vec<StoredPosition>> {
    let table = Table::read(file)?;
    Book::from_table(&table, market, valuation_time)?;
    Ok(table
        .rows()
        .map(|row| {
            let cells: BTreeMap<String, String> = table
                .names()
                .iter()
                .filter_map(|name| row.text(name).map(|v| (name.clone(), v.to_owned())))
                .collect();
            StoredPosition {
                id: cells.get("id").cloned().unwrap_or_default(),
                cells,
            }
        })
        .collect())
}

/// Every limit with its figure on the run: the whole book's VaR and ES from its P&L
/// `book_pnl` (reporting currency, as the run's measures), a group's standalone from its
/// positions revalued on the run's paths (USD), delta from the exposures.
fn statuses(
    job: &Job,
    base: &BaseRun,
    book_pnl: &[f64],
    limits: &[Limit],
) -> Result<Vec<LimitStatus>> {
    let rows = exposures(&job.book, &job.aggregated);
    limits
        .iter()
        .map(|limit| {
            let value = match limit.measure {
                LimitMeasure::Delta => net_delta(&rows, limit).abs(),
                LimitMeasure::Var | LimitMeasure::Es => {
                    let level = limit.confidence.unwrap_or(0.99);
                    let measure = match limit.scope {
                        LimitScope::Total => var_es(book_pnl, &[level])[0],
                        _ => group_measure(job, base, limit, level)?,
                    };
                    if limit.measure == LimitMeasure::Var {
                        measure.var
                    } else {
                        measure.es
                    }
                }
            };
            Ok(LimitStatus::of(limit.clone(), value))
        })
        .collect()
}

/// A group's standalone VaR and ES at `level`: its positions alone on the run's paths (USD).
fn group_measure(job: &Job, base: &BaseRun, limit: &Limit, level: f64) -> Result<RiskMeasure> {
    let grouping = limit
        .scope
        .grouping()
        .expect("a group limit has a grouping");
    let name = limit.name.as_deref().unwrap_or_default();
    let positions: Vec<_> = job
        .book
        .positions
        .iter()
        .filter(|p| grouping.key_of(p) == name)
        .cloned()
        .collect();
    if positions.is_empty() {
        return Ok(RiskMeasure {
            confidence: level,
            var: 0.0,
            es: 0.0,
            var_stderr: 0.0,
            es_stderr: 0.0,
        });
    }
    let book = Book {
        file: job.book.file.clone(),
        positions,
    };
    let horizon = base.settings().horizon_days;
    let aggregated = job.net(&book)?;
    let revaluer = Revaluer::on_paths(&aggregated, &job.model, horizon);
    let pnl = base.revalued(&revaluer)?;
    Ok(var_es(&pnl, &[level])[0])
}
