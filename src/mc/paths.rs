//! Price and implied-vol paths over the horizon, built from the factor shocks.
//!
//! The horizon of h days is cut into `steps` equal steps of dt = h/steps days. In step j,
//! with shocks e_j drawn fresh for that step,
//!
//! ```text
//! ln iv_{j+1} = ln iv_j + vol_of_vol · √(dt/365) · e_vol
//! ln S_{j+1}  = ln S_j  + drift · dt/365 + spot_vol · (iv_j / iv_0) · √(dt/365) · e_spot
//! ```
//!
//! so a step's price volatility is scaled by the simulated implied-vol level at the start of
//! that step relative to today's: a vol spike widens later price moves. With one step (or a
//! vol of vol of 0) iv_j/iv_0 = 1 and this is exactly the SPEC's one-step model.

use crate::model::factors::FactorModel;
use crate::time::DAYS_PER_YEAR;

/// Where each path ends: per path and per model underlying, ln(S_h/S_0) and iv_h/iv_0.
/// Row-major, one row of `underlyings` values per path.
#[derive(Debug, Clone, Default)]
pub struct HorizonMoves {
    /// Number of model underlyings per row.
    pub underlyings: usize,
    /// ln(S_h / S_0).
    pub log_spot: Vec<f64>,
    /// iv_h / iv_0: the factor by which every implied vol of that underlying is scaled.
    pub vol_ratio: Vec<f64>,
}

impl HorizonMoves {
    /// Sets `paths` rows to "nothing moved" (ln ratio 0, vol ratio 1).
    pub fn reset(&mut self, paths: usize, underlyings: usize) {
        self.underlyings = underlyings;
        self.log_spot.clear();
        self.log_spot.resize(paths * underlyings, 0.0);
        self.vol_ratio.clear();
        self.vol_ratio.resize(paths * underlyings, 1.0);
    }

    /// Number of paths held.
    pub fn paths(&self) -> usize {
        self.log_spot.len() / self.underlyings.max(1)
    }
}

#[derive(Debug, Clone)]
struct StepScales {
    spot_factor: usize,
    vol_factor: Option<usize>,
    /// spot_vol · √(dt/365).
    spot: f64,
    /// vol_of_vol · √(dt/365).
    vol: f64,
    /// drift · dt/365.
    drift: f64,
}

/// Turns each step's shocks into moves of every underlying's spot and implied vol.
#[derive(Debug, Clone)]
pub struct PathBuilder {
    scales: Vec<StepScales>,
    steps: u32,
}

impl PathBuilder {
    /// A builder for `model` over `horizon_days` cut into `steps` steps.
    pub fn new(model: &FactorModel, horizon_days: f64, steps: u32) -> PathBuilder {
        let dt_years = horizon_days / f64::from(steps) / DAYS_PER_YEAR;
        let root_dt = dt_years.sqrt();
        let scales = model
            .underlyings
            .iter()
            .map(|u| StepScales {
                spot_factor: u.spot_factor,
                vol_factor: u.vol_factor,
                spot: u.spot_vol * root_dt,
                vol: u.vol_of_vol * root_dt,
                drift: u.drift * dt_years,
            })
            .collect();
        PathBuilder { scales, steps }
    }

    /// Number of steps per path.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Number of underlyings per path.
    pub fn underlyings(&self) -> usize {
        self.scales.len()
    }

    /// Applies one step: `shocks` holds one row of `factors` shocks per path of `moves`.
    pub fn advance(&self, shocks: &[f64], factors: usize, moves: &mut HorizonMoves) {
        let u = self.scales.len();
        let rows = shocks.chunks_exact(factors);
        let logs = moves.log_spot.chunks_exact_mut(u);
        let vols = moves.vol_ratio.chunks_exact_mut(u);
        for ((e, log_spot), vol_ratio) in rows.zip(logs).zip(vols) {
            for (s, (x, ratio)) in self
                .scales
                .iter()
                .zip(log_spot.iter_mut().zip(vol_ratio.iter_mut()))
            {
                *x += s.drift + s.spot * *ratio * e[s.spot_factor];
                if let Some(v) = s.vol_factor {
                    *ratio *= (s.vol * e[v]).exp();
                }
            }
        }
    }
}
