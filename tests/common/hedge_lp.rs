//! The hedge's Rockafellar–Uryasev linear program stated independently of
//! `tailrisk::hedge::solver` and solved by Clarabel (a general sparse interior point), and
//! the factor-driven synthetic program of the timing probes. Shared by
//! `tests/hedge_clarabel.rs` and `benches/hedge.rs`.
#![allow(dead_code)] // each crate uses a different subset

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tailrisk::hedge::solver::{CandidateTerms, EsProgram, Goal};

/// A hedge program that owns its scenarios.
#[derive(Debug, Clone)]
pub struct OwnedProgram {
    pub confidence: f64,
    pub book: Vec<f64>,
    /// Column-major paths × candidates.
    pub x: Vec<f64>,
    pub terms: Vec<CandidateTerms>,
    pub budget: Option<f64>,
}

impl OwnedProgram {
    pub fn program(&self) -> EsProgram<'_> {
        EsProgram {
            confidence: self.confidence,
            book_pnl: &self.book,
            candidate_pnl: &self.x,
            terms: &self.terms,
            budget: self.budget,
        }
    }

    pub fn paths(&self) -> usize {
        self.book.len()
    }

    pub fn candidates(&self) -> usize {
        self.terms.len()
    }

    /// P&L of the book plus trades `q` on every path.
    pub fn pnl(&self, q: &[f64]) -> Vec<f64> {
        let n = self.paths();
        let mut pnl = self.book.clone();
        for (j, qj) in q.iter().enumerate() {
            for (p, x) in pnl.iter_mut().zip(&self.x[j * n..(j + 1) * n]) {
                *p += qj * x;
            }
        }
        pnl
    }

    /// Costs of trades `q`.
    pub fn cost(&self, q: &[f64]) -> f64 {
        self.terms
            .iter()
            .zip(q)
            .map(|(t, &v)| t.buy_cost * v.max(0.0) + t.sell_cost * (-v).max(0.0))
            .sum()
    }

    /// Premium plus costs of trades `q` (what the budget bounds).
    pub fn spend(&self, q: &[f64]) -> f64 {
        self.cost(q)
            + self
                .terms
                .iter()
                .zip(q)
                .map(|(t, v)| t.premium * v)
                .sum::<f64>()
    }

    /// Tail mass n(1 − a) in paths, computed directly in floating point.
    pub fn tail_mass(&self) -> f64 {
        self.paths() as f64 * (1.0 - self.confidence)
    }

    /// ES of book plus trades `q`, costs included: the mean of the largest losses with tail
    /// mass M = n(1 − a), the boundary loss weighted by M − ⌊M⌋ (sorting, not the LP).
    pub fn es(&self, q: &[f64]) -> f64 {
        let mut losses: Vec<f64> = self.pnl(q).iter().map(|p| -p).collect();
        losses.sort_unstable_by(|a, b| b.total_cmp(a));
        let mass = self.tail_mass();
        let whole = mass.floor() as usize;
        let head: f64 = losses[..whole].iter().sum();
        let boundary = losses.get(whole).copied().unwrap_or(0.0) * (mass - whole as f64);
        (head + boundary) / mass + self.cost(q)
    }
}

/// Clarabel's answer to the hedge program.
#[derive(Debug, Clone)]
pub struct ClarabelSolution {
    pub status: SolverStatus,
    /// The LP's objective: ES with costs (MinimizeEs) or costs (ReachEs).
    pub objective: f64,
    /// Signed quantities p − r.
    pub quantities: Vec<f64>,
    /// t + (1/M)·Σu + costs at the solution.
    pub es: f64,
    pub cost: f64,
    pub iterations: u32,
    /// Clarabel's own solve time (excludes setup).
    pub solve_seconds: f64,
}

/// Index layout of the LP's variables x = (p, r, t, u) and rows.
struct Layout {
    n: usize,
    m: usize,
}

impl Layout {
    fn p(&self, j: usize) -> usize {
        j
    }
    fn r(&self, j: usize) -> usize {
        self.m + j
    }
    fn t(&self) -> usize {
        2 * self.m
    }
    fn u(&self, i: usize) -> usize {
        2 * self.m + 1 + i
    }
    fn variables(&self) -> usize {
        2 * self.m + 1 + self.n
    }
}

/// Builds the hedge LP for Clarabel (all rows as A·x ≤ b, nonnegative slacks):
///
///   variables p ≥ 0 (units bought), r ≥ 0 (units sold), t free, u ≥ 0 (paths),
///   path rows     −uᵢ − Xᵢ·(p − r) − t ≤ bᵢ             (uᵢ ≥ −bᵢ − Xᵢ·q − t),
///   bounds        p − r ≤ upper,  r − p ≤ −lower         (finite ones only),
///   budget        Σⱼ (premiumⱼ + buyⱼ)·pⱼ + (sellⱼ − premiumⱼ)·rⱼ ≤ B,
///   target        t + (1/M)·Σ uᵢ + buy·p + sell·r ≤ ES*   (ReachEs only),
///
/// minimising buy·p + sell·r + t + (1/M)·Σ uᵢ (MinimizeEs) or buy·p + sell·r (ReachEs),
/// with M = n(1 − a). Returns the solver, set up, and the layout.
fn build(program: &OwnedProgram, goal: Goal) -> (DefaultSolver<f64>, Layout) {
    let (n, m) = (program.paths(), program.candidates());
    let layout = Layout { n, m };
    let weight = 1.0 / program.tail_mass();
    let terms = &program.terms;

    // Row numbering: paths, u ≥ 0, p ≥ 0, r ≥ 0, then per candidate its finite upper and
    // lower rows, the budget row, the target row (increasing, so each column is sorted).
    let mut rows = 2 * n + 2 * m;
    let mut upper_row = vec![None; m];
    let mut lower_row = vec![None; m];
    let mut b: Vec<f64> = program.book.clone();
    b.extend(std::iter::repeat_n(0.0, n + 2 * m));
    for (j, t) in terms.iter().enumerate() {
        if t.upper.is_finite() {
            upper_row[j] = Some(rows);
            b.push(t.upper);
            rows += 1;
        }
        if t.lower.is_finite() {
            lower_row[j] = Some(rows);
            b.push(-t.lower);
            rows += 1;
        }
    }
    let budget_row = program.budget.map(|budget| {
        b.push(budget);
        rows += 1;
        rows - 1
    });
    let target_row = match goal {
        Goal::ReachEs(target) => {
            b.push(target);
            rows += 1;
            Some(rows - 1)
        }
        Goal::MinimizeEs => None,
    };

    let mut a = Columns::default();
    // p columns, then r columns.
    for (sign, leg) in [(1.0, 0usize), (-1.0, 1usize)] {
        for (j, t) in terms.iter().enumerate() {
            for (i, x) in program.x[j * n..(j + 1) * n].iter().enumerate() {
                a.push(i, -sign * x);
            }
            a.push(2 * n + leg * m + j, -1.0);
            if let Some(row) = upper_row[j] {
                a.push(row, sign);
            }
            if let Some(row) = lower_row[j] {
                a.push(row, -sign);
            }
            let cost = if leg == 0 { t.buy_cost } else { t.sell_cost };
            if let Some(row) = budget_row {
                a.push(row, cost + sign * t.premium);
            }
            if let Some(row) = target_row {
                a.push(row, cost);
            }
            a.close();
        }
    }
    // t column.
    for i in 0..n {
        a.push(i, -1.0);
    }
    if let Some(row) = target_row {
        a.push(row, 1.0);
    }
    a.close();
    // u columns.
    for i in 0..n {
        a.push(i, -1.0);
        a.push(n + i, -1.0);
        if let Some(row) = target_row {
            a.push(row, weight);
        }
        a.close();
    }
    let a = CscMatrix::new(rows, layout.variables(), a.colptr, a.rowval, a.nzval);

    let mut q = vec![0.0; layout.variables()];
    for (j, t) in terms.iter().enumerate() {
        q[layout.p(j)] = t.buy_cost;
        q[layout.r(j)] = t.sell_cost;
    }
    if matches!(goal, Goal::MinimizeEs) {
        q[layout.t()] = 1.0;
        for i in 0..n {
            q[layout.u(i)] = weight;
        }
    }
    let p = CscMatrix::zeros((layout.variables(), layout.variables()));
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .time_limit(120.0)
        .build()
        .expect("settings");
    let cones = [NonnegativeConeT(rows)];
    let solver = DefaultSolver::new(&p, &q, &a, &b, &cones, settings).expect("clarabel setup");
    (solver, layout)
}

/// A sparse matrix assembled column by column (rows increasing within a column).
struct Columns {
    colptr: Vec<usize>,
    rowval: Vec<usize>,
    nzval: Vec<f64>,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns {
            colptr: vec![0],
            rowval: Vec::new(),
            nzval: Vec::new(),
        }
    }
}

impl Columns {
    fn push(&mut self, row: usize, value: f64) {
        self.rowval.push(row);
        self.nzval.push(value);
    }

    fn close(&mut self) {
        self.colptr.push(self.rowval.len());
    }
}

/// Solves the hedge program for `goal` with Clarabel (default settings, quiet, 120 s limit).
pub fn clarabel_solve(program: &OwnedProgram, goal: Goal) -> ClarabelSolution {
    let (mut solver, layout) = build(program, goal);
    solver.solve();
    let x = &solver.solution.x;
    let quantities: Vec<f64> = (0..layout.m)
        .map(|j| x[layout.p(j)] - x[layout.r(j)])
        .collect();
    let cost: f64 = program
        .terms
        .iter()
        .enumerate()
        .map(|(j, t)| t.buy_cost * x[layout.p(j)] + t.sell_cost * x[layout.r(j)])
        .sum();
    let tail: f64 = (0..layout.n).map(|i| x[layout.u(i)]).sum::<f64>() / program.tail_mass();
    ClarabelSolution {
        status: solver.solution.status,
        objective: solver.solution.obj_val,
        es: x[layout.t()] + tail + cost,
        quantities,
        cost,
        iterations: solver.solution.iterations,
        solve_seconds: solver.solution.solve_time,
    }
}

/// The factor-driven program of the timing probes (`probe_large` in tests/hedge_solver.rs):
/// n paths of 8 heavy-tailed factors, m candidates (every third convex), bounds ±10⁴ on half
/// and [−10⁴, ∞) on the rest, cost 0.05 per unit, budget 10³, level 0.975.
pub fn factor_program(n: usize, m: usize, seed: u64) -> OwnedProgram {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let factors = 8;
    let loadings: Vec<f64> = (0..m * factors)
        .map(|_| rng.random::<f64>() - 0.3)
        .collect();
    let mut x = vec![0.0; n * m];
    let mut book = vec![0.0; n];
    for i in 0..n {
        let z: Vec<f64> = (0..factors)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let w = 1.0 / (rng.random::<f64>() * 0.5 + 0.5);
        for j in 0..m {
            let e: f64 = StandardNormal.sample(&mut rng);
            let lin: f64 = (0..factors)
                .map(|f| loadings[j * factors + f] * z[f])
                .sum::<f64>()
                * w;
            x[j * n + i] = if j % 3 == 0 {
                (lin * 0.1).exp() * 10.0 - 10.0
            } else {
                lin + 0.3 * e
            };
        }
        book[i] = 100.0 * (z[0] + 0.5 * z[1]) * w - 30.0 * (z[2] * w).abs();
    }
    let terms = (0..m)
        .map(|j| CandidateTerms {
            buy_cost: 0.05,
            sell_cost: 0.05,
            premium: 0.0,
            lower: -1e4,
            upper: if j % 2 == 0 { 1e4 } else { f64::INFINITY },
        })
        .collect();
    OwnedProgram {
        confidence: 0.975,
        book,
        x,
        terms,
        budget: Some(1e3),
    }
}
