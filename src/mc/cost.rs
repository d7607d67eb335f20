//! The estimated work of a run under full and under grid revaluation, for `auto`'s choice.
//!
//! Work is counted from the inputs (paths, steps, factors, underlyings, options by kind,
//! surfaces and their nodes, tail paths) and weighted by nanoseconds per unit measured on
//! the reference machine (2-core AMD EPYC, AVX2; docs/performance.md). The estimate is in
//! core-seconds and never reads a clock: the same inputs give the same choice, and so the
//! same numbers, on any machine, at any load and for any number of threads.
//!
//! Full revaluation costs paths × (generation + options priced per path). The grid costs
//! the tabulation of its surfaces, the pilot that compares it with full revaluation, paths ×
//! (generation + surface reads + options it does not hold), and its exact tail: the tail's
//! paths revalued in full (their moves kept from the grid pass, so no block is generated
//! twice).

use serde::{Deserialize, Serialize};

use crate::pricing::revaluation::RevaluationWork;

/// Nanoseconds per factor per step of a path: one shock drawn, correlated and applied.
const NS_PER_FACTOR_STEP: f64 = 20.0;
/// Nanoseconds per underlying per path: its spot, linear exposure, futures and perpetuals.
const NS_PER_UNDERLYING: f64 = 15.0;
/// Nanoseconds per option per path whose vol is today's times the underlying's ratio.
const NS_PER_PLAIN_OPTION: f64 = 12.0;
/// Nanoseconds per option per path whose vol move needs an exp or a smile lookup.
const NS_PER_MOVING_OPTION: f64 = 40.0;
/// Nanoseconds per option per path expiring inside the horizon (intrinsic value).
const NS_PER_EXPIRING_OPTION: f64 = 4.0;
/// Nanoseconds per surface read per path (bicubic interpolation, eight paths at a time,
/// with its vol coordinate): 33 on the 200-option book, from its grid runs at 10⁵ and 10⁶
/// paths on 2026-11-30 (their difference per path less this model's generation, underlying
/// and tail costs; 49 the same way before the reads went over the block).
const NS_PER_SURFACE_READ: f64 = 33.0;
/// Nanoseconds per option price of a surface's tabulation.
const NS_PER_TABULATED_PRICE: f64 = 25.0;
/// Paths revalued in full by the exact tail per path the estimators read (the band around
/// the tail is wider than the tail).
const TAIL_BAND: f64 = 1.5;

/// The shape of a run, as the estimate reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunShape {
    /// Paths simulated.
    pub paths: u64,
    /// Time steps per path.
    pub steps: usize,
    /// Risk factors drawn per step.
    pub factors: usize,
    /// Underlyings revalued.
    pub underlyings: usize,
    /// Paths of the grid's pilot (revalued both ways).
    pub pilot_paths: u64,
    /// The largest losses the estimators read (the exact tail's size).
    pub tail_paths: u64,
}

/// Estimated core-seconds of a run in each mode (JSON `revaluation.estimated_core_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Full revaluation of every path.
    pub full: f64,
    /// Grid revaluation with its tabulation, pilot and exact tail.
    pub grid: f64,
}

impl CostEstimate {
    /// The estimate for a run of `shape`, its full revaluation doing `full` per path and
    /// its grid `grid` (per path, plus the tabulation).
    pub fn of(shape: &RunShape, full: &RevaluationWork, grid: &RevaluationWork) -> CostEstimate {
        let paths = shape.paths as f64;
        let generation = shape.steps as f64 * shape.factors as f64 * NS_PER_FACTOR_STEP
            + shape.underlyings as f64 * NS_PER_UNDERLYING;
        let full_path = per_path(full);
        let grid_path = per_path(grid);
        let full_ns = paths * (generation + full_path);
        let tabulation = grid.tabulated_prices as f64 * NS_PER_TABULATED_PRICE;
        let pilot = shape.pilot_paths as f64 * (generation + full_path + grid_path);
        let tail = TAIL_BAND * shape.tail_paths as f64 * full_path;
        let grid_ns = tabulation + pilot + paths * (generation + grid_path) + tail;
        CostEstimate {
            full: full_ns * 1e-9,
            grid: grid_ns * 1e-9,
        }
    }

    /// Whether the grid is estimated to cost less than full revaluation.
    pub fn grid_is_cheaper(&self) -> bool {
        self.grid < self.full
    }
}

/// Nanoseconds of revaluation per path.
fn per_path(work: &RevaluationWork) -> f64 {
    work.plain_options as f64 * NS_PER_PLAIN_OPTION
        + work.moving_options as f64 * NS_PER_MOVING_OPTION
        + work.expiring_options as f64 * NS_PER_EXPIRING_OPTION
        + work.surface_reads as f64 * NS_PER_SURFACE_READ
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(paths: u64) -> RunShape {
        RunShape {
            paths,
            steps: 1,
            factors: 40,
            underlyings: 20,
            pilot_paths: 4096,
            tail_paths: paths / 100,
        }
    }

    /// 20 underlyings, `options` plain options spread over them: full prices every option,
    /// the grid reads 20 surfaces of 241 × 41 nodes.
    fn works(options: usize) -> (RevaluationWork, RevaluationWork) {
        let full = RevaluationWork {
            plain_options: options,
            ..RevaluationWork::default()
        };
        let grid = RevaluationWork {
            surface_reads: 20,
            tabulated_prices: 241 * 41 * options,
            ..RevaluationWork::default()
        };
        (full, grid)
    }

    /// The crossings measured on the reference machine (`tailrisk run --revaluation full`
    /// and `grid` in `benches/numpy_compare.sh`, wall seconds on 2 cores, 2026-11-30 after
    /// the adaptive tabulation (whose estimate still charges the finest grid);
    /// docs/performance.md): full wins on 20 options at any path count, the grid on 200
    /// options and more from 100,000 paths; the estimates are within a factor 2 of the
    /// measured wall seconds × 2 cores.
    #[test]
    fn the_estimate_picks_what_was_measured_faster() {
        let cases = [
            // options, paths, measured full and grid wall seconds on 2 cores
            (20, 100_000, 0.12, 0.13),
            (20, 1_000_000, 0.52, 0.97),
            (200, 100_000, 0.21, 0.12),
            (200, 1_000_000, 1.94, 1.05),
            (2_000, 100_000, 1.38, 0.34),
            (2_000, 1_000_000, 13.83, 2.00),
            (10_000, 100_000, 6.35, 1.25),
            (10_000, 1_000_000, 63.15, 4.96),
        ];
        for (options, paths, full_wall, grid_wall) in cases {
            let (full, grid) = works(options);
            let estimate = CostEstimate::of(&shape(paths), &full, &grid);
            assert_eq!(
                estimate.grid_is_cheaper(),
                grid_wall < full_wall,
                "{options} options, {paths} paths: {estimate:?}"
            );
            for (estimated, wall) in [(estimate.full, full_wall), (estimate.grid, grid_wall)] {
                let ratio = estimated / (2.0 * wall);
                assert!(
                    (0.5..2.0).contains(&ratio),
                    "{options} options, {paths} paths: estimated {estimated} core-s against \
                     {wall} s on 2 cores"
                );
            }
        }
    }
}
