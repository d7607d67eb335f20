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
//!
//! An underlying with vol pillars moves each pillar's log ATM vol the same way with its own
//! vol of vol and factor, and its skew factor (if any) arithmetically by
//! skew_vol · √(dt/365) · e_skew; its iv_j/iv_0 is then the 30-day vol level
//! ([`REFERENCE_TENOR_DAYS`], interpolated between pillars like an option's).
//!
//! The futures basis moves arithmetically by basis_vol · √(dt/365) · e_basis; the funding rate
//! by funding_vol · √(dt/365) · e_funding, and each step accrues funding at the step's end
//! rate and price ([`FundingFactor`]). A stablecoin's de-peg shock is the sum of its steps'
//! shocks over √steps; its price move follows from it at the last step ([`JumpFactor`]).

use crate::input::scenario::Distribution;
use crate::mc::shocks::{shock_cdf, shock_quantile};
use crate::model::factors::{
    interpolated, FactorModel, FundingFactor, JumpFactor, REFERENCE_TENOR_DAYS,
};
use crate::time::DAYS_PER_YEAR;

/// Where each path ends: per path and per model underlying, ln(S_h/S_0) and iv_h/iv_0, and
/// the path's surface row (pillar log-vol moves and skew moves, see
/// [`crate::model::factors`]). The surface rows are row-major, one row per path; the spot
/// and vol moves are row-major too as the simulation writes them ([`HorizonMoves::reset`]),
/// or column-major, one column per underlying, as a cache reads them
/// ([`HorizonMoves::reset_columns`]).
#[derive(Debug, Clone, Default)]
pub struct HorizonMoves {
    /// Number of model underlyings per row.
    pub underlyings: usize,
    /// ln(S_h / S_0), laid out as [`HorizonMoves::by_columns`] says.
    pub log_spot: Vec<f64>,
    /// iv_h / iv_0: the factor by which every implied vol of that underlying is scaled (its
    /// 30-day vol level when it has pillars); laid out like `log_spot`.
    pub vol_ratio: Vec<f64>,
    /// Whether `log_spot` and `vol_ratio` hold one column of paths per underlying instead of
    /// one row of underlyings per path.
    by_columns: bool,
    /// Numbers per path of the surface rows ([`FactorModel::surface_width`]).
    pub surface_width: usize,
    /// Pillar moves (ln of the ATM vol ratio) and skew moves (change of the 30-day slope).
    pub surface: Vec<f64>,
    /// Number of paths held (also when a row has no numbers).
    rows: usize,
}

/// One path's moves, as revaluation reads them.
#[derive(Debug, Clone, Copy)]
pub struct PathMove<'a> {
    /// From this path's ln(S_h / S_0) of the first model underlying on.
    log_spot: &'a [f64],
    /// From this path's iv_h / iv_0 of the first model underlying on.
    vol_ratio: &'a [f64],
    /// Distance from one underlying's number to the next's in `log_spot` and `vol_ratio`.
    stride: usize,
    /// The path's surface row (empty without pillar or skew factors).
    pub surface: &'a [f64],
}

impl<'a> PathMove<'a> {
    /// A path's moves from its rows: per model underlying ln(S_h/S_0) and iv_h/iv_0, and its
    /// surface row.
    pub fn new(log_spot: &'a [f64], vol_ratio: &'a [f64], surface: &'a [f64]) -> PathMove<'a> {
        PathMove {
            log_spot,
            vol_ratio,
            stride: 1,
            surface,
        }
    }

    /// ln(S_h / S_0) of model underlying `u`.
    #[inline]
    pub fn log_spot(&self, u: usize) -> f64 {
        self.log_spot[u * self.stride]
    }

    /// iv_h / iv_0 of model underlying `u`.
    #[inline]
    pub fn vol_ratio(&self, u: usize) -> f64 {
        self.vol_ratio[u * self.stride]
    }
}

impl HorizonMoves {
    /// Sets `paths` rows to "nothing moved" (ln ratio 0, vol ratio 1, surface moves 0).
    pub fn reset(&mut self, paths: usize, underlyings: usize, surface_width: usize) {
        self.by_columns = false;
        self.rows = paths;
        self.underlyings = underlyings;
        self.log_spot.clear();
        self.log_spot.resize(paths * underlyings, 0.0);
        self.vol_ratio.clear();
        self.vol_ratio.resize(paths * underlyings, 1.0);
        self.surface_width = surface_width;
        self.surface.clear();
        self.surface.resize(paths * surface_width, 0.0);
    }

    /// [`HorizonMoves::reset`] with the spot and vol moves column-major: column u of
    /// `log_spot` and `vol_ratio` is [`HorizonMoves::column_range`]`(u)`.
    pub fn reset_columns(&mut self, paths: usize, underlyings: usize, surface_width: usize) {
        self.reset(paths, underlyings, surface_width);
        self.by_columns = true;
    }

    /// Whether the spot and vol moves are column-major ([`HorizonMoves::reset_columns`]).
    pub fn by_columns(&self) -> bool {
        self.by_columns
    }

    /// Where underlying `u`'s column lies in `log_spot` and `vol_ratio` when they are
    /// column-major.
    pub fn column_range(&self, u: usize) -> std::ops::Range<usize> {
        u * self.rows..(u + 1) * self.rows
    }

    /// Number of paths held.
    pub fn paths(&self) -> usize {
        self.rows
    }

    /// The moves of path `i`.
    #[inline]
    pub fn row(&self, i: usize) -> PathMove<'_> {
        let (u, w) = (self.underlyings, self.surface_width);
        let surface = &self.surface[i * w..(i + 1) * w];
        if self.by_columns {
            // empty when no underlying is held
            PathMove {
                log_spot: self.log_spot.get(i..).unwrap_or_default(),
                vol_ratio: self.vol_ratio.get(i..).unwrap_or_default(),
                stride: self.rows,
                surface,
            }
        } else {
            PathMove::new(
                &self.log_spot[i * u..(i + 1) * u],
                &self.vol_ratio[i * u..(i + 1) * u],
                surface,
            )
        }
    }

    /// The moves of paths `rows` only, in that order.
    pub fn subset(&self, rows: &[usize]) -> HorizonMoves {
        let (u, w) = (self.underlyings, self.surface_width);
        let gather = |values: &[f64], width: usize| -> Vec<f64> {
            rows.iter()
                .flat_map(|&i| &values[i * width..(i + 1) * width])
                .copied()
                .collect()
        };
        let (log_spot, vol_ratio) = if self.by_columns {
            let transposed = |values: &[f64]| -> Vec<f64> {
                rows.iter()
                    .flat_map(|&i| (0..u).map(move |j| values[j * self.rows + i]))
                    .collect()
            };
            (transposed(&self.log_spot), transposed(&self.vol_ratio))
        } else {
            (gather(&self.log_spot, u), gather(&self.vol_ratio, u))
        };
        HorizonMoves {
            underlyings: u,
            log_spot,
            vol_ratio,
            by_columns: false,
            surface_width: w,
            surface: gather(&self.surface, w),
            rows: rows.len(),
        }
    }

    /// ln(S_h/S_0) of underlying `underlying` on every path, in path order.
    pub fn log_spot_column(&self, underlying: usize) -> impl Iterator<Item = f64> + '_ {
        self.spot_or_vol_column(&self.log_spot, underlying)
    }

    /// iv_h/iv_0 of underlying `underlying` on every path, in path order.
    pub fn vol_ratio_column(&self, underlying: usize) -> impl Iterator<Item = f64> + '_ {
        self.spot_or_vol_column(&self.vol_ratio, underlying)
    }

    /// Underlying `u`'s ln(S_h/S_0) and iv_h/iv_0 on the first paths into `x` and `ratio`
    /// (as many as they hold).
    pub fn copy_spot_and_vol(&self, u: usize, x: &mut [f64], ratio: &mut [f64]) {
        if self.by_columns {
            let range = self.column_range(u);
            for (to, &from) in x.iter_mut().zip(&self.log_spot[range.clone()]) {
                *to = from;
            }
            for (to, &from) in ratio.iter_mut().zip(&self.vol_ratio[range]) {
                *to = from;
            }
        } else {
            for (to, x) in x.iter_mut().zip(self.log_spot_column(u)) {
                *to = x;
            }
            for (to, ratio) in ratio.iter_mut().zip(self.vol_ratio_column(u)) {
                *to = ratio;
            }
        }
    }

    /// Underlying `u`'s numbers of `values` (`log_spot` or `vol_ratio`), in path order.
    fn spot_or_vol_column<'a>(
        &self,
        values: &'a [f64],
        u: usize,
    ) -> impl Iterator<Item = f64> + 'a {
        let (width, index, values) = if self.by_columns {
            (1, 0, &values[self.column_range(u)])
        } else {
            (self.underlyings, u, values)
        };
        column(values, width, index)
    }

    /// Slot `slot` of the surface rows on every path, in path order.
    pub fn surface_column(&self, slot: usize) -> impl Iterator<Item = f64> + '_ {
        column(&self.surface, self.surface_width, slot)
    }

    /// Every path's moves, in order.
    pub fn rows(&self) -> impl Iterator<Item = PathMove<'_>> {
        (0..self.paths()).map(|i| self.row(i))
    }
}

/// Entry `index` of each row of `width` numbers.
fn column(values: &[f64], width: usize, index: usize) -> impl Iterator<Item = f64> + '_ {
    // rows by chunks: a tight strided load (`skip` + `step_by` kept its state in memory)
    values.chunks_exact(width.max(1)).map(move |row| row[index])
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
    /// Per pillar: (factor, surface slot, vol_of_vol · √(dt/365)).
    pillars: Vec<(usize, usize, f64)>,
    /// The skew's (factor, surface slot, skew_vol · √(dt/365)).
    skew: Option<(usize, usize, f64)>,
    /// With pillars: the 30-day level's interpolation weights, which set iv_j/iv_0.
    reference: Option<[(usize, f64); 2]>,
    /// The basis's (factor, surface slot, basis_vol · √(dt/365)).
    basis: Option<(usize, usize, f64)>,
    /// The funding's accrual, when the underlying has funding.
    funding: Option<FundingStep>,
}

/// One step of an underlying's funding (see [`FundingFactor`] for its slots).
#[derive(Debug, Clone)]
struct FundingStep {
    /// `U.funding` and funding_vol · √(dt/365), when the rate moves.
    factor: Option<(usize, f64)>,
    /// First of the funding's surface slots.
    slot: usize,
    /// Today's annualised rate.
    rate: f64,
    /// Δt in years.
    dt_years: f64,
}

/// One jump on the path: a stablecoin's de-peg or a venue's failure (see [`JumpFactor`]).
#[derive(Debug, Clone)]
struct JumpStep {
    factor: usize,
    slot: usize,
    /// 1/√steps: a step's share of the standardised horizon shock.
    step_weight: f64,
    /// The shock quantile of the horizon probability: a de-peg below it.
    threshold: f64,
    /// The horizon probability 1 − e^{−λ·h/365}.
    probability: f64,
    loss: f64,
    tail_index: f64,
    distribution: Distribution,
}

impl JumpStep {
    fn new(d: &JumpFactor, distribution: Distribution, horizon_days: f64, steps: u32) -> Self {
        let probability = -(-d.spec.probability * horizon_days / DAYS_PER_YEAR).exp_m1();
        JumpStep {
            factor: d.factor,
            slot: d.slot,
            step_weight: 1.0 / f64::from(steps).sqrt(),
            threshold: shock_quantile(distribution, probability),
            probability,
            loss: d.spec.loss,
            tail_index: d.spec.tail_index,
            distribution,
        }
    }

    /// The relative price move given the standardised shock `s`: 0 above the threshold, else
    /// −min(1, loss · u^{−1/α}) with u = P(e ≤ s)/p ∈ (0, 1].
    fn price_move(&self, s: f64) -> f64 {
        if s >= self.threshold {
            return 0.0;
        }
        let u = (shock_cdf(self.distribution, s) / self.probability).clamp(f64::MIN_POSITIVE, 1.0);
        -(self.loss * u.powf(-1.0 / self.tail_index)).min(1.0)
    }
}

/// Turns each step's shocks into moves of every underlying's spot and implied vol.
#[derive(Debug, Clone)]
pub struct PathBuilder {
    scales: Vec<StepScales>,
    jumps: Vec<JumpStep>,
    steps: u32,
    surface_width: usize,
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
                pillars: u
                    .pillars
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.factor, u.surface_offset + i, p.vol_of_vol * root_dt))
                    .collect(),
                skew: u
                    .skew
                    .as_ref()
                    .zip(u.skew_slot())
                    .map(|(k, slot)| (k.factor, slot, k.vol * root_dt)),
                reference: u.pillar_weights(REFERENCE_TENOR_DAYS),
                basis: u
                    .basis
                    .as_ref()
                    .zip(u.basis_slot())
                    .map(|(b, slot)| (b.factor, slot, b.vol * root_dt)),
                funding: u.funding.as_ref().zip(u.funding_slot()).map(
                    |(f, slot): (&FundingFactor, usize)| FundingStep {
                        factor: f.factor.map(|factor| (factor, f.vol * root_dt)),
                        slot,
                        rate: f.rate,
                        dt_years,
                    },
                ),
            })
            .collect();
        let jumps = model
            .depegs
            .iter()
            .chain(&model.defaults)
            .map(|d| JumpStep::new(d, model.distribution, horizon_days, steps))
            .collect();
        PathBuilder {
            scales,
            jumps,
            steps,
            surface_width: model.surface_width,
        }
    }

    /// Number of steps per path.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Number of underlyings per path.
    pub fn underlyings(&self) -> usize {
        self.scales.len()
    }

    /// Numbers per path of the surface rows.
    pub fn surface_width(&self) -> usize {
        self.surface_width
    }

    /// Applies step `step` (from 0): `shocks` holds one row of `factors` shocks per path of
    /// `moves`. Jumps (de-pegs, venue failures) are decided at the last step, from the whole
    /// path's shock.
    pub fn advance(&self, step: u32, shocks: &[f64], factors: usize, moves: &mut HorizonMoves) {
        debug_assert!(!moves.by_columns, "the simulation writes rows");
        let last = step + 1 == self.steps;
        let (u, w) = (self.scales.len(), self.surface_width);
        for (path, e) in shocks.chunks_exact(factors).enumerate() {
            let log_spot = &mut moves.log_spot[path * u..(path + 1) * u];
            let vol_ratio = &mut moves.vol_ratio[path * u..(path + 1) * u];
            let surface = &mut moves.surface[path * w..(path + 1) * w];
            for (s, (x, ratio)) in self
                .scales
                .iter()
                .zip(log_spot.iter_mut().zip(vol_ratio.iter_mut()))
            {
                *x += s.drift + s.spot * *ratio * e[s.spot_factor];
                if let Some(v) = s.vol_factor {
                    *ratio *= (s.vol * e[v]).exp();
                }
                for &(factor, slot, scale) in &s.pillars {
                    surface[slot] += scale * e[factor];
                }
                if let Some((factor, slot, scale)) = s.skew {
                    surface[slot] += scale * e[factor];
                }
                if let Some(weights) = &s.reference {
                    *ratio = interpolated(weights, surface).exp();
                }
                if let Some((factor, slot, scale)) = s.basis {
                    surface[slot] += scale * e[factor];
                }
                if let Some(f) = &s.funding {
                    f.accrue(e, *x, surface);
                }
            }
            for d in &self.jumps {
                surface[d.slot] += d.step_weight * e[d.factor];
                if last {
                    surface[d.slot + 1] = d.price_move(surface[d.slot]);
                }
            }
        }
    }
}

impl FundingStep {
    /// Moves the rate by this step's shock and accrues the step's funding at the new rate and
    /// the step's end log spot move `x`.
    #[inline]
    fn accrue(&self, e: &[f64], x: f64, surface: &mut [f64]) {
        if let Some((factor, scale)) = self.factor {
            surface[self.slot] += scale * e[factor];
        }
        let rate_dt = (self.rate + surface[self.slot]) * self.dt_years;
        let growth = x.exp();
        surface[self.slot + 1] += rate_dt * growth;
        surface[self.slot + 2] += rate_dt / growth;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same numbers laid out by rows and by columns.
    fn both_layouts(paths: usize, underlyings: usize) -> (HorizonMoves, HorizonMoves) {
        let value = |p: usize, u: usize| (p * 10 + u) as f64 + 0.5;
        let mut rows = HorizonMoves::default();
        rows.reset(paths, underlyings, 1);
        let mut columns = HorizonMoves::default();
        columns.reset_columns(paths, underlyings, 1);
        for p in 0..paths {
            for u in 0..underlyings {
                rows.log_spot[p * underlyings + u] = value(p, u);
                rows.vol_ratio[p * underlyings + u] = -value(p, u);
                let at = columns.column_range(u).start + p;
                columns.log_spot[at] = value(p, u);
                columns.vol_ratio[at] = -value(p, u);
            }
            rows.surface[p] = p as f64;
            columns.surface[p] = p as f64;
        }
        (rows, columns)
    }

    /// A path, a column, a copy and a subset read the same numbers from either layout, also
    /// with no underlying at all.
    #[test]
    fn rows_and_columns_read_alike() {
        for underlyings in [0, 1, 3] {
            let (rows, columns) = both_layouts(5, underlyings);
            assert!(columns.by_columns() && !rows.by_columns());
            for p in 0..5 {
                let (a, b) = (rows.row(p), columns.row(p));
                for u in 0..underlyings {
                    assert_eq!(a.log_spot(u), b.log_spot(u));
                    assert_eq!(a.vol_ratio(u), b.vol_ratio(u));
                }
                assert_eq!(a.surface, b.surface);
            }
            for u in 0..underlyings {
                assert!(rows.log_spot_column(u).eq(columns.log_spot_column(u)));
                assert!(rows.vol_ratio_column(u).eq(columns.vol_ratio_column(u)));
                let (mut x, mut ratio) = (vec![0.0; 5], vec![0.0; 5]);
                columns.copy_spot_and_vol(u, &mut x, &mut ratio);
                assert!(x.iter().copied().eq(rows.log_spot_column(u)));
                assert!(ratio.iter().copied().eq(rows.vol_ratio_column(u)));
            }
            let (a, b) = (rows.subset(&[4, 1]), columns.subset(&[4, 1]));
            assert!(!b.by_columns());
            assert_eq!(a.paths(), b.paths());
            assert_eq!((a.log_spot, a.vol_ratio), (b.log_spot, b.vol_ratio));
            assert_eq!(a.surface, b.surface);
        }
    }
}
