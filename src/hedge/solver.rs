//! The Rockafellar–Uryasev linear program of a hedge, solved by a primal–dual interior-point
//! method shaped for it.
//!
//! With n equally likely paths, book P&L bᵢ, candidate j's P&L per unit Xᵢⱼ and tail mass
//! m = n(1 − a), the ES at level a of the book plus trades q, net of their costs, is
//!
//!   ES(q) = min over t of  t + (1/m)·Σᵢ (Lᵢ(q) − t)⁺ + cost(q),   Lᵢ(q) = −bᵢ − Σⱼ Xᵢⱼ·qⱼ,
//!
//! the empirical tail mean with the boundary path's fractional weight, exactly as
//! [`crate::risk::measures::var_es`] estimates it (Rockafellar and Uryasev 2000,
//! "Optimization of conditional value-at-risk", J. Risk 2(3)). With uᵢ ≥ Lᵢ − t, uᵢ ≥ 0 and a
//! trade split into a bought and a sold leg (cost c⁺ per unit bought, c⁻ per unit sold) it is
//! a linear program:
//!
//!   min  c·v + t + (1/m)·Σ uᵢ     s.t.  uᵢ + Σₗ ±Xᵢⱼ₍ₗ₎·vₗ + t ≥ −bᵢ,  uᵢ ≥ 0,  lₗ ≤ vₗ ≤ hₗ,
//!
//! plus an optional budget row (premium and costs ≤ B).
//!
//! **Why a bespoke interior point.** The program has n + 2m + 1 variables and 2n rows, but
//! only 2m + 1 of the variables are coupled: every uᵢ appears in its own two rows. Mehrotra's
//! predictor–corrector method on the normal equations eliminates each uᵢ in closed form, so
//! every iteration factors one dense (2m + 1)² matrix Σᵢ ωᵢ·gᵢgᵢᵀ + diag, built from XᵀΩX
//! (O(n·m²) multiply–adds, a matrix product) and never an n × n system. General sparse
//! solvers (Clarabel's sparse LDLᵀ of the whole KKT system) pay for the dense columns of X
//! many times over.
//!
//! **Cutting planes.** Only the paths beyond VaR at the optimum carry weight, about m of the
//! n. The program is solved on a working set of paths (the book's worst, plus every k-th path),
//! each round adding the paths whose loss at the restricted optimum exceeds its VaR t, until
//! none does; the restricted optimum is then optimal for all n paths (a path with Lᵢ ≤ t has
//! uᵢ = 0 and adds nothing).
//!
//! **Target mode.** The cheapest trades with ES ≤ ES* are found as the least cost cap C whose
//! least ES (under c·v ≤ C, a row on the trades only) is at most ES*: the least ES is convex
//! and decreasing in C, and Newton steps on the cap row's dual price approach the root from
//! below (a secant step when one would leave the bracket).
//!
//! Reproducible: every sum over paths runs over fixed chunks of [`CHUNK_PATHS`] paths whose
//! partial sums are added in chunk order, so the result is bit-identical for any number of
//! threads.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::hedge::fallback::{solve_restricted, FallbackLeg, RestrictedProgram};
use crate::mc::shocks::clear_upper_vector_state;
use crate::risk::measures::{mean_and_stdev, tail_mass, var_es_from_tail};

/// Paths per chunk of every parallel sum over paths (fixed, for bit-identical results).
pub const CHUNK_PATHS: usize = 4096;

/// Interior-point iterations before giving up.
const MAX_ITERATIONS: usize = 200;

/// Relative primal, dual and gap tolerance of the scaled program.
const TOLERANCE: f64 = 1e-9;

/// Tolerance of the best iterate kept when the iterations stall (the ES is then optimal to
/// a relative 10⁻⁵, far inside its Monte Carlo error).
const LOOSE_TOLERANCE: f64 = 1e-5;

/// Iterations without a better iterate after which the method stops, once the best
/// iterate is within [`STALL_NEAR`] (early iterates do not improve monotonically).
const STALL_ITERATIONS: usize = 8;

/// Error below which a stall ends the iterations.
const STALL_NEAR: f64 = 1e-3;

/// A scaled variable beyond this magnitude means the program is unbounded.
const DIVERGENCE: f64 = 1e12;

/// Rounds of iterative refinement of each Newton direction (the normal equations lose
/// digits as the duals and slacks of the tail rows part near the optimum).
const REFINEMENTS: usize = 2;

/// Working-set paths per tail path at the start of the cutting planes.
const WORKING_SET_TAILS: usize = 4;

/// Most paths a cutting-plane round adds, per tail path.
const ROUND_TAILS: usize = 2;

/// Cost-cap solves of the target mode before it settles for the cheapest reaching one.
const MAX_TARGET_SOLVES: usize = 60;

/// Relative distance to the target ES at which the target mode stops (tight: where the
/// least ES falls steeply with cost, a looser ES misses the least cost by far more).
const TARGET_TOLERANCE: f64 = 1e-8;

/// Relative room a cost cap keeps above the least cost, and the relative width of the cost
/// bracket at which the target mode stops, plus 10⁻¹² of the loss spread (a cap nearer
/// leaves the interior point no room to start in; the least cost is then known to a
/// relative 10⁻⁷).
const CAP_ROOM: f64 = 1e-7;

/// A scaled bound beyond this is no bound (the spread-scaled quantities of a sensible hedge
/// are of order one).
const UNBOUNDED: f64 = 1e9;

/// A row's primal residual within this many ulps-worth of its terms is rounding noise and
/// counts as zero: the Newton step multiplies it by zᵢ/sᵢ, which reaches 10²⁰ on the rows
/// active at the optimum, and the noise would otherwise swamp the step.
const ROUNDING_NOISE: f64 = 1e-13;

/// Fraction of the distance to the boundary an iteration moves.
const STEP_FRACTION: f64 = 0.995;

/// What trading one candidate costs and what bounds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateTerms {
    /// Cost per unit bought (fees and spread), reporting currency, ≥ 0.
    pub buy_cost: f64,
    /// Cost per unit sold, reporting currency, ≥ 0.
    pub sell_cost: f64,
    /// Premium per unit bought (received per unit sold), reporting currency: counts in the
    /// budget, not in the P&L (a premium buys the candidate's value today).
    pub premium: f64,
    /// Least signed quantity (−∞ for none).
    pub lower: f64,
    /// Largest signed quantity (+∞ for none).
    pub upper: f64,
}

/// What to optimise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The trades of least ES (costs included).
    MinimizeEs,
    /// The cheapest trades whose ES (costs included) is at most this, reporting currency.
    ReachEs(f64),
}

/// The scenarios and terms of one hedge program.
#[derive(Debug, Clone, Copy)]
pub struct EsProgram<'a> {
    /// Confidence level a of the ES, in (0, 1).
    pub confidence: f64,
    /// The book's P&L on each path (positive = gain), reporting currency.
    pub book_pnl: &'a [f64],
    /// Candidate j's P&L per unit on path i at `candidate_pnl[j·n + i]` (column-major n × m).
    pub candidate_pnl: &'a [f64],
    /// Costs and bounds per candidate.
    pub terms: &'a [CandidateTerms],
    /// Most premium plus costs the trades may spend, reporting currency.
    pub budget: Option<f64>,
}

/// The optimal trades and what they reach on the program's own paths (in-sample).
#[derive(Debug, Clone, PartialEq)]
pub struct EsOptimum {
    /// Signed quantity per candidate.
    pub quantities: Vec<f64>,
    /// ES of book plus trades, costs included, on the program's paths.
    pub es: f64,
    /// Costs of the trades.
    pub cost: f64,
    /// Premium plus costs (what the budget bounds).
    pub spend: f64,
    /// Interior-point iterations taken.
    pub iterations: usize,
    /// Cutting-plane rounds on which the interior point stalled and Clarabel solved the
    /// round instead (0 on nearly every program; tests/hedge_clarabel.rs asserts it).
    pub fallback_solves: usize,
}

/// Why a program has no solution.
#[derive(Debug, Clone, PartialEq)]
pub enum SolveFailure {
    /// No trades within the bounds and budget reach the target; the least ES they reach.
    TargetOutOfReach {
        /// Least ES the candidates reach, reporting currency.
        least_es: f64,
    },
    /// The bounds and budget admit no trades at all.
    Infeasible,
    /// ES falls without bound: a candidate gains on nearly every path and is unbounded.
    Unbounded,
    /// The iterations did not converge (numerical trouble).
    NotConverged,
}

/// One leg of a candidate: its bought (sign +1) or sold (sign −1) units v ∈ [lower, upper].
#[derive(Debug, Clone, Copy)]
struct Leg {
    candidate: usize,
    sign: f64,
    cost: f64,
    budget: f64,
    lower: f64,
    upper: f64,
}

impl Leg {
    /// The least the leg can add to the budget row (at its lower bound if it spends, else at
    /// its upper bound; −∞ when that is unbounded).
    fn least_spend(&self) -> f64 {
        if self.budget >= 0.0 {
            self.budget * self.lower
        } else {
            self.budget * self.upper
        }
    }
}

/// Solves `program` for `goal`.
pub fn solve(program: &EsProgram, goal: Goal) -> Result<EsOptimum, SolveFailure> {
    let scaled = Scaled::new(program);
    if scaled.infeasible_bounds() {
        return Err(SolveFailure::Infeasible);
    }
    let mut working = scaled.initial_working_set();
    let least = scaled.least_es(&mut working, None)?;
    match goal {
        Goal::MinimizeEs => Ok(scaled.optimum(&least)),
        Goal::ReachEs(target) => {
            let least_es = scaled.optimum(&least).es;
            if least_es > target {
                return Err(SolveFailure::TargetOutOfReach { least_es });
            }
            let target = target / scaled.loss_scale;
            scaled
                .cheapest_reaching(&mut working, target, least)
                .map(|v| scaled.optimum(&v))
        }
    }
}

/// Leg values of a solved program (scaled), with the iterations that found them.
#[derive(Debug, Clone)]
struct Solved {
    legs: Vec<f64>,
    /// ES plus cost (scaled), exact on all paths.
    es: f64,
    /// Cost (scaled).
    cost: f64,
    /// Dual price of the cost cap, −∂(least ES)/∂cap (0 without a cap).
    cap_price: f64,
    iterations: usize,
    /// Cutting-plane rounds Clarabel solved.
    fallbacks: usize,
}

/// One cutting-plane round's solution of a restricted program (scaled).
#[derive(Debug, Clone)]
struct Round {
    legs: Vec<f64>,
    /// The VaR variable t.
    var: f64,
    /// Dual price of the last leg row as given (before equilibration).
    last_row_price: f64,
    iterations: usize,
    /// Whether Clarabel solved it (the interior point stalled).
    fell_back: bool,
}

/// A row on the legs only: Σₗ coefficientₗ·vₗ ≤ bound (the budget, a cost cap), stored
/// divided by its largest coefficient.
#[derive(Debug, Clone)]
struct LegRow {
    coefficients: Vec<f64>,
    bound: f64,
    /// The largest |coefficient| of the row as given: its dual price is the stored row's
    /// divided by this.
    scale: f64,
}

impl LegRow {
    /// The least Σₗ coefficientₗ·vₗ the legs' bounds allow (−∞ when unbounded below).
    fn least_value(&self, legs: &[Leg]) -> f64 {
        legs.iter()
            .zip(&self.coefficients)
            .map(|(l, c)| match *c {
                c if c > 0.0 => c * l.lower,
                c if c < 0.0 => c * l.upper,
                _ => 0.0,
            })
            .sum()
    }

    /// The row Σₗ coefficientₗ·vₗ ≤ bound, equilibrated. Costs per spread-scaled unit are
    /// small (basis points of a notional), so unscaled rows carry duals in the thousands
    /// while every other dual is of order one, and the interior point stalls on the
    /// mismatch when such a row binds.
    fn new(coefficients: Vec<f64>, bound: f64) -> LegRow {
        let largest = max_abs(&coefficients);
        let scale = if largest > 0.0 { largest } else { 1.0 };
        LegRow {
            coefficients: coefficients.iter().map(|c| c / scale).collect(),
            bound: bound / scale,
            scale,
        }
    }
}

/// The program in units where the book's loss and each candidate's P&L have unit spread,
/// with candidates split into legs and fixed legs folded into the book.
#[derive(Debug, Clone)]
struct Scaled {
    paths: usize,
    /// Confidence level a of the ES.
    confidence: f64,
    /// Weight 1/m of each path in the tail mean (of all paths, also on a working set).
    tail_weight: f64,
    /// Loss scale L (reporting currency per scaled unit).
    loss_scale: f64,
    /// Quantity scale per candidate (units per scaled unit).
    quantity_scale: Vec<f64>,
    /// Scaled candidate P&L, column-major paths × candidates.
    x: Vec<f64>,
    /// Scaled loss per path of the book plus the fixed legs.
    loss: Vec<f64>,
    legs: Vec<Leg>,
    /// Costs of the fixed legs (scaled).
    fixed_cost: f64,
    /// Premium plus costs of the fixed legs (scaled).
    fixed_spend: f64,
    /// Fixed signed quantity per candidate (scaled), from legs whose bounds meet.
    fixed: Vec<f64>,
    /// The budget row, if any.
    budget: Option<LegRow>,
    candidates: usize,
}

impl Scaled {
    fn new(program: &EsProgram) -> Scaled {
        let n = program.book_pnl.len();
        let m = program.terms.len();
        let spread = |values: &[f64]| mean_and_stdev(values).1;
        let column = |j: usize| &program.candidate_pnl[j * n..(j + 1) * n];
        let candidate_sd: Vec<f64> = (0..m).map(|j| spread(column(j))).collect();
        let loss_scale = std::iter::once(spread(program.book_pnl))
            .chain(candidate_sd.iter().copied())
            .find(|sd| *sd > 0.0 && sd.is_finite())
            .unwrap_or(1.0);
        let quantity_scale: Vec<f64> = candidate_sd
            .iter()
            .map(|&sd| if sd > 0.0 { loss_scale / sd } else { 1.0 })
            .collect();
        let mut x = vec![0.0; n * m];
        for j in 0..m {
            let factor = quantity_scale[j] / loss_scale;
            for (out, value) in x[j * n..(j + 1) * n].iter_mut().zip(column(j)) {
                *out = value * factor;
            }
        }
        let mut scaled = Scaled {
            paths: n,
            confidence: program.confidence,
            tail_weight: 1.0 / tail_mass(n, program.confidence).total(),
            loss_scale,
            quantity_scale,
            x,
            loss: program.book_pnl.iter().map(|b| -b / loss_scale).collect(),
            legs: Vec::new(),
            fixed_cost: 0.0,
            fixed_spend: 0.0,
            fixed: vec![0.0; m],
            budget: None,
            candidates: m,
        };
        for (j, terms) in program.terms.iter().enumerate() {
            scaled.add_legs(j, terms);
        }
        scaled.budget = program
            .budget
            .and_then(|b| scaled.fix_legs_at_an_exhausted_budget(b / loss_scale));
        scaled
    }

    /// Splits candidate `j` into a bought and a sold leg; a leg whose bounds meet is fixed
    /// and folded into the book's loss.
    fn add_legs(&mut self, j: usize, terms: &CandidateTerms) {
        let q = self.quantity_scale[j];
        let money = q / self.loss_scale;
        let finite = |b: f64| {
            if b.abs() > UNBOUNDED {
                b.signum() * f64::INFINITY
            } else {
                b
            }
        };
        let (lower, upper) = (finite(terms.lower / q), finite(terms.upper / q));
        let reach = self.x[j * self.paths..(j + 1) * self.paths]
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let buy = Leg {
            candidate: j,
            sign: 1.0,
            cost: terms.buy_cost * money,
            budget: (terms.premium + terms.buy_cost) * money,
            lower: lower.max(0.0),
            upper,
        };
        let sell = Leg {
            candidate: j,
            sign: -1.0,
            cost: terms.sell_cost * money,
            budget: (terms.sell_cost - terms.premium) * money,
            lower: (-upper).max(0.0),
            upper: -lower,
        };
        for leg in [buy, sell] {
            if leg.upper <= 0.0 && leg.lower <= 0.0 {
                continue;
            }
            // A leg costing more per unit than it can move any path's loss never pays.
            if leg.lower >= leg.upper || leg.cost >= reach {
                self.fold(leg, leg.lower);
            } else {
                self.legs.push(leg);
            }
        }
    }

    /// Fixes `leg` at `value`: its P&L joins the book's, its cost and spend the fixed ones.
    fn fold(&mut self, leg: Leg, value: f64) {
        let n = self.paths;
        let j = leg.candidate;
        let moved = leg.sign * value;
        self.fixed[j] += moved;
        self.fixed_cost += leg.cost * value;
        self.fixed_spend += leg.budget * value;
        if moved != 0.0 {
            for (l, xij) in self.loss.iter_mut().zip(&self.x[j * n..(j + 1) * n]) {
                *l -= xij * moved;
            }
        }
    }

    /// With a budget equal to the least spend the legs allow (to a relative 10⁻⁹), every leg
    /// that spends is held at its cheapest bound (the budget leaves the interior point no
    /// interior): fold them and drop the budget.
    fn fix_legs_at_an_exhausted_budget(&mut self, budget: f64) -> Option<LegRow> {
        let least_spend: f64 = self.legs.iter().map(Leg::least_spend).sum();
        let bound = budget - self.fixed_spend;
        let room = bound - least_spend;
        if room.abs() > 1e-9 * (1.0 + bound.abs()) {
            return Some(LegRow::new(
                self.legs.iter().map(|l| l.budget).collect(),
                bound,
            ));
        }
        let legs = std::mem::take(&mut self.legs);
        for leg in legs {
            if leg.budget == 0.0 {
                self.legs.push(leg);
            } else {
                let value = if leg.budget > 0.0 {
                    leg.lower
                } else {
                    leg.upper
                };
                self.fold(leg, value);
            }
        }
        None
    }

    /// Whether a leg's bounds or the budget leave nothing to choose from (a forced quantity
    /// beyond [`UNBOUNDED`] counts as nothing to choose from).
    fn infeasible_bounds(&self) -> bool {
        let least_spend: f64 = self.legs.iter().map(Leg::least_spend).sum();
        self.legs
            .iter()
            .any(|l| l.lower > l.upper || l.lower.is_infinite())
            || self.fixed.iter().any(|q| !q.is_finite())
            || self
                .budget
                .as_ref()
                .is_some_and(|b| least_spend > b.bound * b.scale + 1e-12)
    }

    /// The first working set: the book's worst paths and a stride through all paths.
    fn initial_working_set(&self) -> Vec<usize> {
        let n = self.paths;
        let tail = (1.0 / self.tail_weight).ceil() as usize + 1;
        let size = (WORKING_SET_TAILS * tail).min(n);
        let mut set = worst(&self.loss, size / 2);
        let stride = (2 * n / size.max(1)).max(1);
        set.extend((0..n).step_by(stride));
        set.sort_unstable();
        set.dedup();
        set
    }

    /// The legs of least ES (costs included), under the budget and the optional cost cap
    /// (scaled), by cutting planes over `working` (which grows).
    fn least_es(
        &self,
        working: &mut Vec<usize>,
        cost_cap: Option<f64>,
    ) -> Result<Solved, SolveFailure> {
        let n = self.paths;
        let per_round = (ROUND_TAILS as f64 / self.tail_weight).ceil() as usize + 1;
        let mut iterations = 0;
        let mut fallbacks = 0;
        loop {
            let restricted = self.restricted(working);
            let mut rows: Vec<LegRow> = self.budget.iter().cloned().collect();
            if let Some(cap) = cost_cap {
                rows.push(LegRow::new(
                    self.legs.iter().map(|l| l.cost).collect(),
                    cap - self.fixed_cost,
                ));
            }
            let round = restricted.solve_round(rows)?;
            iterations += round.iterations;
            fallbacks += usize::from(round.fell_back);
            let var = round.var;
            let legs = self.net_opposite_legs(round.legs);
            let losses = self.losses_with_legs(&legs);
            let mut member = vec![false; n];
            working.iter().for_each(|&i| member[i] = true);
            let tolerance = 1e-9 * (1.0 + var.abs());
            let violators: Vec<usize> = (0..n)
                .filter(|&i| !member[i] && losses[i] > var + tolerance)
                .collect();
            if violators.is_empty() {
                let cost = self.fixed_cost
                    + self
                        .legs
                        .iter()
                        .zip(&legs)
                        .map(|(l, v)| l.cost * v)
                        .sum::<f64>();
                return Ok(Solved {
                    es: self.expected_shortfall(losses) + cost,
                    cost,
                    cap_price: if cost_cap.is_some() {
                        round.last_row_price
                    } else {
                        0.0
                    },
                    legs,
                    iterations,
                    fallbacks,
                });
            }
            let violator_losses: Vec<f64> = violators.iter().map(|&i| losses[i]).collect();
            let chosen = worst(&violator_losses, per_round.min(violators.len()));
            working.extend(chosen.into_iter().map(|k| violators[k]));
            working.sort_unstable();
        }
    }

    /// `legs` with each candidate's bought and sold legs netted (the smaller taken off
    /// both): an interior point leaves both a hair above zero, which costs fees on both and
    /// moves nothing. The net quantity, hence every path's loss, is unchanged, and cost and
    /// spend only fall (a round trip costs the buy and the sell fee).
    fn net_opposite_legs(&self, mut legs: Vec<f64>) -> Vec<f64> {
        for buy in 0..self.legs.len() {
            let sell = buy + 1;
            let pair = self.legs.get(sell).is_some_and(|l| {
                l.candidate == self.legs[buy].candidate && self.legs[buy].sign > 0.0
            });
            if pair && self.legs[buy].lower <= 0.0 && self.legs[sell].lower <= 0.0 {
                let common = legs[buy].min(legs[sell]).max(0.0);
                legs[buy] -= common;
                legs[sell] -= common;
            }
        }
        legs
    }

    /// One cutting-plane round: this (restricted) program under the leg `rows`, by the
    /// interior point, or by Clarabel should the interior point stall.
    fn solve_round(&self, rows: Vec<LegRow>) -> Result<Round, SolveFailure> {
        let mut ipm = InteriorPoint::new(self, rows);
        match ipm.run() {
            Ok(iterations) => Ok(Round {
                legs: ipm.legs_value(),
                var: ipm.x[self.legs.len()],
                last_row_price: match (ipm.leg_rows.last(), ipm.z.last()) {
                    (Some(row), Some(z)) => z / row.scale,
                    _ => 0.0,
                },
                iterations,
                fell_back: false,
            }),
            Err(SolveFailure::NotConverged) => self.solve_round_by_clarabel(&ipm.leg_rows),
            Err(failure) => Err(failure),
        }
    }

    /// [`Scaled::solve_round`] by Clarabel (see [`crate::hedge::fallback`]).
    fn solve_round_by_clarabel(&self, rows: &[LegRow]) -> Result<Round, SolveFailure> {
        let legs: Vec<FallbackLeg> = self
            .legs
            .iter()
            .map(|l| FallbackLeg {
                candidate: l.candidate,
                sign: l.sign,
                cost: l.cost,
                lower: l.lower,
                upper: l.upper,
            })
            .collect();
        let leg_rows: Vec<(&[f64], f64)> = rows
            .iter()
            .map(|r| (r.coefficients.as_slice(), r.bound))
            .collect();
        let solution = solve_restricted(&RestrictedProgram {
            paths: self.paths,
            x: &self.x,
            loss: &self.loss,
            tail_weight: self.tail_weight,
            legs: &legs,
            leg_rows: &leg_rows,
        })?;
        // Clarabel meets bounds to its tolerance; the legs are kept inside them.
        let legs = self
            .legs
            .iter()
            .zip(&solution.legs)
            .map(|(l, v)| v.clamp(l.lower, l.upper))
            .collect();
        Ok(Round {
            last_row_price: match (rows.last(), solution.row_prices.last()) {
                (Some(row), Some(z)) => z / row.scale,
                _ => 0.0,
            },
            legs,
            var: solution.var,
            iterations: solution.iterations,
            fell_back: true,
        })
    }

    /// The cheapest legs whose ES (costs included) is at most `target` (scaled), given the
    /// least-ES solution `least` (which reaches it). f(C) = least ES under cost ≤ C, minus
    /// the target, is convex and decreasing: Newton steps on the cap row's dual price −f′(C)
    /// land at or below the root from either end and then climb to it; a step that leaves
    /// the bracket falls back to an Illinois secant.
    fn cheapest_reaching(
        &self,
        working: &mut Vec<usize>,
        target: f64,
        least: Solved,
    ) -> Result<Solved, SolveFailure> {
        let tolerance = TARGET_TOLERANCE * (1.0 + target.abs());
        let mut lo = self.least_es_at_no_cost(working)?;
        let mut fallbacks = least.fallbacks + lo.fallbacks;
        let counted = |solved: Solved, fallbacks: usize| Solved {
            fallbacks,
            ..solved
        };
        if lo.es <= target + tolerance {
            return Ok(counted(lo, fallbacks));
        }
        let mut hi = least;
        let mut stuck = (0, 0);
        for _ in 0..MAX_TARGET_SOLVES {
            let (f_lo, f_hi) = (lo.es - target, hi.es - target);
            // A cap within CAP_ROOM of the least cost leaves the cap row no room to start in;
            // the cheapest reaching is then known to that precision.
            let room = CAP_ROOM * hi.cost.abs() + 1e-12;
            if f_hi >= -tolerance || hi.cost - lo.cost <= room {
                return Ok(counted(hi, fallbacks));
            }
            let inside = |c: f64| c > lo.cost && c < hi.cost;
            // Tangents of a convex decreasing f cross zero at or before its root, from
            // either side; the secant (Illinois-weighted against a stuck end) crosses after.
            // An infeasible lower end (infinite ES) gives neither tangent nor secant inside
            // the bracket, which is then halved.
            let from_lo = lo.cost + f_lo / lo.cap_price;
            let from_hi = hi.cost + f_hi / hi.cap_price;
            let (w_lo, w_hi) = (0.5f64.powi(stuck.0), 0.5f64.powi(stuck.1));
            let secant = hi.cost - f_hi * w_hi * (hi.cost - lo.cost) / (f_hi * w_hi - f_lo * w_lo);
            let cap = if lo.cap_price > 0.0 && inside(from_lo) {
                from_lo
            } else if hi.cap_price > 0.0 && inside(from_hi) {
                from_hi
            } else if inside(secant) {
                secant
            } else {
                0.5 * (lo.cost + hi.cost)
            };
            let cap = cap.max(lo.cost + room);
            let solved = match self.least_es(working, Some(cap)) {
                // The cap and the budget together admit nothing (a forced purchase funded
                // by sales that cost): the cheapest reaching lies above the cap.
                Err(SolveFailure::Infeasible) => self.out_of_budget(cap),
                other => other?,
            };
            fallbacks += solved.fallbacks;
            if solved.es - target <= tolerance {
                if solved.es - target >= -tolerance {
                    return Ok(counted(solved, fallbacks));
                }
                hi = solved;
                stuck = (stuck.0 + 1, 0);
            } else {
                lo = solved;
                stuck = (0, stuck.1 + 1);
            }
        }
        Ok(counted(hi, fallbacks))
    }

    /// The marker of a cost cap under which the budget admits no trades: ES +∞ at that
    /// cost, for the lower end of the target mode's bracket.
    fn out_of_budget(&self, cost: f64) -> Solved {
        Solved {
            legs: self.legs.iter().map(|l| l.lower).collect(),
            es: f64::INFINITY,
            cost,
            cap_price: 0.0,
            iterations: 0,
            fallbacks: 0,
        }
    }

    /// The least ES the costless legs reach with every costly leg at its lower bound (what a
    /// cap at the least cost allows; as a cap row it would leave the interior point no
    /// interior): no trades when every leg costs, else the costless legs' program solved.
    /// Its cap price is unknown (0).
    fn least_es_at_no_cost(&self, working: &mut Vec<usize>) -> Result<Solved, SolveFailure> {
        let lower: Vec<f64> = self.legs.iter().map(|l| l.lower).collect();
        let cost = self.fixed_cost + self.legs.iter().map(|l| l.cost * l.lower).sum::<f64>();
        if self.legs.iter().all(|l| l.cost > 0.0) {
            if self
                .budget
                .as_ref()
                .is_some_and(|b| dot(&b.coefficients, &lower) > b.bound)
            {
                return Ok(self.out_of_budget(cost));
            }
            return Ok(Solved {
                es: self.expected_shortfall(self.losses_with_legs(&lower)) + cost,
                cost,
                cap_price: 0.0,
                legs: lower,
                iterations: 0,
                fallbacks: 0,
            });
        }
        let mut costless = self.clone();
        costless.legs.clear();
        for leg in &self.legs {
            if leg.cost > 0.0 {
                costless.fold(*leg, leg.lower);
            } else {
                costless.legs.push(*leg);
            }
        }
        if let Some(row) = &self.budget {
            let kept: Vec<f64> = self
                .legs
                .iter()
                .zip(&row.coefficients)
                .filter(|(l, _)| l.cost == 0.0)
                .map(|(_, c)| *c)
                .collect();
            let folded: f64 = self
                .legs
                .iter()
                .zip(&row.coefficients)
                .filter(|(l, _)| l.cost > 0.0)
                .map(|(l, c)| c * l.lower)
                .sum();
            let budget = LegRow {
                coefficients: kept,
                bound: row.bound - folded,
                scale: row.scale,
            };
            if budget.least_value(&costless.legs) > budget.bound {
                return Ok(self.out_of_budget(cost));
            }
            // A row the costless legs do not enter constrains nothing.
            costless.budget = budget
                .coefficients
                .iter()
                .any(|c| *c != 0.0)
                .then_some(budget);
        }
        let solved = costless.least_es(working, None)?;
        let mut free = solved.legs.iter();
        let legs = self
            .legs
            .iter()
            .map(|l| {
                if l.cost > 0.0 {
                    l.lower
                } else {
                    free.next().copied().unwrap_or(l.lower)
                }
            })
            .collect();
        Ok(Solved {
            legs,
            cap_price: 0.0,
            ..solved
        })
    }

    /// The program on the paths `rows` only, with the tail weight of all paths.
    fn restricted(&self, rows: &[usize]) -> Scaled {
        let n = self.paths;
        let mut x = Vec::with_capacity(rows.len() * self.candidates);
        for j in 0..self.candidates {
            x.extend(rows.iter().map(|&i| self.x[j * n + i]));
        }
        Scaled {
            paths: rows.len(),
            x,
            loss: rows.iter().map(|&i| self.loss[i]).collect(),
            ..self.clone_without_paths()
        }
    }

    fn clone_without_paths(&self) -> Scaled {
        Scaled {
            paths: 0,
            confidence: self.confidence,
            tail_weight: self.tail_weight,
            loss_scale: self.loss_scale,
            quantity_scale: self.quantity_scale.clone(),
            x: Vec::new(),
            loss: Vec::new(),
            legs: self.legs.clone(),
            fixed_cost: self.fixed_cost,
            fixed_spend: self.fixed_spend,
            fixed: self.fixed.clone(),
            budget: self.budget.clone(),
            candidates: self.candidates,
        }
    }

    /// Quantities, ES, cost and spend of a solution, in reporting currency.
    fn optimum(&self, solved: &Solved) -> EsOptimum {
        let mut scaled_q = self.fixed.clone();
        let mut spend = self.fixed_spend;
        for (leg, &value) in self.legs.iter().zip(&solved.legs) {
            scaled_q[leg.candidate] += leg.sign * value;
            spend += leg.budget * value;
        }
        EsOptimum {
            quantities: scaled_q
                .iter()
                .zip(&self.quantity_scale)
                .map(|(q, s)| q * s)
                .collect(),
            es: solved.es * self.loss_scale,
            cost: solved.cost * self.loss_scale,
            spend: spend * self.loss_scale,
            iterations: solved.iterations,
            fallback_solves: solved.fallbacks,
        }
    }

    /// The ES of scaled `losses` on all paths, by the estimator `run` reports.
    fn expected_shortfall(&self, losses: Vec<f64>) -> f64 {
        var_es_from_tail(losses, self.paths, &[self.confidence])[0].es
    }

    /// Scaled loss per path with leg values `legs` (the fixed legs already in the book).
    fn losses_with_legs(&self, legs: &[f64]) -> Vec<f64> {
        let mut q = vec![0.0; self.candidates];
        for (leg, value) in self.legs.iter().zip(legs) {
            q[leg.candidate] += leg.sign * value;
        }
        let moved = self.x_times(&q);
        self.loss.iter().zip(moved).map(|(l, p)| l - p).collect()
    }

    /// X·q (scaled P&L of trades q on every path).
    fn x_times(&self, q: &[f64]) -> Vec<f64> {
        let n = self.paths;
        let mut out = vec![0.0; n];
        out.par_chunks_mut(CHUNK_PATHS)
            .enumerate()
            .for_each(|(c, chunk)| {
                let start = c * CHUNK_PATHS;
                for (j, &qj) in q.iter().enumerate() {
                    if qj == 0.0 {
                        continue;
                    }
                    let column = &self.x[j * n + start..j * n + start + chunk.len()];
                    for (o, x) in chunk.iter_mut().zip(column) {
                        *o += qj * x;
                    }
                }
            });
        out
    }

    /// (Xᵀw per candidate, Σw), summed chunk by chunk in order.
    fn x_transpose_times(&self, w: &[f64]) -> (Vec<f64>, f64) {
        let n = self.paths;
        let m = self.candidates;
        let partials: Vec<Vec<f64>> = w
            .par_chunks(CHUNK_PATHS)
            .enumerate()
            .map(|(c, chunk)| {
                let start = c * CHUNK_PATHS;
                let mut part: Vec<f64> = (0..m)
                    .map(|j| {
                        let column = &self.x[j * n + start..j * n + start + chunk.len()];
                        column.iter().zip(chunk).map(|(x, w)| x * w).sum()
                    })
                    .collect();
                part.push(chunk.iter().sum());
                part
            })
            .collect();
        let mut total = vec![0.0; m + 1];
        for part in partials {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
        let sum = total.pop().unwrap_or(0.0);
        (total, sum)
    }

    /// (XᵀΩX, XᵀΩ1, Σω) with Ω = diag(`omega`), summed chunk by chunk in order.
    fn weighted_gram(&self, omega: &[f64]) -> (Mat<f64>, Vec<f64>, f64) {
        let n = self.paths;
        let m = self.candidates;
        let partials: Vec<(Mat<f64>, Vec<f64>, f64)> = omega
            .par_chunks(CHUNK_PATHS)
            .enumerate()
            .map(|(c, chunk)| {
                let start = c * CHUNK_PATHS;
                let rows = chunk.len();
                let mut weighted = vec![0.0; rows * m];
                let mut linear = vec![0.0; m];
                for j in 0..m {
                    let column = &self.x[j * n + start..j * n + start + rows];
                    let out = &mut weighted[j * rows..(j + 1) * rows];
                    for ((o, x), w) in out.iter_mut().zip(column).zip(chunk) {
                        *o = x * w.sqrt();
                        linear[j] += x * w;
                    }
                }
                let y = MatRef::from_column_major_slice(&weighted, rows, m);
                let mut gram = Mat::<f64>::zeros(m, m);
                matmul(
                    gram.as_mut(),
                    Accum::Replace,
                    y.transpose(),
                    y,
                    1.0,
                    Par::Seq,
                );
                clear_upper_vector_state();
                (gram, linear, chunk.iter().sum())
            })
            .collect();
        let mut gram = Mat::<f64>::zeros(m, m);
        let mut linear = vec![0.0; m];
        let mut sum = 0.0;
        for (g, l, s) in partials {
            gram += &g;
            linear.iter_mut().zip(l).for_each(|(a, b)| *a += b);
            sum += s;
        }
        (gram, linear, sum)
    }
}

/// Indices of the `count` largest of `values` (ties by index).
fn worst(values: &[f64], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let count = count.min(values.len());
    if count == 0 {
        return Vec::new();
    }
    let descending = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
    if count < order.len() {
        order.select_nth_unstable_by(count - 1, descending);
        order.truncate(count);
    }
    order
}

/// Primal–dual state of the interior-point method.
///
/// Variables x = (v legs, t, u paths). Rows, all as (row·x ≥ rhs) with slack s ≥ 0 and dual
/// z ≥ 0, in this order: the n path rows uᵢ + gᵢ·y ≥ lossᵢ (y = (v, t), gᵢ = (±Xᵢⱼ₍ₗ₎, 1)),
/// the n rows uᵢ ≥ 0, the legs' lower bounds, their finite upper bounds, the leg rows
/// (−row·v ≥ −bound).
struct InteriorPoint<'a> {
    p: &'a Scaled,
    /// Rows on the legs only (budget, cost cap).
    leg_rows: Vec<LegRow>,
    /// Legs with a finite upper bound.
    capped: Vec<usize>,
    x: Vec<f64>,
    s: Vec<f64>,
    z: Vec<f64>,
    /// Objective coefficients.
    c: Vec<f64>,
    /// Row right-hand sides.
    b: Vec<f64>,
}

/// Where each block of rows starts.
struct Rows {
    n: usize,
    legs: usize,
    capped: usize,
}

impl Rows {
    fn lower(&self) -> usize {
        2 * self.n
    }
    fn upper(&self) -> usize {
        self.lower() + self.legs
    }
    fn leg_rows(&self) -> usize {
        self.upper() + self.capped
    }
}

impl<'a> InteriorPoint<'a> {
    fn new(p: &'a Scaled, leg_rows: Vec<LegRow>) -> InteriorPoint<'a> {
        let n = p.paths;
        let k = p.legs.len();
        let capped: Vec<usize> = (0..k).filter(|&l| p.legs[l].upper.is_finite()).collect();
        let mut c = vec![0.0; k + 1 + n];
        for (cl, leg) in c.iter_mut().zip(&p.legs) {
            *cl = leg.cost;
        }
        c[k] = 1.0;
        c[k + 1..].iter_mut().for_each(|ci| *ci = p.tail_weight);
        let mut b = p.loss.clone();
        b.extend(std::iter::repeat_n(0.0, n));
        b.extend(p.legs.iter().map(|l| l.lower));
        b.extend(capped.iter().map(|&l| -p.legs[l].upper));
        b.extend(leg_rows.iter().map(|r| -r.bound));
        let mut x = interior_legs(&p.legs, &leg_rows);
        x.resize(k + 1 + n, 0.0);
        let mut ipm = InteriorPoint {
            p,
            leg_rows,
            capped,
            x,
            s: Vec::new(),
            z: Vec::new(),
            c,
            b,
        };
        ipm.start_at_the_tail();
        ipm
    }

    /// A primal-feasible starting point in Mehrotra's manner: the legs strictly inside their
    /// bounds and leg rows (see [`interior_legs`]), t at the level's quantile of the starting
    /// losses, uᵢ their excess plus a margin (so that every path row holds strictly), slacks
    /// exactly A·x − b; the duals of the tail mean (1/n per path row, the rest of the weight
    /// 1/m on uᵢ ≥ 0, bound duals absorbing the legs' dual residual), shifted to be positive
    /// and balanced against the slacks.
    ///
    /// Starting feasible keeps every bound and path row feasible along the way (Newton steps
    /// preserve linear equalities). An infeasible start lets the iterates borrow from a bound
    /// whose violation is cheap in its own units but dear in a leg row's: a put a millionth of
    /// a unit below zero funds a hundredth of a perpetual under a tight budget, and the
    /// iterates then stall far from the optimum.
    fn start_at_the_tail(&mut self) {
        let p = self.p;
        let (n, k) = (p.paths, p.legs.len());
        let rows = self.apply_a(&self.x);
        let mut excess: Vec<f64> = self.b[..n].iter().zip(&rows).map(|(b, r)| b - r).collect();
        let tail = (1.0 / p.tail_weight).floor() as usize;
        let t0 = worst(&excess, tail + 1)
            .into_iter()
            .map(|i| excess[i])
            .fold(f64::INFINITY, f64::min);
        excess.iter_mut().for_each(|e| *e -= t0);
        let margin = 0.1 * (1.0 + mean_and_stdev(&excess).1);
        self.x[k] = t0;
        for (u, e) in self.x[k + 1..].iter_mut().zip(&excess) {
            *u = e.max(0.0) + margin;
        }
        let rows = self.apply_a(&self.x);
        // Only a leg row left violated (see interior_legs) has no positive slack: it
        // starts with a slack of order one, like the bounds'.
        let s: Vec<f64> = rows
            .iter()
            .zip(&self.b)
            .map(|(r, b)| if r > b { r - b } else { 1.0 })
            .collect();
        let r = self.rows();
        let mut z = vec![0.0; s.len()];
        let path = (1.0 / n as f64).min(p.tail_weight);
        z[..n].iter_mut().for_each(|v| *v = path);
        z[n..2 * n]
            .iter_mut()
            .for_each(|v| *v = p.tail_weight - path);
        let r_d: Vec<f64> = self
            .apply_at(&z)
            .iter()
            .zip(&self.c)
            .map(|(a, c)| a - c)
            .collect();
        for l in 0..k {
            z[r.lower() + l] = (-r_d[l]).max(0.0);
        }
        for (i, &l) in self.capped.iter().enumerate() {
            z[r.upper() + i] = r_d[l].max(0.0);
        }
        let sz = dot(&s, &z);
        let mean_product = sz / s.len() as f64;
        for (zi, si) in z.iter_mut().zip(&s) {
            *zi = zi.max(mean_product.max(1e-8) / si);
        }
        self.s = s;
        self.z = z;
    }

    fn rows(&self) -> Rows {
        Rows {
            n: self.p.paths,
            legs: self.p.legs.len(),
            capped: self.capped.len(),
        }
    }

    fn legs_value(&self) -> Vec<f64> {
        self.x[..self.p.legs.len()].to_vec()
    }

    /// Candidate quantities (scaled) of leg values `v`.
    fn candidate_vector(&self, v: &[f64]) -> Vec<f64> {
        let mut q = vec![0.0; self.p.candidates];
        for (leg, value) in self.p.legs.iter().zip(v) {
            q[leg.candidate] += leg.sign * value;
        }
        q
    }

    /// A·x over all rows.
    fn apply_a(&self, x: &[f64]) -> Vec<f64> {
        let k = self.p.legs.len();
        let (v, t, u) = (&x[..k], x[k], &x[k + 1..]);
        let moved = self.p.x_times(&self.candidate_vector(v));
        let mut out: Vec<f64> = moved.iter().zip(u).map(|(m, ui)| ui + m + t).collect();
        out.extend_from_slice(u);
        out.extend_from_slice(v);
        out.extend(self.capped.iter().map(|&l| -v[l]));
        out.extend(self.leg_rows.iter().map(|r| -dot(&r.coefficients, v)));
        out
    }

    /// Aᵀ·w over all variables.
    fn apply_at(&self, w: &[f64]) -> Vec<f64> {
        let r = self.rows();
        let (n, k) = (r.n, r.legs);
        let (xtw, sum) = self.p.x_transpose_times(&w[..n]);
        let mut out = vec![0.0; k + 1 + n];
        for (o, leg) in out.iter_mut().zip(&self.p.legs) {
            *o = leg.sign * xtw[leg.candidate];
        }
        out[k] = sum;
        for i in 0..n {
            out[k + 1 + i] = w[i] + w[n + i];
        }
        for l in 0..k {
            out[l] += w[r.lower() + l];
        }
        for (i, &l) in self.capped.iter().enumerate() {
            out[l] -= w[r.upper() + i];
        }
        for (row, &wr) in self.leg_rows.iter().zip(&w[r.leg_rows()..]) {
            axpy(&mut out[..k], -wr, &row.coefficients);
        }
        out
    }

    /// Runs Mehrotra's predictor–corrector iterations to convergence; the iteration count.
    /// Near the optimum the normal equations lose digits (the slacks of the paths at VaR go
    /// to zero on both of their rows); when the iterates stop improving, the best iterate met
    /// is kept if it is within [`LOOSE_TOLERANCE`].
    fn run(&mut self) -> Result<usize, SolveFailure> {
        let scale_b = 1.0 + max_abs(&self.b);
        let scale_c = 1.0 + max_abs(&self.c);
        let mut best: Option<(f64, Vec<f64>)> = None;
        let mut since_best = 0;
        let mut taken = 0;
        for iteration in 0..MAX_ITERATIONS {
            taken = iteration;
            let ax = self.apply_a(&self.x);
            let r_p: Vec<f64> = (0..ax.len())
                .map(|i| {
                    let residual = ax[i] - self.s[i] - self.b[i];
                    let noise = ROUNDING_NOISE * (ax[i].abs() + self.s[i] + self.b[i].abs());
                    if residual.abs() <= noise {
                        0.0
                    } else {
                        residual
                    }
                })
                .collect();
            let r_d: Vec<f64> = self
                .apply_at(&self.z)
                .iter()
                .zip(&self.c)
                .map(|(a, c)| a - c)
                .collect();
            let primal = dot(&self.c, &self.x);
            let dual = dot(&self.b, &self.z);
            let mu = dot(&self.s, &self.z) / self.s.len() as f64;
            let error = (max_abs(&r_p) / scale_b)
                .max(max_abs(&r_d) / scale_c)
                .max((primal - dual).abs() / (1.0 + primal.abs()));
            if error < TOLERANCE {
                return Ok(iteration);
            }
            if best.as_ref().is_none_or(|(e, _)| error < *e) {
                best = Some((error, self.x.clone()));
                since_best = 0;
            } else {
                since_best += 1;
            }
            let near = best.as_ref().is_some_and(|(e, _)| *e < STALL_NEAR);
            if near && since_best >= STALL_ITERATIONS {
                break;
            }
            if max_abs(&self.x) > DIVERGENCE {
                return Err(SolveFailure::Unbounded);
            }
            if self.step(&r_p, &r_d, mu).is_none() {
                break;
            }
        }
        match best {
            Some((error, x)) if error < LOOSE_TOLERANCE => {
                self.x = x;
                Ok(taken)
            }
            _ => Err(SolveFailure::NotConverged),
        }
    }

    /// One predictor–corrector step; `None` when the normal equations cannot be factored or
    /// the step is not finite.
    fn step(&mut self, r_p: &[f64], r_d: &[f64], mu: f64) -> Option<()> {
        let d: Vec<f64> = self.z.iter().zip(&self.s).map(|(z, s)| z / s).collect();
        let normal = NormalEquations::factor(self, &d)?;
        let v_affine: Vec<f64> = self.s.iter().zip(&self.z).map(|(s, z)| -s * z).collect();
        let (_, ds_a, dz_a) = self.direction(&normal, &d, r_p, r_d, &v_affine);
        let (ap, ad) = (
            step_to_boundary(&self.s, &ds_a),
            step_to_boundary(&self.z, &dz_a),
        );
        let mu_affine = (0..self.s.len())
            .map(|i| (self.s[i] + ap * ds_a[i]) * (self.z[i] + ad * dz_a[i]))
            .sum::<f64>()
            / self.s.len() as f64;
        let sigma = (mu_affine / mu).clamp(0.0, 1.0).powi(3);
        let v: Vec<f64> = (0..self.s.len())
            .map(|i| -self.s[i] * self.z[i] - ds_a[i] * dz_a[i] + sigma * mu)
            .collect();
        let (dx, ds, dz) = self.direction(&normal, &d, r_p, r_d, &v);
        let ap = (STEP_FRACTION * step_to_boundary(&self.s, &ds)).min(1.0);
        let ad = (STEP_FRACTION * step_to_boundary(&self.z, &dz)).min(1.0);
        axpy(&mut self.x, ap, &dx);
        axpy(&mut self.s, ap, &ds);
        axpy(&mut self.z, ad, &dz);
        self.x
            .iter()
            .chain(&self.z)
            .all(|v| v.is_finite())
            .then_some(())
    }

    /// The Newton direction for complementarity target `v` (s∘z + Δs∘z + s∘Δz = v + s∘z):
    /// M·Δx = r_d − Aᵀ·D·r_p + Aᵀ·(v/s), Δs = A·Δx + r_p, Δz = −D·Δs + v/s, with M = AᵀDA
    /// solved by the factor and [`REFINEMENTS`] rounds of iterative refinement.
    fn direction(
        &self,
        normal: &NormalEquations,
        d: &[f64],
        r_p: &[f64],
        r_d: &[f64],
        v: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let w: Vec<f64> = (0..d.len())
            .map(|i| v[i] / self.s[i] - d[i] * r_p[i])
            .collect();
        let rhs: Vec<f64> = r_d
            .iter()
            .zip(self.apply_at(&w))
            .map(|(a, b)| a + b)
            .collect();
        let mut dx = normal.solve(self, &rhs);
        for _ in 0..REFINEMENTS {
            let scaled: Vec<f64> = self
                .apply_a(&dx)
                .iter()
                .zip(d)
                .map(|(a, d)| a * d)
                .collect();
            let residual: Vec<f64> = rhs
                .iter()
                .zip(self.apply_at(&scaled))
                .map(|(r, m)| r - m)
                .collect();
            axpy(&mut dx, 1.0, &normal.solve(self, &residual));
        }
        let ds: Vec<f64> = self
            .apply_a(&dx)
            .iter()
            .zip(r_p)
            .map(|(a, r)| a + r)
            .collect();
        let dz: Vec<f64> = (0..d.len())
            .map(|i| -d[i] * ds[i] + v[i] / self.s[i])
            .collect();
        (dx, ds, dz)
    }
}

/// The factored normal equations M = A·D·Aᵀ: the paths' u eliminated in closed form and a
/// dense Cholesky factor of the Schur complement on y = (v, t).
///
/// The leg rows (budget, cost cap) enter S as a low-rank term Σᵣ dᵣ·aᵣaᵣᵀ, applied by the
/// Woodbury identity rather than added: near a binding budget dᵣ = zᵣ/sᵣ reaches 10²⁰ while
/// the paths' terms are of order one, and adding it to S would cancel every digit of the
/// legs the budget trades off against each other.
struct NormalEquations {
    /// Lower Cholesky factor of S₀, the Schur complement without the leg rows (row-major,
    /// dimension legs + 1).
    factor: Vec<f64>,
    dim: usize,
    /// S₀⁻¹·aᵣ per leg row (aᵣ padded with a zero for t).
    spread_rows: Vec<Vec<f64>>,
    /// Lower Cholesky factor of the capacitance matrix diag(1/dᵣ) + [aᵣᵀS₀⁻¹aₛ].
    capacitance: Vec<f64>,
    /// d₁ᵢ/λᵢ per path (λᵢ = d₁ᵢ + d₂ᵢ, d₁ of the path row, d₂ of uᵢ ≥ 0).
    ratio: Vec<f64>,
    /// 1/λᵢ per path.
    inverse_lambda: Vec<f64>,
    /// d₁ᵢ per path.
    d1: Vec<f64>,
}

impl NormalEquations {
    /// S = Σᵢ ωᵢ·gᵢgᵢᵀ + bound and leg-row terms, ωᵢ = d₁ᵢd₂ᵢ/λᵢ, factored.
    fn factor(ipm: &InteriorPoint, d: &[f64]) -> Option<NormalEquations> {
        let r = ipm.rows();
        let (n, k) = (r.n, r.legs);
        let legs = &ipm.p.legs;
        let d1 = d[..n].to_vec();
        let lambda: Vec<f64> = (0..n).map(|i| d[i] + d[n + i]).collect();
        let omega: Vec<f64> = (0..n).map(|i| d1[i] * d[n + i] / lambda[i]).collect();
        let (gram, linear, total) = ipm.p.weighted_gram(&omega);
        let dim = k + 1;
        let mut s = vec![0.0; dim * dim];
        for a in 0..k {
            for b in 0..k {
                let (la, lb) = (legs[a], legs[b]);
                s[a * dim + b] = la.sign * lb.sign * gram[(la.candidate, lb.candidate)];
            }
            s[a * dim + k] = legs[a].sign * linear[legs[a].candidate];
            s[k * dim + a] = s[a * dim + k];
            s[a * dim + a] += d[r.lower() + a];
        }
        s[k * dim + k] = total;
        for (i, &l) in ipm.capped.iter().enumerate() {
            s[l * dim + l] += d[r.upper() + i];
        }
        let factor = cholesky(&s, dim)?;
        let spread_rows: Vec<Vec<f64>> = ipm
            .leg_rows
            .iter()
            .map(|row| {
                let mut w = row.coefficients.clone();
                w.push(0.0);
                cholesky_solve(&factor, dim, &mut w);
                w
            })
            .collect();
        let rows = ipm.leg_rows.len();
        let mut capacitance = vec![0.0; rows * rows];
        for (a, (row, &dr)) in ipm.leg_rows.iter().zip(&d[r.leg_rows()..]).enumerate() {
            for (b, w) in spread_rows.iter().enumerate() {
                capacitance[a * rows + b] = dot(&row.coefficients, &w[..k]);
            }
            capacitance[a * rows + a] += 1.0 / dr;
        }
        Some(NormalEquations {
            factor,
            dim,
            spread_rows,
            capacitance: cholesky(&capacitance, rows)?,
            ratio: (0..n).map(|i| d1[i] / lambda[i]).collect(),
            inverse_lambda: lambda.iter().map(|l| 1.0 / l).collect(),
            d1,
        })
    }

    /// S⁻¹·y in place, S = S₀ + Σᵣ dᵣ·aᵣaᵣᵀ, by Woodbury: S₀⁻¹y − W·C⁻¹·(Aᵀ·S₀⁻¹y) with
    /// W = S₀⁻¹A and C the capacitance matrix.
    fn solve_schur(&self, ipm: &InteriorPoint, y: &mut [f64]) {
        cholesky_solve(&self.factor, self.dim, y);
        let k = self.dim - 1;
        let mut projected: Vec<f64> = ipm
            .leg_rows
            .iter()
            .map(|row| dot(&row.coefficients, &y[..k]))
            .collect();
        cholesky_solve(&self.capacitance, projected.len(), &mut projected);
        for (w, p) in self.spread_rows.iter().zip(&projected) {
            axpy(y, -p, w);
        }
    }

    /// M⁻¹·rhs: Δy = S⁻¹(r_y − Σᵢ (d₁ᵢ/λᵢ)·r_uᵢ·gᵢ), Δuᵢ = (r_uᵢ − d₁ᵢ·gᵢ·Δy)/λᵢ.
    fn solve(&self, ipm: &InteriorPoint, rhs: &[f64]) -> Vec<f64> {
        let k = ipm.p.legs.len();
        let (ry, ru) = rhs.split_at(k + 1);
        let weighted: Vec<f64> = ru.iter().zip(&self.ratio).map(|(r, q)| r * q).collect();
        let (xtw, sum) = ipm.p.x_transpose_times(&weighted);
        let mut y = ry.to_vec();
        for (yl, leg) in y.iter_mut().zip(&ipm.p.legs) {
            *yl -= leg.sign * xtw[leg.candidate];
        }
        y[k] -= sum;
        self.solve_schur(ipm, &mut y);
        let moved = ipm.p.x_times(&ipm.candidate_vector(&y[..k]));
        let t = y[k];
        let mut out = y;
        out.extend(
            ru.iter()
                .zip(&moved)
                .zip(self.d1.iter().zip(&self.inverse_lambda))
                .map(|((r, m), (d1, il))| (r - d1 * (m + t)) * il),
        );
        out
    }
}

/// Leg values strictly inside their bounds and, where possible, their leg rows: each leg
/// starts at its lower bound plus min(half its range, 1). A row that this start would leave
/// without room first raises the legs that free room in it (a sold option's premium, up to
/// half their range); then the legs that use room are cut to share half of what is left
/// equally. A row that still has no room is left violated (the interior point then starts
/// infeasible on that row only).
fn interior_legs(legs: &[Leg], rows: &[LegRow]) -> Vec<f64> {
    let mut offset: Vec<f64> = legs
        .iter()
        .map(|l| (0.5 * (l.upper - l.lower)).min(1.0))
        .collect();
    for row in rows {
        let room = |offset: &[f64]| {
            let used: f64 = legs
                .iter()
                .zip(&row.coefficients)
                .zip(offset)
                .map(|((l, c), o)| c * (l.lower + if *c < 0.0 { *o } else { 0.0 }))
                .sum();
            row.bound - used
        };
        let freeing = row.coefficients.iter().filter(|c| **c < 0.0).count();
        let short = room(&offset);
        if short <= 0.0 && freeing > 0 {
            let each = (1.0 - 2.0 * short) / freeing as f64;
            for ((o, c), l) in offset.iter_mut().zip(&row.coefficients).zip(legs) {
                if *c < 0.0 {
                    *o = (*o + each / -c).min(0.5 * (l.upper - l.lower));
                }
            }
        }
        let left = room(&offset);
        let using = row.coefficients.iter().filter(|c| **c > 0.0).count();
        if left <= 0.0 || using == 0 {
            continue;
        }
        let share = 0.5 * left / using as f64;
        for (o, c) in offset.iter_mut().zip(&row.coefficients) {
            if *c > 0.0 {
                *o = o.min(share / c);
            }
        }
    }
    legs.iter().zip(offset).map(|(l, o)| l.lower + o).collect()
}

/// Lower Cholesky factor (row-major) of the symmetric `dim`² matrix `a`, each pivot with a
/// tiny ridge relative to its own diagonal entry; `None` if it is not positive definite.
///
/// The ridge must be relative to each row: near the optimum a bound's zᵢ/sᵢ puts 10¹⁵ on
/// one leg's diagonal while t's (the tail paths' weight, which vanishes where VaR is not
/// pinned by a path) falls below 10⁻⁶, and a ridge scaled to the largest diagonal swamps t.
fn cholesky(a: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let mut sum = a[i * dim + j];
            for p in 0..j {
                sum -= l[i * dim + p] * l[j * dim + p];
            }
            if i == j {
                let diagonal = sum + 1e-14 * a[i * dim + i].abs();
                if diagonal <= 0.0 || !diagonal.is_finite() {
                    return None;
                }
                l[i * dim + i] = diagonal.sqrt();
            } else {
                l[i * dim + j] = sum / l[j * dim + j];
            }
        }
    }
    Some(l)
}

/// Solves L·Lᵀ·x = b in place.
fn cholesky_solve(l: &[f64], dim: usize, b: &mut [f64]) {
    for i in 0..dim {
        let mut sum = b[i];
        for p in 0..i {
            sum -= l[i * dim + p] * b[p];
        }
        b[i] = sum / l[i * dim + i];
    }
    for i in (0..dim).rev() {
        let mut sum = b[i];
        for p in i + 1..dim {
            sum -= l[p * dim + i] * b[p];
        }
        b[i] = sum / l[i * dim + i];
    }
}

/// Largest step α ≤ 1 keeping `value + α·step` ≥ 0.
fn step_to_boundary(value: &[f64], step: &[f64]) -> f64 {
    value
        .iter()
        .zip(step)
        .filter(|(_, d)| **d < 0.0)
        .map(|(v, d)| -v / d)
        .fold(1.0, f64::min)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A book long a convex loss of one factor z, hedged by a linear contract (z) and a
    /// costly option (max(z − 0.5, 0)), with a budget and a cost cap that both bind.
    fn program_data(n: usize) -> (Vec<f64>, Vec<f64>, Vec<CandidateTerms>) {
        let z: Vec<f64> = (0..n)
            .map(|i| -3.0 + 6.0 * (i as f64 + 0.5) / n as f64)
            .collect();
        let book: Vec<f64> = z.iter().map(|z| -3.0 * z - 0.5 * z * z).collect();
        let mut x: Vec<f64> = z.clone();
        let call_mean = z.iter().map(|z| (z - 0.5).max(0.0)).sum::<f64>() / n as f64;
        x.extend(z.iter().map(|z| (z - 0.5).max(0.0) - call_mean));
        let terms = vec![
            CandidateTerms {
                buy_cost: 0.01,
                sell_cost: 0.01,
                premium: 0.0,
                lower: -10.0,
                upper: 10.0,
            },
            CandidateTerms {
                buy_cost: 0.2,
                sell_cost: 0.2,
                premium: call_mean,
                lower: 0.0,
                upper: 10.0,
            },
        ];
        (book, x, terms)
    }

    /// The objective c·v + t + w·Σ(lossᵢ − gᵢ·v − t)⁺ of a round's solution.
    fn objective(p: &Scaled, round: &Round) -> f64 {
        let losses = p.losses_with_legs(&round.legs);
        let cost: f64 = p
            .legs
            .iter()
            .zip(&round.legs)
            .map(|(l, v)| l.cost * v)
            .sum();
        cost + round.var
            + p.tail_weight * losses.iter().map(|l| (l - round.var).max(0.0)).sum::<f64>()
    }

    #[test]
    fn a_round_by_clarabel_matches_the_interior_point_with_a_budget_and_a_cap() {
        let (book, x, terms) = program_data(800);
        let program = EsProgram {
            confidence: 0.975,
            book_pnl: &book,
            candidate_pnl: &x,
            terms: &terms,
            budget: Some(0.5),
        };
        let p = Scaled::new(&program);
        let rows = || {
            let mut rows: Vec<LegRow> = p.budget.iter().cloned().collect();
            let costs = p.legs.iter().map(|l| l.cost).collect();
            rows.push(LegRow::new(costs, 0.5 * 0.3 / p.loss_scale));
            rows
        };
        let ipm = p.solve_round(rows()).expect("interior point");
        assert!(!ipm.fell_back);
        let fallback = p.solve_round_by_clarabel(&rows()).expect("clarabel");
        let (a, b) = (objective(&p, &ipm), objective(&p, &fallback));
        assert!(
            (a - b).abs() < 1e-6 * a.abs().max(1.0),
            "objective {a} vs {b}"
        );
        assert!(
            ipm.last_row_price > 0.0,
            "the cap binds: {}",
            ipm.last_row_price
        );
        let price_gap = (ipm.last_row_price - fallback.last_row_price).abs();
        assert!(
            price_gap < 1e-4 * ipm.last_row_price,
            "cap price {} vs {}",
            ipm.last_row_price,
            fallback.last_row_price
        );
        for (leg, v) in p.legs.iter().zip(&fallback.legs) {
            assert!(
                *v >= leg.lower && *v <= leg.upper,
                "{v} outside [{}, {}]",
                leg.lower,
                leg.upper
            );
        }
    }
}
