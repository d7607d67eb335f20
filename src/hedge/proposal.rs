//! `tailrisk hedge`: propose trades, then judge them on paths they were not chosen on.
//!
//! An optimiser's in-sample ES is biased low: the trades fit the noise of the paths they were
//! chosen on. The proposal is therefore optimised on the paths of the run's seed and then
//! evaluated on fresh paths (the check seed), before and after on common random numbers as
//! `whatif` does, with the in-sample figure printed beside the fresh one.
//!
//! Costs (fees and spread) are a sure loss when the trades are made: every ES "after" here
//! includes them; `whatif --trades` on the proposed trades shows the same ES less the cost.

use serde::Serialize;

use crate::book::exposures::{exposures, ExposureRow};
use crate::book::grouping::Grouping;
use crate::book::instrument::Instrument;
use crate::book::positions::{Book, Position};
use crate::error::{Error, Result};
use crate::hedge::candidates::{Candidate, Candidates};
use crate::hedge::scenarios::{simulate, ScenarioMatrix};
use crate::hedge::solver::{solve, CandidateTerms, EsOptimum, EsProgram, Goal, SolveFailure};
use crate::input::job::Job;
use crate::mc::shocks::BLOCK_PATHS;
use crate::mc::simulation::SimulationSettings;
use crate::risk::contributions::{marginals, EntityLosses, TailPlan};
use crate::risk::measures::{change, mean_and_stdev, tail_mass, var_es, RiskMeasure};

/// What the hedge is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeGoal {
    /// The trades of least ES at the level (costs included).
    MinimizeEs,
    /// The cheapest trades whose ES at the level (costs included) is at most this, USD.
    TargetEs(f64),
    /// Zero net delta per underlying, with each underlying's perpetual candidate.
    NeutralizeDelta,
    /// Zero net vega per underlying with its option candidate of most vega per unit, then
    /// zero net delta with its perpetual.
    NeutralizeVega,
}

/// A hedge request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeRequest {
    /// What to optimise or neutralise.
    pub goal: HedgeGoal,
    /// ES confidence level, e.g. 0.975.
    pub level: f64,
    /// Most premium plus costs the trades may spend, USD.
    pub budget: Option<f64>,
    /// The paths the trades are chosen on.
    pub settings: SimulationSettings,
    /// Seed of the fresh paths the trades are judged on (must differ from the run's).
    pub check_seed: u64,
}

/// One proposed trade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HedgeTrade {
    /// The candidate's id.
    pub id: String,
    /// Instrument kind (`perpetual`, `future`, `option`, `spot`).
    pub kind: String,
    /// Underlying coin.
    pub underlying: String,
    /// Signed quantity, rounded to the candidate's lot.
    pub quantity: f64,
    /// The quantity before rounding to the lot: the optimiser's, re-optimised around the
    /// coarse lots already settled.
    pub unrounded_quantity: f64,
    /// Fees and spread paid, USD.
    pub cost: f64,
    /// Premium paid (negative: received), USD: quantity × model value today.
    pub premium: f64,
}

/// A candidate's marginal ES at the proposed hedge: ∂ES/∂quantity (USD per unit), on the
/// fresh paths, with its standard error. Near zero for a candidate traded freely at the
/// optimum (up to its cost); a bound or the budget holds the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarginalEs {
    /// The candidate's id.
    pub id: String,
    /// Quantity proposed.
    pub quantity: f64,
    /// ∂ES/∂quantity, USD per unit.
    pub marginal_es: f64,
    /// Its Monte Carlo standard error.
    pub stderr: f64,
}

/// ES on the paths the trades were chosen on (biased low for the hedged book).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InSample {
    /// The book's ES.
    pub es_before: f64,
    /// ES of book plus the optimiser's trades (costs included), before rounding.
    pub es_optimal: f64,
    /// ES of book plus the rounded trades (costs included).
    pub es_after: f64,
    /// es_after − es_optimal: what rounding to lots cost.
    pub rounding_effect: f64,
    /// Interior-point iterations of the linear program (0 when neutralising).
    pub iterations: usize,
    /// Cutting-plane rounds on which the interior point stalled and Clarabel solved instead
    /// (nearly always 0).
    pub fallback_solves: usize,
    /// Target mode: whether the rounded trades reach the target on these paths (rounding to
    /// lots can leave them above it); `None` otherwise.
    pub target_met: Option<bool>,
}

/// The result of `tailrisk hedge` (JSON keys as in docs/spec.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HedgeProposal {
    /// `minimize-es`, `target-es`, `neutralize-delta` or `neutralize-vega`.
    pub goal: String,
    /// The target ES (target mode), USD.
    pub target_es: Option<f64>,
    /// ES confidence level.
    pub level: f64,
    /// The budget, USD.
    pub budget: Option<f64>,
    /// Paths the trades are chosen on, and again the fresh paths they are judged on.
    pub paths: u64,
    /// Seed of the paths the trades are chosen on.
    pub seed: u64,
    /// Seed of the fresh paths.
    pub check_seed: u64,
    /// Horizon in calendar days.
    pub horizon_days: f64,
    /// Reporting currency (USD).
    pub currency: String,
    /// Candidates considered (count).
    pub candidates: usize,
    /// Non-zero trades, in candidate order.
    pub trades: Vec<HedgeTrade>,
    /// Fees and spread of all trades, USD.
    pub cost: f64,
    /// Net premium plus cost, USD (what `--budget` bounds).
    pub spend: f64,
    /// The book on the fresh paths.
    pub before: RiskMeasure,
    /// The book with the trades on the fresh paths, costs included.
    pub after: RiskMeasure,
    /// after − before, with the standard error of the change (common random numbers).
    pub change: RiskMeasure,
    /// The same ES on the optimisation paths.
    pub in_sample: InSample,
    /// Every candidate's marginal ES at the proposal, on the fresh paths.
    pub marginal_es: Vec<MarginalEs>,
    /// Whether the optimiser's (or the neutral) quantities, before rounding, trade at all.
    #[serde(skip)]
    pub optimum_traded: bool,
    /// The trades as positions (quantity set), in candidate order: the trades CSV.
    #[serde(skip)]
    pub positions: Vec<Position>,
}

/// Proposes the hedge of `request` among `candidates` for the job's book; `progress` is
/// called with the paths of each finished block (both simulations).
pub fn propose_hedge(
    job: &Job,
    candidates: &Candidates,
    request: &HedgeRequest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<HedgeProposal> {
    if job.currency.coin.is_some() {
        return Err(Error::Usage {
            message: format!(
                "hedge reports in USD only (the scenario reports in {}): pass --currency USD or \
                 set [run] currency = \"USD\"",
                job.currency.name
            ),
        });
    }
    if request.check_seed == request.settings.seed {
        return Err(Error::Usage {
            message: "--check-seed must differ from --seed: the trades are judged on fresh paths"
                .to_owned(),
        });
    }
    let neutral = matches!(
        request.goal,
        HedgeGoal::NeutralizeDelta | HedgeGoal::NeutralizeVega
    );
    if let Some(message) = too_few_tail_paths(request.settings.paths, request.level) {
        if !neutral {
            return Err(Error::Usage { message });
        }
    }
    let fit = simulate(job, candidates, request.settings, progress)?;
    let (optimal, iterations, fallback_solves) = match request.goal {
        HedgeGoal::MinimizeEs | HedgeGoal::TargetEs(_) => optimise(&fit, candidates, request)?,
        HedgeGoal::NeutralizeDelta => (neutral_quantities(job, candidates, false)?, 0, 0),
        HedgeGoal::NeutralizeVega => (neutral_quantities(job, candidates, true)?, 0, 0),
    };
    let settled = match request.goal {
        HedgeGoal::MinimizeEs | HedgeGoal::TargetEs(_) => {
            settle_coarse_lots(&optimal, &fit, candidates, request)?
        }
        _ => optimal.clone(),
    };
    let rounded = round_to_lots(&settled, candidates, request.budget, &fit, request.level)?;
    let es_at = |matrix: &ScenarioMatrix, q: &[f64]| {
        var_es(
            &matrix.hedged_pnl(q, total_cost(candidates, q)),
            &[request.level],
        )[0]
        .es
    };
    let in_sample = InSample {
        es_before: es_at(&fit, &vec![0.0; optimal.len()]),
        es_optimal: es_at(&fit, &optimal),
        es_after: es_at(&fit, &rounded),
        rounding_effect: es_at(&fit, &rounded) - es_at(&fit, &optimal),
        iterations,
        fallback_solves,
        target_met: match request.goal {
            HedgeGoal::TargetEs(target) => Some(es_at(&fit, &rounded) <= target * (1.0 + 1e-9)),
            _ => None,
        },
    };
    drop(fit);
    let fresh_settings = SimulationSettings {
        seed: request.check_seed,
        ..request.settings
    };
    let fresh = simulate(job, candidates, fresh_settings, progress)?;
    let cost = total_cost(candidates, &rounded);
    let before_pnl = fresh.book_pnl.clone();
    let after_pnl = fresh.hedged_pnl(&rounded, cost);
    let before = var_es(&before_pnl, &[request.level])[0];
    let after = var_es(&after_pnl, &[request.level])[0];
    let plan = TailPlan::new(&after_pnl, request.level);
    let marginal = marginals(&plan, &CandidateLosses { matrix: &fresh });
    Ok(HedgeProposal {
        goal: goal_name(request.goal).to_owned(),
        target_es: match request.goal {
            HedgeGoal::TargetEs(x) => Some(x),
            _ => None,
        },
        level: request.level,
        budget: request.budget,
        paths: request.settings.paths,
        seed: request.settings.seed,
        check_seed: request.check_seed,
        horizon_days: request.settings.horizon_days,
        currency: job.currency.name.clone(),
        candidates: candidates.list.len(),
        trades: trades(candidates, &rounded, &settled),
        optimum_traded: optimal.iter().any(|&q| q != 0.0),
        cost,
        spend: total_spend(candidates, &rounded),
        change: change(&before_pnl, &after_pnl, &before, &after),
        before,
        after,
        in_sample,
        marginal_es: candidates
            .list
            .iter()
            .zip(&rounded)
            .zip(marginal)
            .map(|((c, &q), m)| MarginalEs {
                id: c.position.id.clone(),
                quantity: q,
                marginal_es: m.es,
                stderr: m.es_stderr,
            })
            .collect(),
        positions: candidates
            .list
            .iter()
            .zip(&rounded)
            .filter(|(_, &q)| q != 0.0)
            .map(|(c, &q)| Position {
                quantity: q,
                ..c.position.clone()
            })
            .collect(),
    })
}

/// Fewest paths beyond VaR the trades may be fitted to: an optimiser given fewer fits their
/// noise (with one tail path it can make that path's loss vanish and call the ES zero).
const MIN_TAIL_PATHS: f64 = 20.0;

/// Why a hedge cannot be fitted to `paths` paths at `level`: their ES tail holds fewer than
/// 20 paths (`MIN_TAIL_PATHS`). `None` when it holds enough.
pub fn too_few_tail_paths(paths: u64, level: f64) -> Option<String> {
    let tail = tail_mass(paths as usize, level).total();
    if tail >= MIN_TAIL_PATHS {
        return None;
    }
    let mut needed = ((MIN_TAIL_PATHS / (1.0 - level)).floor() as u64).saturating_sub(1);
    while tail_mass(needed as usize, level).total() < MIN_TAIL_PATHS {
        needed += 1;
    }
    Some(format!(
        "{paths} paths leave {tail} paths beyond VaR at {level}: a hedge needs at least \
         {MIN_TAIL_PATHS} there; pass --paths {needed} or more"
    ))
}

fn goal_name(goal: HedgeGoal) -> &'static str {
    match goal {
        HedgeGoal::MinimizeEs => "minimize-es",
        HedgeGoal::TargetEs(_) => "target-es",
        HedgeGoal::NeutralizeDelta => "neutralize-delta",
        HedgeGoal::NeutralizeVega => "neutralize-vega",
    }
}

/// The linear program's quantities, iterations and rounds solved by the fallback.
fn optimise(
    fit: &ScenarioMatrix,
    candidates: &Candidates,
    request: &HedgeRequest,
) -> Result<(Vec<f64>, usize, usize)> {
    match solve_with(fit, &candidate_terms(candidates), request) {
        Ok(optimum) => Ok((
            clean(optimum.quantities, fit, candidates),
            optimum.iterations,
            optimum.fallback_solves,
        )),
        Err(failure) => Err(explain(failure, request)),
    }
}

/// Each candidate's costs and bounds for the linear program.
fn candidate_terms(candidates: &Candidates) -> Vec<CandidateTerms> {
    candidates
        .list
        .iter()
        .map(|c| CandidateTerms {
            buy_cost: c.buy_cost,
            sell_cost: c.sell_cost,
            premium: c.unit_value,
            lower: c.min_quantity,
            upper: c.max_quantity,
        })
        .collect()
}

/// The request's linear program on the paths `fit` under `terms`, solved.
fn solve_with(
    fit: &ScenarioMatrix,
    terms: &[CandidateTerms],
    request: &HedgeRequest,
) -> std::result::Result<EsOptimum, SolveFailure> {
    let program = EsProgram {
        confidence: request.level,
        book_pnl: &fit.book_pnl,
        candidate_pnl: &fit.candidate_pnl,
        terms,
        budget: request.budget,
    };
    let goal = match request.goal {
        HedgeGoal::TargetEs(x) => Goal::ReachEs(x),
        _ => Goal::MinimizeEs,
    };
    solve(&program, goal)
}

/// Most candidates [`settle_coarse_lots`] fixes by re-solving.
const MAX_SETTLED_LOTS: usize = 8;

/// A rounding effect below this fraction of the hedged ES's standard error is immaterial.
const MATERIAL_ROUNDING: f64 = 0.05;

/// Settles the coarsest lots by re-optimising around them, before the rest are rounded to
/// the nearest lot. Rounding one coarse lot (a CME future of 5 BTC) to nearest moves the ES
/// by more than the other candidates could have made up for. While rounding to the nearest
/// lots would cost materially (raise the in-sample ES by more than [`MATERIAL_ROUNDING`] of
/// its standard error, or in target mode leave it above the target), the unsettled candidate
/// whose rounding moves the P&L most (distance to its nearest lot × the spread of its P&L
/// per unit) is fixed at the lot below and, in turn, the lot above its quantity, the program
/// is re-solved for the others under each, and the better is kept (least ES; in target mode
/// least cost among those reaching the target). Up to [`MAX_SETTLED_LOTS`] candidates, two
/// solves each.
fn settle_coarse_lots(
    optimal: &[f64],
    fit: &ScenarioMatrix,
    candidates: &Candidates,
    request: &HedgeRequest,
) -> Result<Vec<f64>> {
    let mut terms = candidate_terms(candidates);
    let mut current = optimal.to_vec();
    let mut settled = vec![false; candidates.list.len()];
    for _ in 0..MAX_SETTLED_LOTS {
        if !rounding_is_material(&current, fit, candidates, request) {
            break;
        }
        let Some(j) = worst_rounded(&current, &settled, fit, candidates) else {
            break;
        };
        settled[j] = true;
        match best_fixed_lot(j, &terms, &current, fit, candidates, request)? {
            Some((fixed_terms, quantities)) => {
                terms = fixed_terms;
                current = quantities;
            }
            // Neither lot admits a solution: the nearest lot, held there for the re-solves
            // that follow.
            None => {
                let nearest = nearest_lots(&current, candidates)[j];
                (terms[j].lower, terms[j].upper) = (nearest, nearest);
                current[j] = nearest;
            }
        }
    }
    Ok(current)
}

/// Whether rounding `quantities` to the nearest lots raises the in-sample ES by more than
/// [`MATERIAL_ROUNDING`] of its standard error, or in target mode leaves it above the
/// target.
fn rounding_is_material(
    quantities: &[f64],
    fit: &ScenarioMatrix,
    candidates: &Candidates,
    request: &HedgeRequest,
) -> bool {
    let hedged = |q: &[f64]| {
        var_es(
            &fit.hedged_pnl(q, total_cost(candidates, q)),
            &[request.level],
        )[0]
    };
    let now = hedged(quantities);
    let rounded = hedged(&nearest_lots(quantities, candidates));
    let limit = match request.goal {
        HedgeGoal::TargetEs(target) => target.max(now.es),
        _ => now.es + MATERIAL_ROUNDING * now.es_stderr,
    };
    rounded.es > limit
}

/// The unsettled candidate off its lot whose rounding to the nearest lot moves the P&L most
/// (distance × spread of its P&L per unit on `fit`).
fn worst_rounded(
    quantities: &[f64],
    settled: &[bool],
    fit: &ScenarioMatrix,
    candidates: &Candidates,
) -> Option<usize> {
    let nearest = nearest_lots(quantities, candidates);
    (0..quantities.len())
        .filter(|&j| !settled[j] && nearest[j] != quantities[j])
        .map(|j| {
            let moved = (nearest[j] - quantities[j]).abs() * mean_and_stdev(fit.column(j)).1;
            (j, moved)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(j, _)| j)
}

/// Candidate `j` fixed at the lot below and at the lot above its quantity in `current`,
/// the program re-solved under `terms` for the others: the better (least ES; in target mode
/// least cost), as its terms and quantities. `None` when neither fixing admits a solution
/// (an infeasible budget, an unreachable target).
fn best_fixed_lot(
    j: usize,
    terms: &[CandidateTerms],
    current: &[f64],
    fit: &ScenarioMatrix,
    candidates: &Candidates,
    request: &HedgeRequest,
) -> Result<Option<(Vec<CandidateTerms>, Vec<f64>)>> {
    let c = &candidates.list[j];
    let Some(lot) = c.lot else { return Ok(None) };
    let below = lot_inside_bounds((current[j] / lot).floor() * lot, lot, c);
    let above = lot_inside_bounds((current[j] / lot).ceil() * lot, lot, c);
    let mut best: Option<(f64, Vec<CandidateTerms>, Vec<f64>)> = None;
    for fixed in [below, above] {
        let mut trial = terms.to_vec();
        (trial[j].lower, trial[j].upper) = (fixed, fixed);
        let optimum = match solve_with(fit, &trial, request) {
            Ok(optimum) => optimum,
            Err(SolveFailure::Infeasible | SolveFailure::TargetOutOfReach { .. }) => continue,
            Err(failure) => return Err(explain(failure, request)),
        };
        let score = match request.goal {
            HedgeGoal::TargetEs(_) => optimum.cost,
            _ => optimum.es,
        };
        if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
            let mut quantities = clean(optimum.quantities, fit, candidates);
            quantities[j] = fixed;
            best = Some((score, trial, quantities));
        }
    }
    Ok(best.map(|(_, terms, quantities)| (terms, quantities)))
}

/// Quantities whose P&L (quantity × spread of the candidate's P&L per unit on `fit`) is below
/// a billionth of the book's P&L spread are rounding noise of the interior point: zero
/// (where zero lies inside the candidate's bounds).
fn clean(mut quantities: Vec<f64>, fit: &ScenarioMatrix, candidates: &Candidates) -> Vec<f64> {
    let book = mean_and_stdev(&fit.book_pnl).1.max(f64::MIN_POSITIVE);
    for (j, (q, c)) in quantities.iter_mut().zip(&candidates.list).enumerate() {
        let noise = q.abs() * mean_and_stdev(fit.column(j)).1 <= 1e-9 * book;
        if noise && c.min_quantity <= 0.0 && c.max_quantity >= 0.0 {
            *q = 0.0;
        }
    }
    quantities
}

fn explain(failure: SolveFailure, request: &HedgeRequest) -> Error {
    let message =
        match failure {
            SolveFailure::TargetOutOfReach { least_es } => {
                format!(
            "no trades within the candidates' bounds{} reach ES {} at {}: the least ES they \
             reach is {least_es:.2}",
            if request.budget.is_some() { " and the budget" } else { "" },
            match request.goal {
                HedgeGoal::TargetEs(x) => format!("{x:.2}"),
                _ => String::new(),
            },
            request.level
        )
            }
            SolveFailure::Infeasible => "the candidates' bounds and the budget admit no trades: \
                 check min_quantity / max_quantity (a forced trade the budget cannot pay for, or \
                 an astronomical one)"
                .to_owned(),
            SolveFailure::Unbounded => "ES falls without bound: a candidate gains on nearly every \
             simulated path; give it min_quantity / max_quantity"
                .to_owned(),
            SolveFailure::NotConverged => {
                "the linear program did not converge; try more paths or fewer, less collinear \
             candidates"
                    .to_owned()
            }
        };
    Error::Usage { message }
}

/// Rounds each quantity to its candidate's lot (nearest, inside the bounds). If the rounded
/// trades then spend more than the budget, one-lot moves (either way, inside the bounds) are
/// taken one at a time, each the move that saves spend at the least increase of ES on the
/// optimisation paths `fit`, until the trades fit the budget or no move saves spend.
fn round_to_lots(
    quantities: &[f64],
    candidates: &Candidates,
    budget: Option<f64>,
    fit: &ScenarioMatrix,
    level: f64,
) -> Result<Vec<f64>> {
    let mut rounded = nearest_lots(quantities, candidates);
    let Some(budget) = budget else {
        return Ok(rounded);
    };
    // Lots are moved until the budget holds; the solver's own quantities may exceed it by
    // its tolerance (about 10⁻⁹ of the loss spread: tens of micro-USD), which BUDGET_SLACK
    // allows.
    let es_of = |q: &[f64]| var_es(&fit.hedged_pnl(q, total_cost(candidates, q)), &[level])[0].es;
    let rounding_fits = |q: &[f64]| total_spend(candidates, q) <= budget + 1e-9 * budget.abs();
    for _ in 0..MAX_BUDGET_MOVES {
        if rounding_fits(&rounded) || rounded == quantities {
            break;
        }
        let es = es_of(&rounded);
        let mut best: Option<(f64, usize, f64)> = None;
        for (j, c) in candidates.list.iter().enumerate() {
            let Some(lot) = c.lot else { continue };
            for step in [-1.0, 1.0] {
                let moved = ((rounded[j] / lot).round() + step) * lot;
                if moved < c.min_quantity || moved > c.max_quantity {
                    continue;
                }
                let saved = spend_of(c, rounded[j]) - spend_of(c, moved);
                if saved <= 0.0 {
                    continue;
                }
                let mut trial = rounded.clone();
                trial[j] = moved;
                let price = (es_of(&trial) - es) / saved;
                if best.is_none_or(|(p, _, _)| price < p) {
                    best = Some((price, j, moved));
                }
            }
        }
        let Some((_, j, moved)) = best else { break };
        rounded[j] = moved;
    }
    let spend = total_spend(candidates, &rounded);
    if spend > budget + BUDGET_SLACK + 1e-9 * budget.abs() {
        return Err(Error::Usage {
            message: format!(
                "rounded to lots the trades spend {spend:.2} USD, above the budget of {budget:.2}; \
                 raise the budget or make the lots finer"
            ),
        });
    }
    Ok(rounded)
}

/// How far (USD) the solver's unrounded trades may spend over the budget: half a cent,
/// below what any venue charges (its tolerance is tens of micro-USD).
const BUDGET_SLACK: f64 = 0.005;

/// One-lot moves the budget repair after rounding may take.
const MAX_BUDGET_MOVES: usize = 1_000;

/// Each quantity at its candidate's nearest lot inside the bounds (no lot: unchanged).
fn nearest_lots(quantities: &[f64], candidates: &Candidates) -> Vec<f64> {
    quantities
        .iter()
        .zip(&candidates.list)
        .map(|(&q, c)| match c.lot {
            Some(lot) => lot_inside_bounds((q / lot).round() * lot, lot, c) + 0.0,
            None => q,
        })
        .collect()
}

/// A multiple of `lot` at or inside the candidate's bounds, nearest `q`.
fn lot_inside_bounds(q: f64, lot: f64, c: &Candidate) -> f64 {
    if q > c.max_quantity {
        (c.max_quantity / lot).floor() * lot
    } else if q < c.min_quantity {
        (c.min_quantity / lot).ceil() * lot
    } else {
        q
    }
}

fn cost_of(c: &Candidate, q: f64) -> f64 {
    let cost = if q >= 0.0 {
        q * c.buy_cost
    } else {
        -q * c.sell_cost
    };
    cost + 0.0
}

fn spend_of(c: &Candidate, q: f64) -> f64 {
    q * c.unit_value + cost_of(c, q) + 0.0
}

fn total_cost(candidates: &Candidates, q: &[f64]) -> f64 {
    candidates
        .list
        .iter()
        .zip(q)
        .map(|(c, &q)| cost_of(c, q))
        .sum()
}

fn total_spend(candidates: &Candidates, q: &[f64]) -> f64 {
    candidates
        .list
        .iter()
        .zip(q)
        .map(|(c, &q)| spend_of(c, q))
        .sum()
}

fn trades(candidates: &Candidates, rounded: &[f64], optimal: &[f64]) -> Vec<HedgeTrade> {
    candidates
        .list
        .iter()
        .zip(rounded.iter().zip(optimal))
        .filter(|(_, (&q, _))| q != 0.0)
        .map(|(c, (&q, &unrounded))| HedgeTrade {
            id: c.position.id.clone(),
            kind: c.position.instrument.kind_name().to_owned(),
            underlying: c.position.underlying.clone(),
            quantity: q,
            unrounded_quantity: unrounded,
            cost: cost_of(c, q),
            premium: q * c.unit_value + 0.0,
        })
        .collect()
}

/// Candidates' losses per unit on the fresh paths, for the marginal ES.
struct CandidateLosses<'a> {
    matrix: &'a ScenarioMatrix,
}

impl EntityLosses for CandidateLosses<'_> {
    fn entity_count(&self) -> usize {
        self.matrix.candidates
    }

    fn visit_block(
        &self,
        block: u64,
        wanted: &dyn Fn(u64) -> bool,
        visit: &mut dyn FnMut(u64, &[f64]),
    ) {
        let n = self.matrix.paths() as u64;
        let start = block * BLOCK_PATHS as u64;
        let mut losses = vec![0.0; self.matrix.candidates];
        for path in start..(start + BLOCK_PATHS as u64).min(n) {
            if !wanted(path) {
                continue;
            }
            for (j, loss) in losses.iter_mut().enumerate() {
                *loss = -self.matrix.column(j)[path as usize];
            }
            visit(path, &losses);
        }
    }
}

/// Quantities that zero the book's net delta per underlying (with the perpetual candidate
/// of each), after zeroing its net vega with the option candidate of most vega per unit
/// when `vega` is set.
fn neutral_quantities(job: &Job, candidates: &Candidates, vega: bool) -> Result<Vec<f64>> {
    let book_rows = underlying_rows(job, &job.book)?;
    let mut quantities = vec![0.0; candidates.list.len()];
    let unit_rows: Vec<ExposureRow> = candidates
        .list
        .iter()
        .map(|c| {
            let single = Book {
                file: job.book.file.clone(),
                positions: vec![c.position.clone()],
            };
            underlying_rows(job, &single).and_then(|rows| {
                rows.into_iter().next().ok_or_else(|| Error::Usage {
                    message: format!("candidate {} has no underlying exposure", c.position.id),
                })
            })
        })
        .collect::<Result<_>>()?;
    for row in &book_rows {
        let of_underlying = |kind: fn(&Instrument) -> bool| {
            candidates
                .list
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.position.underlying == row.underlying && kind(&c.position.instrument)
                })
                .map(|(j, _)| j)
                .collect::<Vec<usize>>()
        };
        let mut delta = row.delta;
        if vega && row.vega != 0.0 {
            let options = of_underlying(|i| matches!(i, Instrument::Option(_)));
            let best = options
                .into_iter()
                .filter(|&j| unit_rows[j].vega != 0.0)
                .max_by(|&a, &b| unit_rows[a].vega.abs().total_cmp(&unit_rows[b].vega.abs()))
                .ok_or_else(|| missing(candidates, &row.underlying, "option with vega"))?;
            quantities[best] = -row.vega / unit_rows[best].vega;
            delta += quantities[best] * unit_rows[best].delta;
        }
        if delta != 0.0 {
            let perpetual = of_underlying(|i| matches!(i, Instrument::Perpetual))
                .into_iter()
                .find(|&j| unit_rows[j].delta != 0.0)
                .ok_or_else(|| missing(candidates, &row.underlying, "perpetual"))?;
            quantities[perpetual] = -delta / unit_rows[perpetual].delta;
        }
    }
    for (c, &q) in candidates.list.iter().zip(&quantities) {
        if q < c.min_quantity || q > c.max_quantity {
            return Err(Error::Usage {
                message: format!(
                    "the neutral quantity {q:.6} of {} lies outside its bounds [{}, {}]",
                    c.position.id, c.min_quantity, c.max_quantity
                ),
            });
        }
    }
    Ok(quantities)
}

fn missing(candidates: &Candidates, underlying: &str, what: &str) -> Error {
    let origin = candidates
        .file
        .as_ref()
        .map_or("the default candidates".to_owned(), |f| {
            f.display().to_string()
        });
    Error::Usage {
        message: format!("cannot neutralise {underlying}: {origin} has no {what} on {underlying}"),
    }
}

/// The exposure rows by underlying of `book` netted under the job's market and model.
fn underlying_rows(job: &Job, book: &Book) -> Result<Vec<ExposureRow>> {
    let netted = job.net(book)?;
    Ok(exposures(book, &netted)
        .into_iter()
        .filter(|r| {
            r.group == Grouping::Underlying
                && netted.underlyings.iter().any(|u| u.name == r.underlying)
        })
        .collect())
}
