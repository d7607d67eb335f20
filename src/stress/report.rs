//! Everything `tailrisk stress` reports for a scenario, assembled in one call: its named
//! scenarios and those of extra stress files, the spot × vol grids, and on request
//! term-structure grids, a historical replay and a reverse stress.

use std::path::PathBuf;

use crate::error::Result;
use crate::input::job::Job;
use crate::input::scenario::load_stress_file;
use crate::report::text::{StressReport, TermStructureGrids};
use crate::stress::replay::{replay, PriceHistory};
use crate::stress::reverse::reverse_stress;
use crate::stress::scenarios::{stress_grids, StressBook, GRID_SPOT_MOVES, GRID_VOL_MOVES};

/// The stresses asked for beyond the scenario file's own `[[stress]]` entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StressRequest {
    /// Extra stress files (TOML with `[[stress]]` entries).
    pub stress_files: Vec<PathBuf>,
    /// A daily price history to replay, with the replay window in days and how many of the
    /// worst windows to keep.
    pub history: Option<(PathBuf, u64, usize)>,
    /// A loss (reporting currency, positive) whose most plausible move is wanted.
    pub reverse: Option<f64>,
    /// The power p of term-structure grids (vol shocks ∝ (30/T)^p), when wanted.
    pub term_power: Option<f64>,
}

/// Named scenarios (the scenario file's, then each stress file's), the grids, and the
/// requested replay and reverse stress of `job`.
pub fn stress_report(job: &Job, request: &StressRequest) -> Result<StressReport> {
    let book = StressBook::new(job);
    let mut scenarios = Vec::new();
    for spec in &job.scenario.stress {
        scenarios.push(book.run_spec(spec, &job.scenario.path)?);
    }
    for file in &request.stress_files {
        for spec in load_stress_file(file)? {
            scenarios.push(book.run_spec(&spec, file)?);
        }
    }
    let history = match &request.history {
        Some((file, window, worst)) => {
            let history = PriceHistory::load(file, &book.underlying_names())?;
            Some(replay(&book, &history, *window, *worst))
        }
        None => None,
    };
    Ok(StressReport {
        base_value: job.base_value(),
        currency: job.currency.name.clone(),
        horizon_days: job.scenario.run.horizon_days,
        valuation_time: job.valuation_time.to_rfc3339(),
        stress: scenarios,
        grid: stress_grids(&book, &GRID_SPOT_MOVES, &GRID_VOL_MOVES),
        term_structure_grid: request.term_power.map(|power| TermStructureGrids {
            power,
            grids: stress_grids(
                &StressBook::with_term_structure(job, power),
                &GRID_SPOT_MOVES,
                &GRID_VOL_MOVES,
            ),
        }),
        history,
        reverse: request.reverse.map(|loss| reverse_stress(job, &book, loss)),
    })
}
