//! Reverse stress: the most plausible joint move of the model's factors whose loss reaches a
//! given amount.
//!
//! Plausibility is the Mahalanobis distance of the factor shock e under the model's
//! correlation C (the shocks have unit variance): β = √(eᵀC⁻¹e) = |w| with e = L·w. The
//! search minimises |w| subject to loss(w) ≥ LOSS with the Hasofer–Lind–Rackwitz–Fiessler
//! iteration of structural reliability (the design point of FORM): at w_k, with
//! g(w) = loss(w) − LOSS and its gradient ∇g (central differences),
//! w_{k+1} = ((∇g·w_k − g(w_k))/|∇g|²)·∇g, halving the step while it does not bring g closer
//! to 0. A shock e moves one step of the run's horizon h: ln S moves by
//! spot_vol·√(h/365)·e_spot (plus drift), ln iv by vol_of_vol·√(h/365)·e_vol (each pillar's
//! ln ATM vol by its own vol of vol and shock, a skew by skew_vol·√(h/365)·e_skew).
//!
//! The move's plausibility is reported as β and as the probability that the shock's
//! projection on the move's direction exceeds β: Φ(−β) under normal shocks, the
//! unit-variance Student-t tail under a Student-t model (the FORM approximation to the
//! probability of a loss at least this large).

use serde::Serialize;

use crate::input::job::Job;
use crate::input::scenario::Distribution;
use crate::mc::shocks::unit_t_tail;
use crate::model::factors::{interpolated, REFERENCE_TENOR_DAYS};
use crate::pricing::black_scholes::norm_cdf;
use crate::stress::scenarios::{FactorMove, StressBook, StressResult};
use crate::time::DAYS_PER_YEAR;

/// Largest distance searched, in standard deviations.
pub const MAX_DISTANCE: f64 = 50.0;
const MAX_ITERATIONS: usize = 200;
const GRADIENT_STEP: f64 = 1e-5;

/// The result of `tailrisk stress --reverse LOSS` (JSON `reverse`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReverseStress {
    /// The loss asked for (positive).
    pub target_loss: f64,
    /// Whether a move within [`MAX_DISTANCE`] reaches it.
    pub reached: bool,
    /// The loss of the move found (positive = loss).
    pub loss: f64,
    /// Mahalanobis distance β of the move, in standard deviations of the model.
    pub mahalanobis_distance: f64,
    /// Φ(−β).
    pub probability_normal: f64,
    /// The same tail under the model's shock distribution (= `probability_normal` for a
    /// normal model).
    pub probability_model: f64,
    /// The factor shocks e (unit-variance), by factor name.
    pub shocks: Vec<(String, f64)>,
    /// The move as a stress scenario: relative moves, P&L and breakdown.
    pub scenario: StressResult,
}

/// Maps whitened shocks w to factor moves over the horizon.
struct ShockMap<'a> {
    job: &'a Job,
    scale: f64,
}

impl ShockMap<'_> {
    /// The map of `job`: one step of its horizon.
    fn of(job: &Job) -> ShockMap<'_> {
        ShockMap {
            job,
            scale: (job.scenario.run.horizon_days / DAYS_PER_YEAR).sqrt(),
        }
    }

    fn factor_move(&self, w: &[f64]) -> FactorMove {
        let model = &self.job.model;
        let e = self.shocks(w);
        let years = self.job.scenario.run.horizon_days / DAYS_PER_YEAR;
        let mut m = FactorMove::none(model);
        for (i, u) in model.underlyings.iter().enumerate() {
            m.spot[i] = (u.drift * years + u.spot_vol * self.scale * e[u.spot_factor]).exp_m1();
            if let Some(v) = u.vol_factor {
                m.vol[i] = (u.vol_of_vol * self.scale * e[v]).exp_m1();
            }
            for (j, p) in u.pillars.iter().enumerate() {
                m.surface[u.surface_offset + j] = p.vol_of_vol * self.scale * e[p.factor];
            }
            for (factor, slot) in [(&u.skew, u.skew_slot()), (&u.basis, u.basis_slot())] {
                if let (Some(k), Some(slot)) = (factor, slot) {
                    m.surface[slot] = k.vol * self.scale * e[k.factor];
                }
            }
            if let (Some(f), Some(slot)) = (&u.funding, u.funding_slot()) {
                if let Some(factor) = f.factor {
                    m.surface[slot] = f.vol * self.scale * e[factor];
                }
            }
            if let Some(weights) = u.pillar_weights(REFERENCE_TENOR_DAYS) {
                m.vol[i] = interpolated(&weights, &m.surface).exp_m1();
            }
        }
        m
    }

    /// e = L·w.
    fn shocks(&self, w: &[f64]) -> Vec<f64> {
        let l = &self.job.model.cholesky;
        (0..w.len())
            .map(|i| (0..=i).map(|j| l[(i, j)] * w[j]).sum())
            .collect()
    }
}

/// Finds the most plausible move losing at least `target_loss`.
pub fn reverse_stress(job: &Job, book: &StressBook, target_loss: f64) -> ReverseStress {
    let map = ShockMap::of(job);
    let w = design_shift(job, book, target_loss);
    let beta = norm(&w);
    let m = map.factor_move(&w);
    let mut scenario = book.evaluate("reverse stress", &m, None);
    scenario.description = Some(format!(
        "most plausible move losing {target_loss:.0}: {beta:.2} standard deviations"
    ));
    let e = map.shocks(&w);
    ReverseStress {
        target_loss,
        reached: -scenario.pnl >= target_loss * (1.0 - 1e-6) && beta < MAX_DISTANCE,
        loss: -scenario.pnl,
        mahalanobis_distance: beta,
        probability_normal: norm_cdf(-beta),
        probability_model: match job.model.distribution {
            Distribution::Normal => norm_cdf(-beta),
            Distribution::StudentT { dof } => unit_t_tail(beta, dof),
        },
        shocks: job.model.factor_names.iter().cloned().zip(e).collect(),
        scenario,
    }
}

/// The design point w (whitened shocks) of the most plausible move losing `target_loss`,
/// searched from w = 0.
pub fn design_shift(job: &Job, book: &StressBook, target_loss: f64) -> Vec<f64> {
    design_shift_from(job, book, target_loss, &vec![0.0; job.model.factor_count()])
}

/// The design point nearest `start` (whitened, unit-variance shocks) of the moves losing
/// `target_loss`: the HL-RF iteration started there, so that a book losing in several
/// directions (a short straddle loses on large up and down moves) yields the design point of
/// the tail region `start` lies in. Returns it with its loss (positive = loss).
pub fn design_shift_from(
    job: &Job,
    book: &StressBook,
    target_loss: f64,
    start: &[f64],
) -> Vec<f64> {
    let map = ShockMap::of(job);
    let g = |w: &[f64]| -book.pnl(&map.factor_move(w)) - target_loss;
    design_point(&g, start, target_loss)
}

/// The loss (positive) of whitened shocks `w` over one step of the run's horizon.
pub fn loss_of_shift(job: &Job, book: &StressBook, w: &[f64]) -> f64 {
    let map = ShockMap::of(job);
    -book.pnl(&map.factor_move(w))
}

/// HL-RF iteration from `start` for the constraint g(w) = 0 (g < 0 is safe).
fn design_point(g: &dyn Fn(&[f64]) -> f64, start: &[f64], scale: f64) -> Vec<f64> {
    let tolerance = 1e-9 * scale.abs().max(1.0);
    let mut w = start.to_vec();
    let mut gw = g(&w);
    for _ in 0..MAX_ITERATIONS {
        let grad = gradient(g, &w);
        let grad_sq: f64 = grad.iter().map(|x| x * x).sum();
        if grad_sq == 0.0 {
            break;
        }
        let along = grad.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() - gw;
        let target: Vec<f64> = grad.iter().map(|x| x * along / grad_sq).collect();
        let (next, g_next) = damped_step(g, &w, &target, gw);
        let moved = next
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        w = next;
        gw = g_next;
        if norm(&w) > MAX_DISTANCE || (moved < 1e-10 && gw.abs() < tolerance) {
            break;
        }
    }
    w
}

/// The full HL-RF step towards `target`, halved until |g| does not grow (at most 30 times).
fn damped_step(g: &dyn Fn(&[f64]) -> f64, w: &[f64], target: &[f64], gw: f64) -> (Vec<f64>, f64) {
    let mut fraction = 1.0;
    loop {
        let next: Vec<f64> = w
            .iter()
            .zip(target)
            .map(|(a, b)| a + fraction * (b - a))
            .collect();
        let g_next = g(&next);
        if g_next.abs() <= gw.abs() || fraction < 1e-9 || g_next >= 0.0 && gw < 0.0 {
            return (next, g_next);
        }
        fraction *= 0.5;
    }
}

fn gradient(g: &dyn Fn(&[f64]) -> f64, w: &[f64]) -> Vec<f64> {
    let mut x = w.to_vec();
    (0..w.len())
        .map(|i| {
            let step = GRADIENT_STEP * (1.0 + w[i].abs());
            x[i] = w[i] + step;
            let up = g(&x);
            x[i] = w[i] - step;
            let down = g(&x);
            x[i] = w[i];
            (up - down) / (2.0 * step)
        })
        .collect()
}

fn norm(w: &[f64]) -> f64 {
    w.iter().map(|x| x * x).sum::<f64>().sqrt()
}
