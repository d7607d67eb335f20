//! The Monte Carlo loop: blocks of paths in parallel, each block drawing its own random stream,
//! generating shocks step by step, building horizon moves and revaluing the netted book.
//!
//! Memory is O(paths): one P&L number per path, plus per-thread scratch of one block. No
//! paths × positions matrix is ever formed.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::aggregate::AggregatedBook;
use crate::error::{Error, Result};
use crate::measures::var_es;
use crate::model::FactorModel;
use crate::paths::{HorizonMoves, PathBuilder};
use crate::proposal::Proposal;
use crate::revaluation::Revaluer;
use crate::shocks::{block_rng, BlockDraws, ShockGenerator, BLOCK_PATHS};
use crate::time::DAYS_PER_YEAR;

/// How paths are revalued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevaluationMode {
    /// Every option priced on every path (the reference).
    Full,
    /// Options read off per-underlying surfaces.
    Grid,
    /// The grid where its measured error is below [`GRID_TOLERANCE`] of VaR, else full.
    Auto,
}

/// Blocks of paths on which the grid is compared with full revaluation.
pub const PILOT_BLOCKS: u64 = 2;
/// Largest grid error accepted by `Auto`, as a fraction of VaR.
pub const GRID_TOLERANCE: f64 = 1e-3;

/// The revaluation a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsedRevaluation {
    Full,
    Grid,
}

/// What the revaluation check found (JSON `revaluation`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridCheck {
    /// `grid` or `full`: what the run used.
    pub mode: UsedRevaluation,
    /// Paths compared (0 when no grid was tried).
    pub pilot_paths: usize,
    /// Largest |grid − full| P&L over the pilot paths: a bound on the error of VaR and ES.
    pub max_abs_error: Option<f64>,
    /// The pilot's full-revaluation VaR at the reference level.
    pub reference_var: Option<f64>,
    /// max_abs_error / reference_var.
    pub relative_error: Option<f64>,
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
        }
    }
}

/// An error naming the first path (numbered from `first_path`) whose P&L is not finite: the
/// model and book of `file` move prices or values beyond floating point (huge vols,
/// horizon, prices or sizes), so the model is unusable as given.
fn check_finite(pnl: &[f64], first_path: u64, file: &Path) -> Result<()> {
    match pnl.iter().position(|p| !p.is_finite()) {
        Some(i) => Err(Error::Model {
            file: file.to_path_buf(),
            message: format!(
                "path {} has a non-finite P&L ({}): the vols, horizon, prices or position \
                 sizes move values beyond floating point",
                first_path + i as u64,
                pnl[i]
            ),
        }),
        None => Ok(()),
    }
}

/// Half-widths of the surfaces per model underlying: ±14 horizon standard deviations of
/// ln S (widened for vol moves over several steps, plus the drift) and ±12 of ln iv; the
/// rare path beyond them is revalued in full.
fn grid_half_widths(model: &FactorModel, settings: &SimulationSettings) -> Vec<(f64, f64)> {
    let years = settings.horizon_days / DAYS_PER_YEAR;
    model
        .underlyings
        .iter()
        .map(|u| {
            let vol_sd = u.vol_of_vol * years.sqrt();
            let spot =
                14.0 * u.spot_vol * years.sqrt() * (3.0 * vol_sd).exp() + u.drift.abs() * years;
            (spot, 12.0 * vol_sd)
        })
        .collect()
}

/// Most paths one run keeps in memory: 2^30 P&L numbers are 8 GiB.
pub const MAX_PATHS: u64 = 1 << 30;

/// How many paths to simulate and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationSettings {
    pub paths: u64,
    pub seed: u64,
    /// Horizon in calendar days.
    pub horizon_days: f64,
    /// Sub-steps of the horizon.
    pub steps: u32,
}

/// Per-thread buffers for one block.
#[derive(Default)]
struct Scratch {
    draws: BlockDraws,
    shocks: Vec<f64>,
    moves: HorizonMoves,
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

/// Everything fixed for a run: generator, path builder and revaluer.
pub struct Simulator {
    generator: ShockGenerator,
    builder: PathBuilder,
    revaluer: Revaluer,
    settings: SimulationSettings,
    /// Importance-sampling proposal, if on.
    proposal: Option<Proposal>,
    /// The scenario file, named when a P&L is not finite.
    file: PathBuf,
}

impl Simulator {
    /// Prepares a simulation of `book` under `model`.
    pub fn new(
        model: &FactorModel,
        book: &AggregatedBook,
        settings: SimulationSettings,
    ) -> Result<Simulator> {
        if settings.paths > MAX_PATHS {
            return Err(Error::Numerical {
                message: format!(
                    "{} paths would need {:.1} GiB for the per-path P&L; at most {MAX_PATHS} \
                     paths fit one run",
                    settings.paths,
                    settings.paths as f64 * 8.0 / f64::from(1u32 << 30)
                ),
            });
        }
        let generator = ShockGenerator::new(model.cholesky.as_ref(), model.distribution)
            .ok_or_else(|| Error::Numerical {
                message: "invalid Student-t degrees of freedom".to_owned(),
            })?
            .with_mixing(model.chi_square);
        Ok(Simulator {
            generator,
            builder: PathBuilder::new(model, settings.horizon_days, settings.steps),
            revaluer: Revaluer::new(book, settings.horizon_days),
            settings,
            proposal: None,
            file: model.file.clone(),
        })
    }

    /// Number of blocks the paths are cut into.
    pub fn block_count(&self) -> u64 {
        self.settings.paths.div_ceil(BLOCK_PATHS as u64)
    }

    /// The per-path P&L of the whole run (positive = gain), path i at index i. Runs on the
    /// current rayon pool; `progress` is called with the number of paths of each finished
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
        let paths: usize = blocks.clone().map(|b| self.block_len(b)).sum();
        let mut pnl = vec![0.0; paths];
        pnl.par_chunks_mut(BLOCK_PATHS).enumerate().for_each_init(
            Scratch::default,
            |scratch, (i, out)| {
                self.simulate_block(blocks.start + i as u64, scratch, out);
                progress(out.len() as u64);
            },
        );
        check_finite(&pnl, blocks.start * BLOCK_PATHS as u64, &self.file)?;
        Ok(pnl)
    }

    /// Paths in block `block` (every block holds [`BLOCK_PATHS`] but the last).
    pub fn block_len(&self, block: u64) -> usize {
        let start = block * BLOCK_PATHS as u64;
        (self.settings.paths.saturating_sub(start)).min(BLOCK_PATHS as u64) as usize
    }

    /// Chooses how paths are revalued. `Grid` and `Auto` tabulate revaluation surfaces and
    /// compare them with full revaluation on the first [`PILOT_BLOCKS`] blocks: the largest
    /// absolute P&L difference bounds the error of every VaR and ES. `Auto` keeps the grid
    /// only when that bound is below [`GRID_TOLERANCE`] of the pilot VaR at
    /// `reference_confidence`; `Grid` keeps it regardless (and reports the error).
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
        let grid = full
            .clone()
            .with_surfaces(&grid_half_widths(model, &self.settings));
        if !grid.uses_surfaces() {
            return (self, GridCheck::full());
        }
        let blocks = self.block_count().min(PILOT_BLOCKS);
        let (mut exact, mut approx) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        for block in 0..blocks {
            let len = self.block_len(block);
            self.generate_moves(block, len, &mut scratch);
            let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
            full.revalue(&scratch.moves, &mut a);
            grid.revalue(&scratch.moves, &mut b);
            exact.extend(a);
            approx.extend(b);
        }
        let max_abs_error = exact
            .iter()
            .zip(&approx)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let reference_var = var_es(&exact, &[reference_confidence])[0].var.abs();
        let relative_error = max_abs_error / reference_var.max(f64::MIN_POSITIVE);
        let keep = mode == RevaluationMode::Grid || relative_error < GRID_TOLERANCE;
        if keep {
            self.revaluer = grid;
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
        };
        (self, check)
    }

    /// Turns on importance sampling: every path is drawn from `proposal` and carries its
    /// likelihood-ratio weight. One-step runs only (the proposal is defined for the
    /// horizon's single draw).
    pub fn with_proposal(mut self, proposal: Proposal) -> Result<Simulator> {
        if self.settings.steps != 1 {
            return Err(Error::Numerical {
                message: "importance sampling needs steps = 1".to_owned(),
            });
        }
        self.proposal = Some(proposal);
        Ok(self)
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
            });
        check_finite(&pnl, 0, &self.file)?;
        Ok((pnl, weights))
    }

    /// `blocks` blocks of plain one-step paths from streams of their own (never the run's),
    /// with their draws: the pilot from which an importance-sampling proposal is designed.
    pub fn pilot(&self, blocks: u64) -> Result<PilotDraws> {
        let results: Vec<(Vec<f64>, BlockDraws)> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let mut scratch = Scratch::default();
                let mut rng = block_rng(self.settings.seed, PILOT_STREAM + b);
                self.draw_moves(&mut rng, BLOCK_PATHS, 1, None, &mut scratch);
                let mut out = vec![0.0; BLOCK_PATHS];
                self.revaluer.revalue(&scratch.moves, &mut out);
                (out, scratch.draws)
            })
            .collect();
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

    /// Re-simulates block `block` exactly as [`Simulator::pnl`] did (same random stream) and
    /// calls `visit(path, log_spot, vol_ratio)` for each of its paths, `path` being the
    /// global path index. This is how tail paths are revisited without storing them.
    pub fn visit_block(&self, block: u64, mut visit: impl FnMut(u64, &[f64], &[f64])) {
        let mut scratch = Scratch::default();
        self.generate_moves(block, self.block_len(block), &mut scratch);
        let u = scratch.moves.underlyings.max(1);
        let rows = scratch
            .moves
            .log_spot
            .chunks_exact(u)
            .zip(scratch.moves.vol_ratio.chunks_exact(u));
        let first = block * BLOCK_PATHS as u64;
        for (i, (log_spot, vol_ratio)) in rows.enumerate() {
            visit(first + i as u64, log_spot, vol_ratio);
        }
    }

    fn simulate_block(&self, block: u64, scratch: &mut Scratch, out: &mut [f64]) {
        self.generate_moves(block, out.len(), scratch);
        self.revaluer.revalue(&scratch.moves, out);
    }

    fn generate_moves(&self, block: u64, paths: usize, scratch: &mut Scratch) {
        let mut rng = block_rng(self.settings.seed, block);
        let steps = self.builder.steps();
        self.draw_moves(&mut rng, paths, steps, self.proposal.as_ref(), scratch);
    }

    /// Draws `paths` paths of `steps` steps from `rng` into `scratch.moves`.
    fn draw_moves(
        &self,
        rng: &mut rand_chacha::ChaCha8Rng,
        paths: usize,
        steps: u32,
        proposal: Option<&Proposal>,
        scratch: &mut Scratch,
    ) {
        let factors = self.generator.dimension();
        scratch.shocks.resize(paths * factors, 0.0);
        scratch.moves.reset(paths, self.builder.underlyings());
        for step in 0..steps {
            self.generator
                .fill_step(rng, step, &mut scratch.draws, &mut scratch.shocks, proposal);
            self.builder
                .advance(&scratch.shocks, factors, &mut scratch.moves);
        }
    }
}
