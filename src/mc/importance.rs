//! Importance sampling for far tails (`run --importance-sampling`): design a proposal from a
//! pilot, simulate weighted paths, and estimate VaR and ES with their standard errors and
//! the variance gain over plain Monte Carlo.
//!
//! 1. **Pilot.** [`PILOT_BLOCKS`] blocks of plain paths from streams of their own (so the
//!    proposal does not depend on the paths it weights). Its VaR at each reported level is a
//!    target loss (aiming at every level, not only the highest, keeps each level's estimator
//!    sampled: under Student-t the 99.9 % and 99.97 % losses lie far apart); its worst
//!    [`DIRECTION_TAIL`] of paths (at least the lowest level's tail, at most
//!    [`MAX_TAIL_PATHS`]) show where the tail lies.
//! 2. **Tail boundary.** Each of those paths, with whitened shock x (x = s(W)·z under
//!    Student-t), is moved along its ray to the nearest point λ·x that loses each target loss
//!    (bisection): the pilot's picture of where the far tail begins, in every direction it
//!    has seen. A path whose ray never reaches the target within
//!    [`crate::stress::reverse::MAX_DISTANCE`] standard deviations is left out.
//! 3. **Design points and coverage.** A boundary point y is covered when the proposal gives it
//!    at least the model's density in the normal metric: p₀ + Σ_k p_k·exp(μ_k·y − |μ_k|²/2)
//!    ≥ 1. Greedily, from the worst pilot path not yet covered, the HL-RF search
//!    ([`crate::stress::reverse::design_shift_from`]) started at its boundary point finds the design
//!    point of its tail region — the most plausible move losing the target — and adds it as a
//!    component (or the boundary point itself, when the search returns a design point already
//!    held) if it covers more boundary points than before, until every boundary point is
//!    covered or tried, or [`MAX_COMPONENTS`] are used (at most 4 × that many searches). A long
//!    book gets one component; a short straddle one per side and more along its curved tail.
//!    When fewer than [`MIN_COVERAGE`] of the boundary points are covered (or the run has
//!    several steps, or the pilot shows no loss), the run falls back to plain Monte Carlo and
//!    says why.
//! 4. **Weighted run.** The defensive mixture of [`crate::mc::proposal`]: weights bounded by 1/p₀.
//!    VaR and ES come from [`var_es_weighted`] (unnormalised weights, unbiased tail mass);
//!    the P&L mean and standard deviation are self-normalised weighted moments (Σw·x/Σw); the
//!    effective sample size is (Σw)²/Σw².
//! 5. **Variance gain** per level, estimated on the weighted paths: for VaR the variance of
//!    the tail indicator a(1 − a) over Var_q(w·1{L ≥ VaR}); for ES Var_p((L − VaR)⁺) (from
//!    the weighted moments) over Var_q(w·(L − VaR)⁺). It is the factor by which plain Monte
//!    Carlo would need more paths for the same standard error.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::input::job::Job;
use crate::mc::proposal::Proposal;
use crate::mc::shocks::t_scale;
use crate::mc::simulation::{PilotDraws, Simulator};
use crate::report::text::{report_context, run_report, RunReport};
use crate::risk::measures::{var_es, var_es_weighted, RiskMeasure};
use crate::stress::reverse::{design_shift_from, loss_of_shift, MAX_DISTANCE};
use crate::stress::scenarios::StressBook;

/// Blocks of plain pilot paths (2,048 each).
pub const PILOT_BLOCKS: u64 = 16;
/// Share of the proposal on the model itself: weights never exceed its inverse.
pub const DEFENSIVE_SHARE: f64 = 0.2;
/// Most shifted components (tail regions and levels) of one proposal.
pub const MAX_COMPONENTS: usize = 16;
/// The pilot's worst fraction of paths whose directions the proposal must cover (or the
/// lowest level's tail, if larger).
pub const DIRECTION_TAIL: f64 = 0.01;
/// Most pilot tail paths (the worst ones) whose directions are followed: bounds the cost of
/// the design on large books.
pub const MAX_TAIL_PATHS: usize = 512;
/// Fraction of the far-tail points that must be covered, else plain Monte Carlo.
pub const MIN_COVERAGE: f64 = 0.9;

/// One shifted component of the proposal (JSON `importance_sampling.components`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentSummary {
    /// Probability of drawing from it.
    pub share: f64,
    /// |μ|: the design point's distance in standard deviations of the model.
    pub shift_norm: f64,
    /// Exponential tilt θ of the chi-square (0 under normal shocks).
    pub chi_square_tilt: f64,
    /// The loss (reporting currency, positive) of the design point's move.
    pub design_loss: f64,
}

/// Variance gain over plain Monte Carlo at one level (JSON `variance_gain`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarianceGain {
    /// Confidence level.
    pub confidence: f64,
    /// Plain variance over importance-sampling variance of the VaR estimator.
    pub var: f64,
    /// The same for the ES estimator.
    pub es: f64,
}

/// What importance sampling did (JSON `importance_sampling`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportanceSampling {
    /// Whether the paths were importance sampled (false: plain Monte Carlo, see `fallback`).
    pub used: bool,
    /// Why plain Monte Carlo was used instead, if it was.
    pub fallback: Option<String>,
    /// Plain pilot paths used to design the proposal.
    pub pilot_paths: usize,
    /// The losses the components aim at: the pilot's VaR at each level (same order).
    pub target_losses: Vec<f64>,
    /// Fraction of the pilot's tail paths covered by a component.
    pub coverage: f64,
    /// Share of the proposal on the model itself.
    pub defensive_share: f64,
    /// The shifted components, one per tail region.
    pub components: Vec<ComponentSummary>,
    /// (Σw)²/Σw²: how many equally weighted paths the weighted sample is worth overall.
    pub effective_sample_size: f64,
    /// Variance gain over plain Monte Carlo at each level.
    pub variance_gain: Vec<VarianceGain>,
}

/// A proposal designed from a pilot, or the reason there is none.
enum Design {
    Mixture {
        proposal: Proposal,
        summary: ImportanceSampling,
    },
    Plain {
        summary: ImportanceSampling,
    },
}

/// Runs `simulator` (one-step, already set up for `job`) with importance sampling when a
/// proposal covering the pilot's tail can be designed, else with plain Monte Carlo (the
/// report says why). Returns the report and the per-path P&L (unweighted values).
pub fn importance_sampled_run(job: &Job, simulator: Simulator) -> Result<(RunReport, Vec<f64>)> {
    let settings = *simulator.settings();
    let levels = &job.scenario.run.confidence;
    match design(job, &simulator)? {
        Design::Plain { summary } => {
            let pnl = simulator.pnl(&|_| {})?;
            let mut report = run_report(job, &settings, &pnl);
            report.importance_sampling = Some(summary);
            Ok((report, pnl))
        }
        Design::Mixture {
            proposal,
            mut summary,
        } => {
            let (pnl, weights) = simulator.with_proposal(proposal)?.weighted_pnl()?;
            let measures = var_es_weighted(&pnl, &weights, levels);
            let (mean, stdev) = weighted_mean_and_stdev(&pnl, &weights);
            summary.effective_sample_size = effective_sample_size(&weights);
            summary.variance_gain = measures
                .iter()
                .map(|m| variance_gain(&pnl, &weights, m))
                .collect();
            let report = RunReport {
                measures,
                pnl_mean: mean,
                pnl_stdev: stdev,
                importance_sampling: Some(summary),
                ..report_context(job, &settings)
            };
            Ok((report, pnl))
        }
    }
}

/// The report of a run that could not be importance sampled, with its reason.
fn plain(reason: String, pilot_paths: usize, target_losses: Vec<f64>) -> Design {
    Design::Plain {
        summary: ImportanceSampling {
            used: false,
            fallback: Some(reason),
            pilot_paths,
            target_losses,
            coverage: 0.0,
            defensive_share: 1.0,
            components: Vec::new(),
            effective_sample_size: 0.0,
            variance_gain: Vec::new(),
        },
    }
}

fn design(job: &Job, simulator: &Simulator) -> Result<Design> {
    let steps = simulator.settings().steps;
    if steps != 1 {
        return Ok(plain(
            format!("importance sampling is defined for one-step runs; this run has {steps} steps"),
            0,
            Vec::new(),
        ));
    }
    let pilot = simulator.pilot(PILOT_BLOCKS)?;
    let n = pilot.pnl.len();
    let levels = &job.scenario.run.confidence;
    let targets: Vec<f64> = var_es(&pilot.pnl, levels).iter().map(|m| m.var).collect();
    if let Some((a, t)) = levels
        .iter()
        .zip(&targets)
        .find(|(_, t)| t.is_nan() || **t <= 0.0)
    {
        return Ok(plain(
            format!("the pilot's VaR at {a} is not a loss ({t:.2})"),
            n,
            targets.clone(),
        ));
    }
    let lowest = job.scenario.run.lowest_level();
    let shocks = effective_shocks(&pilot, job);
    let tail = tail_paths(&pilot.pnl, (1.0 - lowest).max(DIRECTION_TAIL));
    let book = StressBook::new(job);
    let mut by_level: Vec<(f64, f64)> = levels.iter().copied().zip(targets.clone()).collect();
    by_level.sort_by(|a, b| b.0.total_cmp(&a.0));
    let boundary: Vec<(Vec<f64>, f64)> = by_level
        .iter()
        .flat_map(|&(_, target)| {
            let book = &book;
            let shocks = &shocks;
            tail.iter().filter_map(move |&i| {
                boundary_point(job, book, row(shocks, pilot.factors, i), target)
                    .map(|y| (y, target))
            })
        })
        .collect();
    let mut points: Vec<Vec<f64>> = Vec::new();
    let mut covered = vec![false; boundary.len()];
    let mut tried = vec![false; boundary.len()];
    let mut searches = 0;
    while points.len() < MAX_COMPONENTS && searches < 4 * MAX_COMPONENTS {
        searches += 1;
        let Some(next) = (0..boundary.len()).find(|&i| !covered[i] && !tried[i]) else {
            break;
        };
        tried[next] = true;
        let (seed, target) = &boundary[next];
        let found = design_shift_from(job, &book, *target, seed);
        let reached = loss_of_shift(job, &book, &found) >= target * (1.0 - 1e-6);
        let point = if reached && !points.iter().any(|p| same_point(p, &found)) {
            found
        } else {
            seed.clone()
        };
        if points.iter().any(|p| same_point(p, &point)) {
            continue;
        }
        let mut trial = points.clone();
        trial.push(point);
        let now: Vec<bool> = boundary
            .iter()
            .map(|(y, _)| is_covered(y, &trial))
            .collect();
        // a component that covers no more points than before only dilutes the others
        if now.iter().filter(|&&c| c).count() > covered.iter().filter(|&&c| c).count() {
            points = trial;
            covered = now;
        }
    }
    let coverage = covered.iter().filter(|&&c| c).count() as f64 / covered.len().max(1) as f64;
    if boundary.is_empty() || coverage < MIN_COVERAGE {
        return Ok(plain(
            format!(
                "{} tail regions cover only {:.0} % of the {} far-tail points the pilot found \
                 (at least {:.0} % needed)",
                points.len(),
                100.0 * coverage,
                boundary.len(),
                100.0 * MIN_COVERAGE
            ),
            n,
            targets,
        ));
    }
    let components = points
        .iter()
        .map(|p| (norm(p), loss_of_shift(job, &book, p)))
        .collect::<Vec<_>>();
    let proposal = Proposal::new(points, DEFENSIVE_SHARE, job.model.distribution);
    let summary = ImportanceSampling {
        used: true,
        fallback: None,
        pilot_paths: n,
        target_losses: targets,
        coverage,
        defensive_share: proposal.defensive_share(),
        components: proposal
            .components()
            .iter()
            .zip(components)
            .map(|(c, (shift_norm, design_loss))| ComponentSummary {
                share: c.share,
                shift_norm,
                chi_square_tilt: c.tilt,
                design_loss,
            })
            .collect(),
        effective_sample_size: 0.0,
        variance_gain: Vec::new(),
    };
    Ok(Design::Mixture { proposal, summary })
}

/// Each pilot path's shock in whitened, unit-variance space: x = s(W)·z (s = 1 under normal
/// shocks), one row of factors per path.
fn effective_shocks(pilot: &PilotDraws, job: &Job) -> Vec<f64> {
    let k = pilot.factors;
    let mut x = pilot.normals.clone();
    if let crate::input::scenario::Distribution::StudentT { dof } = job.model.distribution {
        for (row, &w) in x.chunks_exact_mut(k).zip(&pilot.chi_squares) {
            let s = t_scale(dof, w);
            row.iter_mut().for_each(|v| *v *= s);
        }
    }
    x
}

/// Indices of the worst ⌈n·mass⌉ paths (largest losses first), at least one and at most
/// [`MAX_TAIL_PATHS`].
fn tail_paths(pnl: &[f64], mass: f64) -> Vec<usize> {
    let count = ((pnl.len() as f64 * mass).ceil() as usize)
        .min(MAX_TAIL_PATHS)
        .clamp(1, pnl.len());
    let mut order: Vec<usize> = (0..pnl.len()).collect();
    order.sort_unstable_by(|&a, &b| pnl[a].total_cmp(&pnl[b]).then(a.cmp(&b)));
    order.truncate(count);
    order
}

fn row(values: &[f64], width: usize, i: usize) -> &[f64] {
    &values[i * width..(i + 1) * width]
}

/// The nearest point λ·x (λ > 0) on the ray of whitened shock `x` whose loss reaches
/// `target_loss`, by doubling then bisection (40 halvings: 1e-12 of the ray); `None` when the ray does not reach
/// it within [`MAX_DISTANCE`] standard deviations.
fn boundary_point(job: &Job, book: &StressBook, x: &[f64], target_loss: f64) -> Option<Vec<f64>> {
    let length = norm(x);
    if length == 0.0 {
        return None;
    }
    let at = |lambda: f64| x.iter().map(|v| v * lambda).collect::<Vec<f64>>();
    let reaches = |lambda: f64| loss_of_shift(job, book, &at(lambda)) >= target_loss;
    let (mut low, mut high) = (0.0, 1.0);
    while !reaches(high) {
        low = high;
        high *= 2.0;
        if high * length > MAX_DISTANCE {
            return None;
        }
    }
    for _ in 0..40 {
        let middle = 0.5 * (low + high);
        if reaches(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(at(high))
}

/// Whether the proposal with equal shares on design points `points` gives boundary point `y`
/// at least the model's density (normal metric): p₀ + Σ p_k·exp(μ_k·y − |μ_k|²/2) ≥ 1.
fn is_covered(y: &[f64], points: &[Vec<f64>]) -> bool {
    let share = (1.0 - DEFENSIVE_SHARE) / points.len().max(1) as f64;
    let density: f64 = points
        .iter()
        .map(|mu| {
            let dot: f64 = y.iter().zip(mu).map(|(a, b)| a * b).sum();
            share * (dot - 0.5 * norm(mu).powi(2)).exp()
        })
        .sum();
    DEFENSIVE_SHARE + density >= 1.0
}

/// Two design points closer than 1 % of their length: the same tail region.
fn same_point(a: &[f64], b: &[f64]) -> bool {
    let distance = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    distance <= 0.01 * norm(a).max(norm(b))
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Self-normalised weighted mean and standard deviation: Σw·x/Σw and √(Σw·(x − m)²/Σw).
fn weighted_mean_and_stdev(pnl: &[f64], weights: &[f64]) -> (f64, f64) {
    let total: f64 = weights.iter().sum();
    let mean = pnl.iter().zip(weights).map(|(p, w)| w * p).sum::<f64>() / total;
    let second = pnl
        .iter()
        .zip(weights)
        .map(|(p, w)| w * (p - mean) * (p - mean))
        .sum::<f64>()
        / total;
    (mean, second.sqrt())
}

/// (Σw)²/Σw².
fn effective_sample_size(weights: &[f64]) -> f64 {
    let (s1, s2) = weights
        .iter()
        .fold((0.0, 0.0), |(a, b), w| (a + w, b + w * w));
    s1 * s1 / s2
}

/// Plain over importance-sampling variance of the VaR and ES estimators at `m`, estimated on
/// the weighted paths.
fn variance_gain(pnl: &[f64], weights: &[f64], m: &RiskMeasure) -> VarianceGain {
    let n = pnl.len() as f64;
    let a = m.confidence;
    let (mut i1, mut i2, mut p1, mut p2, mut q2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&p, &w) in pnl.iter().zip(weights) {
        let loss = -p;
        if loss >= m.var {
            i1 += w;
            i2 += w * w;
        }
        let x = (loss - m.var).max(0.0);
        p1 += w * x;
        p2 += w * x * x;
        q2 += w * w * x * x;
    }
    let variance = |s1: f64, s2: f64| (s2 / n - (s1 / n).powi(2)).max(f64::MIN_POSITIVE);
    VarianceGain {
        confidence: a,
        var: a * (1.0 - a) / variance(i1, i2),
        es: variance(p1, p2) / variance(p1, q2),
    }
}
