//! The hedge's restricted linear program solved by Clarabel, for the rare program on which
//! the structure-exploiting interior point of [`crate::hedge::solver`] stalls.
//!
//! Clarabel (a pure-Rust conic interior point on the homogeneous self-dual embedding, with
//! equilibration and regularised sparse LDLᵀ) is far slower on this program's dense columns
//! (docs/model.md, "Hedging": about 100× at 10,000 paths), but it does not depend on a good
//! starting point, so a stall of the fast method costs time rather than an answer. It only
//! ever sees a cutting-plane round's working set, a few times the tail's paths.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus,
};

use crate::hedge::solver::SolveFailure;

/// One leg of a candidate, as the restricted program sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FallbackLeg {
    /// Column of the candidate's P&L in `x`.
    pub candidate: usize,
    /// +1 for bought units, −1 for sold.
    pub sign: f64,
    /// Cost per unit (objective coefficient).
    pub cost: f64,
    /// Least units (finite).
    pub lower: f64,
    /// Most units (+∞ for none).
    pub upper: f64,
}

/// The restricted program: min Σₗ costₗ·vₗ + t + w·Σᵢ uᵢ subject to
/// uᵢ + Σₗ signₗ·Xᵢ,candidate(ₗ)·vₗ + t ≥ lossᵢ, uᵢ ≥ 0, lowerₗ ≤ vₗ ≤ upperₗ and the leg rows
/// Σₗ rowₗ·vₗ ≤ bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RestrictedProgram<'a> {
    /// Paths of the working set.
    pub paths: usize,
    /// Candidate P&L, column-major paths × candidates.
    pub x: &'a [f64],
    /// Loss per path.
    pub loss: &'a [f64],
    /// Weight w of each uᵢ (1/M for tail mass M).
    pub tail_weight: f64,
    /// The legs.
    pub legs: &'a [FallbackLeg],
    /// Rows on the legs only: (coefficients per leg, bound).
    pub leg_rows: &'a [(&'a [f64], f64)],
}

/// The optimal legs and t, with each leg row's dual price.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RestrictedSolution {
    /// Leg values.
    pub legs: Vec<f64>,
    /// The VaR variable t.
    pub var: f64,
    /// Dual price of each leg row (≥ 0).
    pub row_prices: Vec<f64>,
    /// Clarabel's iterations.
    pub iterations: usize,
}

/// Solves `program` by Clarabel: infeasible when Clarabel certifies it, not converged
/// unless Clarabel reports it solved (to its default or reduced accuracy).
pub(crate) fn solve_restricted(
    program: &RestrictedProgram,
) -> Result<RestrictedSolution, SolveFailure> {
    let (a, b, rows) = constraints(program);
    let k = program.legs.len();
    let n = program.paths;
    let mut q: Vec<f64> = program.legs.iter().map(|l| l.cost).collect();
    q.push(1.0);
    q.extend(std::iter::repeat_n(program.tail_weight, n));
    let p = CscMatrix::zeros((k + 1 + n, k + 1 + n));
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .build()
        .map_err(|_| SolveFailure::NotConverged)?;
    let cones = [NonnegativeConeT(rows.total)];
    let mut solver = DefaultSolver::new(&p, &q, &a, &b, &cones, settings)
        .map_err(|_| SolveFailure::NotConverged)?;
    solver.solve();
    let solution = &solver.solution;
    match solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
            return Err(SolveFailure::Infeasible)
        }
        _ => return Err(SolveFailure::NotConverged),
    }
    Ok(RestrictedSolution {
        legs: solution.x[..k].to_vec(),
        var: solution.x[k],
        row_prices: solution.z[rows.leg_rows..].to_vec(),
        iterations: solution.iterations as usize,
    })
}

/// Where each block of rows starts, and how many rows there are.
struct RowLayout {
    leg_rows: usize,
    total: usize,
}

/// A·x + s = b with s ≥ 0, columns (v legs, t, u paths), rows: the paths, uᵢ ≥ 0, the legs'
/// lower bounds, their finite upper bounds, the leg rows.
fn constraints(program: &RestrictedProgram) -> (CscMatrix<f64>, Vec<f64>, RowLayout) {
    let n = program.paths;
    let k = program.legs.len();
    let upper_row: Vec<Option<usize>> = {
        let mut next = 2 * n + k;
        program
            .legs
            .iter()
            .map(|l| {
                l.upper.is_finite().then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    let capped = upper_row.iter().flatten().count();
    let leg_rows = 2 * n + k + capped;
    let total = leg_rows + program.leg_rows.len();
    let mut b: Vec<f64> = program.loss.iter().map(|l| -l).collect();
    b.extend(std::iter::repeat_n(0.0, n));
    b.extend(program.legs.iter().map(|l| -l.lower));
    b.extend(
        program
            .legs
            .iter()
            .filter(|l| l.upper.is_finite())
            .map(|l| l.upper),
    );
    b.extend(program.leg_rows.iter().map(|(_, bound)| *bound));

    let mut entries = Triplets::default();
    for (l, leg) in program.legs.iter().enumerate() {
        let column = &program.x[leg.candidate * n..(leg.candidate + 1) * n];
        for (i, x) in column.iter().enumerate() {
            entries.push(i, l, -leg.sign * x);
        }
        entries.push(2 * n + l, l, -1.0);
        if let Some(row) = upper_row[l] {
            entries.push(row, l, 1.0);
        }
        for (r, (coefficients, _)) in program.leg_rows.iter().enumerate() {
            if coefficients[l] != 0.0 {
                entries.push(leg_rows + r, l, coefficients[l]);
            }
        }
    }
    for i in 0..n {
        entries.push(i, k, -1.0);
        entries.push(i, k + 1 + i, -1.0);
        entries.push(n + i, k + 1 + i, -1.0);
    }
    let a = CscMatrix::new_from_triplets(
        total,
        k + 1 + n,
        entries.rows,
        entries.columns,
        entries.values,
    );
    (a, b, RowLayout { leg_rows, total })
}

/// Nonzero entries of a sparse matrix, in any order.
#[derive(Default)]
struct Triplets {
    rows: Vec<usize>,
    columns: Vec<usize>,
    values: Vec<f64>,
}

impl Triplets {
    fn push(&mut self, row: usize, column: usize, value: f64) {
        self.rows.push(row);
        self.columns.push(column);
        self.values.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Losses and one hedge column on a deterministic grid of paths: loss = 3z + z², the hedge
    /// pays z (so a long hedge of 3 leaves the convex loss z²).
    fn paths(n: usize) -> (Vec<f64>, Vec<f64>) {
        let z: Vec<f64> = (0..n)
            .map(|i| -3.0 + 6.0 * (i as f64 + 0.5) / n as f64)
            .collect();
        (z.iter().map(|z| 3.0 * z + z * z).collect(), z)
    }

    /// t + w·Σ(loss − v·x − t)⁺ + cost·v minimised over t exactly (t at a path's loss).
    fn objective(loss: &[f64], x: &[f64], v: f64, cost: f64, weight: f64) -> f64 {
        let hedged: Vec<f64> = loss.iter().zip(x).map(|(l, x)| l - v * x).collect();
        hedged
            .iter()
            .map(|&t| t + weight * hedged.iter().map(|h| (h - t).max(0.0)).sum::<f64>())
            .fold(f64::INFINITY, f64::min)
            + cost * v
    }

    fn program<'a>(
        loss: &'a [f64],
        x: &'a [f64],
        legs: &'a [FallbackLeg],
        rows: &'a [(&'a [f64], f64)],
    ) -> RestrictedProgram<'a> {
        RestrictedProgram {
            paths: loss.len(),
            x,
            loss,
            tail_weight: 1.0 / 20.0,
            legs,
            leg_rows: rows,
        }
    }

    #[test]
    fn solves_the_restricted_program_to_a_grid_search() {
        let (loss, x) = paths(400);
        let legs = [FallbackLeg {
            candidate: 0,
            sign: 1.0,
            cost: 0.01,
            lower: 0.0,
            upper: f64::INFINITY,
        }];
        let solution = solve_restricted(&program(&loss, &x, &legs, &[])).expect("solved");
        let best = (0..=6000)
            .map(|k| objective(&loss, &x, k as f64 * 0.001, 0.01, 1.0 / 20.0))
            .fold(f64::INFINITY, f64::min);
        let found = objective(&loss, &x, solution.legs[0], 0.01, 1.0 / 20.0);
        assert!(found <= best + 1e-6, "clarabel {found} vs grid {best}");
        assert!((solution.legs[0] - 3.0).abs() < 0.2, "{:?}", solution.legs);
    }

    #[test]
    fn a_row_the_bounds_cannot_meet_is_infeasible() {
        let (loss, x) = paths(100);
        let legs = [FallbackLeg {
            candidate: 0,
            sign: 1.0,
            cost: 0.0,
            lower: 1.0,
            upper: 2.0,
        }];
        let row = [1.0];
        let rows = [(&row[..], 0.5)];
        assert_eq!(
            solve_restricted(&program(&loss, &x, &legs, &rows)),
            Err(SolveFailure::Infeasible)
        );
    }
}
