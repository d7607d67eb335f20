//! The Monte Carlo loop: blocks of paths in parallel, each block drawing its own random stream,
//! generating shocks step by step, building horizon moves and revaluing the netted book.
//!
//! Memory is O(paths): one P&L number per path, plus per-thread scratch of one block. No
//! paths × positions matrix is ever formed.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::book::aggregate::AggregatedBook;
use crate::error::{Error, Result};
use crate::market::currency::ReportingCurrency;
use crate::mc::cost::{CostEstimate, RunShape};
use crate::mc::paths::{HorizonMoves, PathBuilder, PathMove};
use crate::mc::proposal::Proposal;
use crate::mc::shocks::{block_rng, BlockDraws, ShockGenerator, BLOCK_PATHS};
use crate::mc::threads::Threads;
use crate::model::factors::FactorModel;
use crate::pricing::revaluation::Revaluer;
use crate::risk::measures::{largest, largest_losses, tail_keep, var_es};
use crate::time::DAYS_PER_YEAR;

/// How paths are revalued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevaluationMode {
    /// Every option priced on every path (the reference).
    Full,
    /// Options read off per-underlying surfaces.
    Grid,
    /// The grid where it is estimated to cost less than full revaluation
    /// ([`crate::mc::cost`]) and its measured error is below [`GRID_TOLERANCE`] of VaR, else
    /// full.
    Auto,
}

/// Blocks of paths on which the grid is compared with full revaluation.
pub const PILOT_BLOCKS: u64 = 2;
/// Largest grid error accepted by `Auto`, as a fraction of VaR.
pub const GRID_TOLERANCE: f64 = 1e-3;
/// Share of [`GRID_TOLERANCE`] the surfaces' interpolation may take: each surface is
/// tabulated finely enough for an error of this share of the pilot VaR over √(surfaces)
/// (errors of independent underlyings add in quadrature; in the worst case, all on one
/// path, a hundred surfaces reach the tolerance).
const TABULATION_SHARE: f64 = 0.1;
/// After a grid pass, the paths revalued in full must outrank every other path's grid loss
/// by this many times the largest grid error measured (on them and on the pilot).
const TAIL_SAFETY: f64 = 2.0;
/// Floor of that margin, as a fraction of the deepest loss the estimators read.
const TAIL_MARGIN_FLOOR: f64 = 1e-6;

/// The revaluation a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsedRevaluation {
    /// Every option priced in full on every path.
    Full,
    /// Options read off per-underlying revaluation surfaces.
    Grid,
}

/// What the revaluation check found (JSON `revaluation`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridCheck {
    /// `grid` or `full`: what the run used.
    pub mode: UsedRevaluation,
    /// Pilot paths on which the grid was compared with full revaluation (0 when no grid
    /// was tried).
    pub pilot_paths: usize,
    /// Largest |grid − full| P&L seen on the pilot paths, in reporting currency: what `auto`
    /// decides on (an error seen on a sample, not a bound on every path).
    pub max_abs_error: Option<f64>,
    /// The pilot's full-revaluation VaR at the lowest level, in reporting currency.
    pub reference_var: Option<f64>,
    /// max_abs_error / reference_var.
    pub relative_error: Option<f64>,
    /// Whether VaR, ES and their standard errors are full-revaluation figures: always with
    /// `full`; with `grid` once every path they read has been revalued in full.
    pub exact_tail: bool,
    /// With `grid`: how many of the largest losses the estimators read, every one revalued
    /// in full after the grid pass.
    pub exact_tail_paths: Option<usize>,
    /// With `grid`: the largest |grid − full| P&L among those paths, in reporting currency
    /// (how far the grid alone would have been off there).
    pub max_tail_error: Option<f64>,
    /// With `auto` or `grid`: the estimated work of the run in each mode, which `auto`
    /// chooses by ([`crate::mc::cost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_core_seconds: Option<CostEstimate>,
}

impl GridCheck {
    /// The check of a run that revalued in full without trying a grid.
    pub fn full() -> GridCheck {
        GridCheck {
            mode: UsedRevaluation::Full,
            pilot_paths: 0,
            max_abs_error: None,
            reference_var: None,
            relative_error: None,
            exact_tail: true,
            exact_tail_paths: None,
            max_tail_error: None,
            estimated_core_seconds: None,
        }
    }

    /// Records that the `paths` largest losses are full-revaluation figures, `max_error`
    /// being the largest grid error among them (`None` while unknown, as in a shard: the
    /// merge fills it).
    pub fn with_exact_tail(self, paths: usize, max_error: Option<f64>) -> GridCheck {
        GridCheck {
            exact_tail: true,
            exact_tail_paths: Some(paths),
            max_tail_error: max_error,
            ..self
        }
    }
}

/// One of the largest losses of a grid run, revalued in full.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailPath {
    /// Global path index.
    pub path: u64,
    /// Full-revaluation loss (−P&L), in reporting currency.
    pub loss: f64,
    /// |grid − full| P&L of the path, in reporting currency (0 when the run revalued in
    /// full).
    pub grid_error: f64,
}

/// The largest grid error among the `keep` largest losses of `rows`, ties in loss taken in
/// path order: the same figure from one run's tail and from the union of its shards' tails.
pub fn largest_tail_error(mut rows: Vec<TailPath>, keep: usize) -> f64 {
    rows.sort_unstable_by(|a, b| b.loss.total_cmp(&a.loss).then(a.path.cmp(&b.path)));
    rows.iter()
        .take(keep)
        .map(|r| r.grid_error)
        .fold(0.0, f64::max)
}

/// The paths of a grid run (or shard) revalued in full after the grid pass
/// ([`Simulator::exact_tail`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExactTail {
    /// Every path revalued in full, in path order.
    revalued: Vec<TailPath>,
    /// How many of the largest losses had to be exact.
    keep: usize,
}

impl ExactTail {
    /// The paths whose loss is at least the `keep`-th largest of the run (or shard), all
    /// revalued in full: what the estimators read, plus any ties.
    pub fn tail(&self) -> Vec<TailPath> {
        let losses = self.revalued.iter().map(|r| r.loss).collect();
        let Some(&kth) = largest(losses, self.keep).get(self.keep.max(1) - 1) else {
            return self.revalued.clone();
        };
        self.revalued
            .iter()
            .filter(|r| r.loss >= kth)
            .copied()
            .collect()
    }

    /// The largest |grid − full| P&L among the `keep` largest losses, in reporting currency.
    pub fn max_error(&self) -> f64 {
        largest_tail_error(self.tail(), self.keep)
    }
}

/// An error naming the first path of `pnl` (path `first_path` onwards) whose P&L is not
/// finite, `file` being the model's scenario file: the model and book move prices or values
/// beyond floating point, so the model is unusable as given. The message names the likely
/// causes, the multi-step Student-t vol feedback among them (docs/model.md).
pub fn check_finite(pnl: &[f64], first_path: u64, file: &Path) -> Result<()> {
    match pnl.iter().position(|p| !p.is_finite()) {
        Some(i) => Err(Error::Model {
            file: file.to_path_buf(),
            message: format!(
                "path {} has a non-finite P&L ({}): prices or values moved beyond floating \
                 point. Under Student-t shocks over several steps with a vol of vol, one \
                 path's small chi-square draw scales every spot and vol shock together and \
                 compounds (chi_square = \"per-step\" or a lower vol_of_vol bounds it); \
                 otherwise the vols, horizon, prices or position sizes are too large",
                first_path + i as u64,
                pnl[i]
            ),
        }),
        None => Ok(()),
    }
}

/// Half-widths of the surfaces per model underlying: ±14 horizon standard deviations of
/// ln S (widened for vol moves over several steps, plus the drift) and ±12 of ln iv (of its
/// most volatile pillar under vol pillars); the rare path beyond them is revalued in full.
fn grid_half_widths(model: &FactorModel, settings: &SimulationSettings) -> Vec<(f64, f64)> {
    let years = settings.horizon_days / DAYS_PER_YEAR;
    model
        .underlyings
        .iter()
        .map(|u| {
            let vol_of_vol = u
                .pillars
                .iter()
                .map(|p| p.vol_of_vol)
                .fold(u.vol_of_vol, f64::max);
            let vol_sd = vol_of_vol * years.sqrt();
            let spot =
                14.0 * u.spot_vol * years.sqrt() * (3.0 * vol_sd).exp() + u.drift.abs() * years;
            (spot, 12.0 * vol_sd)
        })
        .collect()
}

/// The interpolation error (USD) each of `surfaces` surfaces is tabulated for, the pilot's
/// VaR being `var_usd` USD ([`TABULATION_SHARE`]). Reported in a coin, an error of e USD is
/// e·e^{−x}/S_0 coins on a path where the coin moves by x: looser than the share where the
/// coin falls, which the share's tenfold margin covers (and the pilot measures).
fn surface_tolerance(var_usd: f64, surfaces: usize) -> f64 {
    TABULATION_SHARE * GRID_TOLERANCE * var_usd / (surfaces.max(1) as f64).sqrt()
}

/// Most paths one run keeps in memory: 2^30 P&L numbers are 8 GiB.
pub const MAX_PATHS: u64 = 1 << 30;

/// How many paths to simulate and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationSettings {
    /// Monte Carlo paths (count), at most [`MAX_PATHS`].
    pub paths: u64,
    /// Random seed: block b of paths draws from the ChaCha8 stream (seed, b), so the same seed
    /// gives the same paths.
    pub seed: u64,
    /// Horizon in calendar days.
    pub horizon_days: f64,
    /// Sub-steps of the horizon.
    pub steps: u32,
    /// Worker threads of the simulation's parallel loops (results do not depend on it).
    pub threads: Threads,
}

/// Per-thread buffers for one block.
#[derive(Default)]
struct Scratch {
    draws: BlockDraws,
    shocks: Vec<f64>,
    moves: HorizonMoves,
}

/// The moves of each block's paths with the largest grid losses, kept by a grid pass for
/// its exact tail: the tail's paths are read from here rather than regenerated, and a
/// block is generated again only when the tail reaches beyond what it kept.
#[derive(Debug, Clone, Default)]
pub struct TailStash {
    first_block: u64,
    /// Per block from `first_block` on.
    blocks: Vec<StashedRows>,
}

impl TailStash {
    /// The moves of paths `rows` (ascending indices within block `block`), if all are kept.
    fn moves(&self, block: u64, rows: &[usize]) -> Option<HorizonMoves> {
        let kept = self
            .blocks
            .get(block.checked_sub(self.first_block)? as usize)?;
        let positions: Option<Vec<usize>> = rows
            .iter()
            .map(|r| kept.rows.binary_search(r).ok())
            .collect();
        Some(kept.moves.subset(&positions?))
    }
}

/// Some paths of one block: their indices in the block (ascending) and their moves.
#[derive(Debug, Clone, Default)]
struct StashedRows {
    rows: Vec<usize>,
    moves: HorizonMoves,
}

impl StashedRows {
    /// The `count` paths of `pnl` with the largest losses (ties by index), with their moves.
    fn largest_losses(pnl: &[f64], moves: &HorizonMoves, count: usize) -> StashedRows {
        if count == 0 {
            return StashedRows::default();
        }
        let mut rows: Vec<usize> = (0..pnl.len()).collect();
        if count < rows.len() {
            rows.select_nth_unstable_by(count, |&a, &b| pnl[a].total_cmp(&pnl[b]).then(a.cmp(&b)));
            rows.truncate(count);
        }
        rows.sort_unstable();
        let moves = moves.subset(&rows);
        StashedRows { rows, moves }
    }
}

/// Largest memory the tail stash of one run may take (bytes): beyond it, blocks are
/// regenerated for their tail paths instead.
const STASH_BUDGET: f64 = 512.0 * 1024.0 * 1024.0;

/// Paths a grid pass keeps per block for an exact tail of the `keep` largest losses out of
/// `paths`: three times a block's share of the tail (the tail's band is wider than the
/// tail, and blocks' shares vary), plus 32, within [`STASH_BUDGET`] for rows of
/// `row_bytes` bytes.
fn stash_rows(keep: usize, paths: u64, row_bytes: usize) -> usize {
    let share = keep as f64 * BLOCK_PATHS as f64 / paths.max(1) as f64;
    let blocks = paths.div_ceil(BLOCK_PATHS as u64).max(1) as f64;
    let affordable = (STASH_BUDGET / (blocks * row_bytes.max(1) as f64)) as usize;
    ((3.0 * share).ceil() as usize + 32)
        .min(affordable)
        .min(BLOCK_PATHS)
}

/// First random stream of the importance-sampling pilot: far from the run's own block
/// streams (0, 1, …), so the proposal is independent of the paths it weights.
const PILOT_STREAM: u64 = 1 << 62;

/// Plain paths drawn apart from the run to design an importance-sampling proposal.
#[derive(Debug, Clone, Default)]
pub struct PilotDraws {
    /// Factors per path.
    pub factors: usize,
    /// P&L of each path (positive = gain).
    pub pnl: Vec<f64>,
    /// Whitened normals z of each path, one row of `factors` per path.
    pub normals: Vec<f64>,
    /// χ²(v) draw of each path (Student-t only; empty under normal shocks).
    pub chi_squares: Vec<f64>,
}

/// What a grid run keeps to revalue its tail in full.
struct FullRevaluation {
    /// The book's full revaluation (no surfaces).
    revaluer: Revaluer,
    /// Largest |grid − full| P&L on the pilot paths, in reporting currency.
    pilot_error: f64,
}

/// Everything fixed for a run: generator, path builder and revaluer.
pub struct Simulator {
    generator: ShockGenerator,
    builder: PathBuilder,
    revaluer: Revaluer,
    /// With grid revaluation: the full revaluation, for the tail paths.
    full: Option<FullRevaluation>,
    settings: SimulationSettings,
    /// Importance-sampling proposal, if on.
    proposal: Option<Proposal>,
    /// The scenario file, named when a P&L is not finite.
    file: PathBuf,
    /// The workers of `settings.threads`, on which every parallel loop runs.
    pool: Arc<rayon::ThreadPool>,
}

impl Simulator {
    /// Prepares a simulation of `book` under `model`.
    pub fn new(
        model: &FactorModel,
        book: &AggregatedBook,
        settings: SimulationSettings,
    ) -> Result<Simulator> {
        if settings.paths > MAX_PATHS {
            return Err(Error::Usage {
                message: format!(
                    "{} paths would need {:.1} GiB for the per-path P&L; at most {MAX_PATHS} \
                     paths fit one run",
                    settings.paths,
                    settings.paths as f64 * 8.0 / f64::from(1u32 << 30)
                ),
            });
        }
        let generator = ShockGenerator::new(model.cholesky.as_ref(), model.distribution)
            .ok_or_else(|| Error::Model {
                file: model.file.clone(),
                message: "invalid Student-t degrees of freedom".to_owned(),
            })?
            .with_mixing(model.chi_square);
        Ok(Simulator {
            generator,
            builder: PathBuilder::new(model, settings.horizon_days, settings.steps),
            revaluer: Revaluer::on_paths(book, model, settings.horizon_days),
            full: None,
            settings,
            proposal: None,
            file: model.file.clone(),
            pool: settings.threads.pool()?,
        })
    }

    /// Number of blocks the paths are cut into.
    pub fn block_count(&self) -> u64 {
        self.settings.paths.div_ceil(BLOCK_PATHS as u64)
    }

    /// The per-path P&L of the whole run (positive = gain), path i at index i. Runs on the
    /// simulation's worker threads; `progress` is called with the number of paths of each finished
    /// block. Bit-identical for any number of threads.
    pub fn pnl(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<Vec<f64>> {
        self.pnl_of_blocks(0..self.block_count(), progress)
    }

    /// The P&L of the paths of blocks `blocks` only (a shard), in path order.
    pub fn pnl_of_blocks(
        &self,
        blocks: std::ops::Range<u64>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<f64>> {
        Ok(self.pnl_with_tail_stash(blocks, 0, progress)?.0)
    }

    /// [`Simulator::pnl_of_blocks`], and with grid revaluation the moves of each block's
    /// paths most likely to be among the `keep` largest losses (see [`TailStash`]), so that
    /// [`Simulator::exact_tail`] need not generate their blocks again.
    pub fn pnl_with_tail_stash(
        &self,
        blocks: std::ops::Range<u64>,
        keep: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(Vec<f64>, TailStash)> {
        let paths: usize = blocks.clone().map(|b| self.block_len(b)).sum();
        let per_block = match self.full {
            Some(_) if keep > 0 => {
                let row_bytes =
                    8 * (1 + 2 * self.builder.underlyings() + self.builder.surface_width());
                // this slice's paths (a shard's, not the run's): its blocks hold the tail
                stash_rows(keep, paths as u64, row_bytes)
            }
            _ => 0,
        };
        let mut pnl = vec![0.0; paths];
        let stashed = self.install(|| {
            pnl.par_chunks_mut(BLOCK_PATHS)
                .enumerate()
                .map_init(Scratch::default, |scratch, (i, out)| {
                    self.simulate_block(blocks.start + i as u64, scratch, out);
                    progress(out.len() as u64);
                    StashedRows::largest_losses(out, &scratch.moves, per_block)
                })
                .collect()
        });
        check_finite(&pnl, blocks.start * BLOCK_PATHS as u64, &self.file)?;
        let stash = TailStash {
            first_block: blocks.start,
            blocks: stashed,
        };
        Ok((pnl, stash))
    }

    /// Paths in block `block` (every block holds [`BLOCK_PATHS`] but the last).
    pub fn block_len(&self, block: u64) -> usize {
        let start = block * BLOCK_PATHS as u64;
        (self.settings.paths.saturating_sub(start)).min(BLOCK_PATHS as u64) as usize
    }

    /// Reports path P&Ls in `currency`, the book being worth `base_value` USD today. Call it
    /// before [`Simulator::with_revaluation`].
    pub fn in_currency(mut self, currency: &ReportingCurrency, base_value: f64) -> Simulator {
        self.revaluer = self.revaluer.in_currency(currency, base_value);
        self
    }

    /// Chooses how paths are revalued. `Auto` first estimates the run's work in each mode
    /// ([`crate::mc::cost`]) and revalues in full, without tabulating, when the grid would
    /// cost more. Otherwise `Grid` and `Auto` tabulate revaluation surfaces and compare them
    /// with full revaluation on the first [`PILOT_BLOCKS`] blocks. `Auto` keeps the grid only
    /// when the largest absolute P&L difference seen there is below [`GRID_TOLERANCE`] of the
    /// pilot VaR at `reference_confidence`; `Grid` keeps it regardless. That pilot error is a sample, not a bound on every path: a grid run makes
    /// its tail exact afterwards with [`Simulator::exact_tail`] (the check says
    /// `exact_tail: false` until then).
    pub fn with_revaluation(
        mut self,
        model: &FactorModel,
        mode: RevaluationMode,
        reference_confidence: f64,
    ) -> (Simulator, GridCheck) {
        if mode == RevaluationMode::Full {
            return (self, GridCheck::full());
        }
        let full = self.revaluer.clone();
        let half_widths = grid_half_widths(model, &self.settings);
        let grid_work = full.grid_work(&half_widths);
        if grid_work.surface_reads == 0 {
            return (self, GridCheck::full());
        }
        let estimate = CostEstimate::of(
            &self.run_shape(model, reference_confidence),
            &full.full_work(),
            &grid_work,
        );
        if mode == RevaluationMode::Auto && !estimate.grid_is_cheaper() {
            let check = GridCheck {
                estimated_core_seconds: Some(estimate),
                ..GridCheck::full()
            };
            return (self, check);
        }
        let blocks = self.block_count().min(PILOT_BLOCKS);
        let pilot: Vec<(HorizonMoves, Vec<f64>)> = self.install(|| {
            (0..blocks)
                .into_par_iter()
                .map_init(Scratch::default, |scratch, block| {
                    let len = self.block_len(block);
                    self.generate_moves(block, len, scratch);
                    let mut pnl = vec![0.0; len];
                    full.revalue(&scratch.moves, &mut pnl);
                    (scratch.moves.clone(), pnl)
                })
                .collect()
        });
        let exact: Vec<f64> = pilot
            .iter()
            .flat_map(|(_, pnl)| pnl.iter().copied())
            .collect();
        let reference_var = var_es(&exact, &[reference_confidence])[0].var.abs();
        let tolerance = surface_tolerance(
            reference_var * full.usd_per_reported_unit(),
            grid_work.surface_reads,
        );
        let grid = self.install(|| full.clone().with_surfaces(&half_widths, tolerance));
        let approx: Vec<f64> = self.install(|| {
            pilot
                .par_iter()
                .flat_map_iter(|(moves, pnl)| {
                    let mut approx = vec![0.0; pnl.len()];
                    grid.revalue(moves, &mut approx);
                    approx
                })
                .collect()
        });
        let max_abs_error = exact
            .iter()
            .zip(&approx)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let relative_error = max_abs_error / reference_var.max(f64::MIN_POSITIVE);
        let keep = mode == RevaluationMode::Grid || relative_error < GRID_TOLERANCE;
        if keep {
            self.revaluer = grid;
            self.full = Some(FullRevaluation {
                revaluer: full,
                pilot_error: max_abs_error,
            });
        }
        let check = GridCheck {
            mode: if keep {
                UsedRevaluation::Grid
            } else {
                UsedRevaluation::Full
            },
            pilot_paths: exact.len(),
            max_abs_error: Some(max_abs_error),
            reference_var: Some(reference_var),
            relative_error: Some(relative_error),
            exact_tail: !keep,
            exact_tail_paths: None,
            max_tail_error: None,
            estimated_core_seconds: Some(estimate),
        };
        (self, check)
    }

    /// The run's shape as the cost estimate reads it, the estimators reading the tail at
    /// `lowest_confidence`.
    fn run_shape(&self, model: &FactorModel, lowest_confidence: f64) -> RunShape {
        let paths = self.settings.paths;
        RunShape {
            paths,
            steps: self.settings.steps as usize,
            factors: model.factor_count(),
            underlyings: model.underlyings.len(),
            pilot_paths: paths.min(PILOT_BLOCKS * BLOCK_PATHS as u64),
            tail_paths: tail_keep(paths as usize, &[lowest_confidence]) as u64,
        }
    }

    /// After a grid pass over `blocks` (`pnl` their paths' P&L in path order), revalues in
    /// full every path that can rank among the `keep` largest losses and writes its full
    /// P&L into `pnl`; `None` when the run revalues in full anyway.
    ///
    /// The paths whose grid loss is within a margin of the `keep`-th largest are revalued;
    /// the margin is `TAIL_SAFETY` times the largest |grid − full| seen on them and on the
    /// pilot (plus a small floor). The band widens until the `keep`-th largest loss, now a
    /// full-revaluation figure, exceeds every other path's grid loss by that margin. Then
    /// the `keep` largest losses are the full-revaluation run's, to the last bit, unless a
    /// path outside the band is off by more than the margin on the grid.
    pub fn exact_tail(
        &self,
        blocks: Range<u64>,
        pnl: &mut [f64],
        keep: usize,
        stash: &TailStash,
    ) -> Result<Option<ExactTail>> {
        let Some(full) = &self.full else {
            return Ok(None);
        };
        let keep = keep.min(pnl.len());
        let mut errors: HashMap<usize, f64> = HashMap::new();
        if keep > 0 {
            let margin = |error: f64, loss: f64| {
                TAIL_SAFETY * error.max(full.pilot_error) + TAIL_MARGIN_FLOOR * loss.abs()
            };
            let grid_kth = largest_losses(pnl, keep)[keep - 1];
            let mut threshold = grid_kth - margin(0.0, grid_kth);
            let mut largest_error: f64 = 0.0;
            loop {
                // paths not yet revalued at or above the threshold, and the largest grid
                // loss of the others
                let mut candidates = Vec::new();
                let mut others_max = f64::NEG_INFINITY;
                for (i, p) in pnl.iter().enumerate() {
                    let loss = -p;
                    if loss >= threshold {
                        if !errors.contains_key(&i) {
                            candidates.push(i);
                        }
                    } else if loss > others_max && !errors.contains_key(&i) {
                        others_max = loss;
                    }
                }
                let values =
                    self.revalue_in_full(&full.revaluer, blocks.start, &candidates, stash)?;
                for (&i, value) in candidates.iter().zip(values) {
                    let error = (pnl[i] - value).abs();
                    largest_error = largest_error.max(error);
                    errors.insert(i, error);
                    pnl[i] = value;
                }
                let exact: Vec<f64> = errors.keys().map(|&i| -pnl[i]).collect();
                let kth = largest(exact, keep)[keep - 1];
                let margin = margin(largest_error, kth);
                if kth >= others_max + margin {
                    break;
                }
                // others_max > kth − margin: the band now reaches at least that path
                threshold = threshold.min(kth - 2.0 * margin);
            }
        }
        let first_path = blocks.start * BLOCK_PATHS as u64;
        let mut revalued: Vec<TailPath> = errors
            .into_iter()
            .map(|(i, grid_error)| TailPath {
                path: first_path + i as u64,
                loss: -pnl[i],
                grid_error,
            })
            .collect();
        revalued.sort_unstable_by_key(|r| r.path);
        Ok(Some(ExactTail { revalued, keep }))
    }

    /// Full-revaluation P&L of the paths `paths` (indices from the first path of block
    /// `first_block`, ascending), read from `stash` where it holds them, else regenerating
    /// only their blocks, in parallel.
    fn revalue_in_full(
        &self,
        full: &Revaluer,
        first_block: u64,
        paths: &[usize],
        stash: &TailStash,
    ) -> Result<Vec<f64>> {
        let groups: Vec<&[usize]> = paths
            .chunk_by(|a, b| a / BLOCK_PATHS == b / BLOCK_PATHS)
            .collect();
        let values: Vec<Vec<f64>> = self.install(|| {
            groups
                .par_iter()
                .map_init(Scratch::default, |scratch, group| {
                    let block = first_block + (group[0] / BLOCK_PATHS) as u64;
                    let rows: Vec<usize> = group.iter().map(|&i| i % BLOCK_PATHS).collect();
                    let moves = match stash.moves(block, &rows) {
                        Some(moves) => moves,
                        None => {
                            self.generate_moves(block, self.block_len(block), scratch);
                            scratch.moves.subset(&rows)
                        }
                    };
                    let mut values = vec![0.0; rows.len()];
                    full.revalue(&moves, &mut values);
                    values
                })
                .collect()
        });
        let values: Vec<f64> = values.into_iter().flatten().collect();
        let first_path = first_block * BLOCK_PATHS as u64;
        for (&i, value) in paths.iter().zip(&values) {
            check_finite(
                std::slice::from_ref(value),
                first_path + i as u64,
                &self.file,
            )?;
        }
        Ok(values)
    }

    /// Turns on importance sampling: every path is drawn from `proposal` and carries its
    /// likelihood-ratio weight. One-step runs only (the proposal is defined for the
    /// horizon's single draw).
    pub fn with_proposal(mut self, proposal: Proposal) -> Result<Simulator> {
        if self.settings.steps != 1 {
            return Err(Error::Usage {
                message: "importance sampling needs steps = 1".to_owned(),
            });
        }
        self.proposal = Some(proposal);
        Ok(self)
    }

    /// Runs `work` on the simulation's worker threads: for parallel work around a run (e.g.
    /// contributions) that should use the same workers.
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }

    /// The run's settings.
    pub fn settings(&self) -> &SimulationSettings {
        &self.settings
    }

    /// Per-path P&L and likelihood-ratio weights (all 1 without importance sampling):
    /// E[f(L)] = mean of w·f(L) over the paths.
    pub fn weighted_pnl(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let n = self.settings.paths as usize;
        let (mut pnl, mut weights) = (vec![0.0; n], vec![1.0; n]);
        self.install(|| {
            pnl.par_chunks_mut(BLOCK_PATHS)
                .zip(weights.par_chunks_mut(BLOCK_PATHS))
                .enumerate()
                .for_each_init(Scratch::default, |scratch, (block, (out, w))| {
                    self.simulate_block(block as u64, scratch, out);
                    if self.proposal.is_some() {
                        w.iter_mut()
                            .zip(&scratch.draws.log_weights)
                            .for_each(|(w, lw)| *w = lw.exp());
                    }
                })
        });
        check_finite(&pnl, 0, &self.file)?;
        Ok((pnl, weights))
    }

    /// `blocks` blocks of plain one-step paths from streams of their own (never the run's),
    /// with their draws: the pilot from which an importance-sampling proposal is designed.
    pub fn pilot(&self, blocks: u64) -> Result<PilotDraws> {
        let results: Vec<(Vec<f64>, BlockDraws)> = self.install(|| {
            (0..blocks)
                .into_par_iter()
                .map(|b| {
                    let mut scratch = Scratch::default();
                    let mut rng = block_rng(self.settings.seed, PILOT_STREAM + b);
                    self.draw_moves(&mut rng, BLOCK_PATHS, 1, None, &mut scratch, |_, _| {});
                    let mut out = vec![0.0; BLOCK_PATHS];
                    self.revaluer.revalue(&scratch.moves, &mut out);
                    (out, scratch.draws)
                })
                .collect()
        });
        let mut pilot = PilotDraws {
            factors: self.generator.dimension(),
            ..PilotDraws::default()
        };
        for (pnl, draws) in results {
            pilot.pnl.extend(pnl);
            pilot.normals.extend(draws.normals);
            pilot.chi_squares.extend(draws.chi_squares);
        }
        check_finite(&pilot.pnl, 0, &self.file)?;
        Ok(pilot)
    }

    /// The book's revaluation, for per-instrument P&L on regenerated paths.
    pub fn revaluer(&self) -> &Revaluer {
        &self.revaluer
    }

    /// The horizon moves of block `block`, exactly as [`Simulator::pnl`] generates them.
    pub fn block_moves(&self, block: u64) -> HorizonMoves {
        let mut scratch = Scratch::default();
        self.generate_moves(block, self.block_len(block), &mut scratch);
        scratch.moves
    }

    /// Generates every block's horizon moves exactly as [`Simulator::pnl`] does and returns
    /// `f(block, moves)` per block, in block order; in parallel on the simulation's workers.
    pub fn map_blocks<T: Send>(&self, f: impl Fn(u64, &HorizonMoves) -> T + Sync) -> Vec<T> {
        self.install(|| {
            (0..self.block_count())
                .into_par_iter()
                .map_init(Scratch::default, |scratch, block| {
                    self.generate_moves(block, self.block_len(block), scratch);
                    f(block, &scratch.moves)
                })
                .collect()
        })
    }

    /// Re-simulates block `block` exactly as [`Simulator::pnl`] did (same random stream) and
    /// calls `visit(path, moves)` for each of its paths, `path` being the global path index.
    /// This is how tail paths are revisited without storing them.
    pub fn visit_block(&self, block: u64, mut visit: impl FnMut(u64, PathMove)) {
        let mut scratch = Scratch::default();
        self.generate_moves(block, self.block_len(block), &mut scratch);
        let first = block * BLOCK_PATHS as u64;
        for (i, m) in scratch.moves.rows().enumerate() {
            visit(first + i as u64, m);
        }
    }

    /// Re-simulates block `block` exactly as [`Simulator::pnl`] did (same random stream), step
    /// by step, and calls `visit(step, moves)` after each step with every path's moves so far
    /// (`step` from 1 to the number of steps). Margin projection reads the paths this way.
    pub fn visit_block_steps(&self, block: u64, visit: impl FnMut(u32, &HorizonMoves)) {
        let mut scratch = Scratch::default();
        let mut rng = block_rng(self.settings.seed, block);
        let (paths, steps) = (self.block_len(block), self.builder.steps());
        let proposal = self.proposal.as_ref();
        self.draw_moves(&mut rng, paths, steps, proposal, &mut scratch, visit);
    }

    fn simulate_block(&self, block: u64, scratch: &mut Scratch, out: &mut [f64]) {
        self.generate_moves(block, out.len(), scratch);
        self.revaluer.revalue(&scratch.moves, out);
    }

    fn generate_moves(&self, block: u64, paths: usize, scratch: &mut Scratch) {
        let mut rng = block_rng(self.settings.seed, block);
        let steps = self.builder.steps();
        self.draw_moves(
            &mut rng,
            paths,
            steps,
            self.proposal.as_ref(),
            scratch,
            |_, _| {},
        );
    }

    /// Draws `paths` paths of `steps` steps from `rng` into `scratch.moves`, calling
    /// `visit(step, moves)` after each step.
    fn draw_moves(
        &self,
        rng: &mut rand_chacha::ChaCha8Rng,
        paths: usize,
        steps: u32,
        proposal: Option<&Proposal>,
        scratch: &mut Scratch,
        mut visit: impl FnMut(u32, &HorizonMoves),
    ) {
        let factors = self.generator.dimension();
        scratch.shocks.resize(paths * factors, 0.0);
        scratch.moves.reset(
            paths,
            self.builder.underlyings(),
            self.builder.surface_width(),
        );
        for step in 0..steps {
            self.generator
                .fill_step(rng, step, &mut scratch.draws, &mut scratch.shocks, proposal);
            self.builder
                .advance(step, &scratch.shocks, factors, &mut scratch.moves);
            visit(step + 1, &scratch.moves);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three times a block's share of the tail plus 32, at most a block, within the budget.
    #[test]
    fn the_stash_keeps_three_tail_shares_within_its_budget() {
        // 1 % of 100,000 paths: 20.48 per block → 62 + 32
        assert_eq!(stash_rows(1_000, 100_000, 328), 94);
        // a shard of 10,000 paths reading the run's 1,000 largest losses
        assert_eq!(stash_rows(1_000, 10_000, 328), 647);
        assert_eq!(stash_rows(50_000, 100_000, 328), BLOCK_PATHS);
        // 2^30 paths of 1,000-byte rows: 512 MiB over 524,288 blocks is one row each
        assert_eq!(stash_rows(1 << 23, 1 << 30, 1_000), 1);
    }

    #[test]
    fn tail_error_reads_the_largest_losses_with_ties_in_path_order() {
        let row = |path, loss, grid_error| TailPath {
            path,
            loss,
            grid_error,
        };
        let rows = vec![
            row(1, 1.0, 50.0),
            row(2, 7.0, 9.0),
            row(3, 7.0, 4.0),
            row(5, 10.0, 1.0),
        ];
        assert_eq!(largest_tail_error(rows.clone(), 1), 1.0);
        assert_eq!(largest_tail_error(rows.clone(), 2), 9.0, "path 2 before 3");
        assert_eq!(largest_tail_error(rows.clone(), 4), 50.0);
        let exact = ExactTail {
            revalued: rows,
            keep: 2,
        };
        let kept: Vec<u64> = exact.tail().iter().map(|r| r.path).collect();
        assert_eq!(kept, [2, 3, 5], "every loss tied with the 2nd largest");
        assert_eq!(exact.max_error(), 9.0);
    }
}
