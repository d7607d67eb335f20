//! Full revaluation of the netted book at the horizon on every path.
//!
//! Linear exposure: units × S_0 × (e^{x} − 1) with x = ln(S_h/S_0). Options: Black–Scholes
//! at the simulated spot, at their mark vol scaled by the path's iv_h/iv_0, with the time to
//! expiry reduced by the horizon; an option expiring inside the horizon is worth its
//! intrinsic value at the simulated price. Everything that does not depend on the path is
//! computed once here.

use crate::aggregate::AggregatedBook;
use crate::instrument::OptionType;
use crate::paths::HorizonMoves;
use crate::pricing::{intrinsic, price_from_parts};
use crate::time::DAYS_PER_YEAR;

/// One netted option, with its path-independent parts precomputed.
#[derive(Debug, Clone)]
struct OptionAtHorizon {
    option_type: OptionType,
    units: f64,
    /// Today's price, per unit.
    base_price: f64,
    strike: f64,
    /// ln(S_0/K) + r·τ_h: add ln(S_h/S_0) to get the path's log-moneyness term.
    base_log_moneyness: f64,
    /// σ·√τ_h at today's mark vol.
    vol_sqrt_tau: f64,
    /// K·e^{−r·τ_h}.
    discounted_strike: f64,
    /// τ_h ≤ 0: the option expires inside the horizon.
    expires: bool,
}

#[derive(Debug, Clone)]
struct UnderlyingAtHorizon {
    /// Column of this underlying in [`HorizonMoves`] rows.
    model_index: usize,
    spot: f64,
    linear_units: f64,
    options: Vec<OptionAtHorizon>,
}

/// Revalues the netted book on simulated horizon moves.
#[derive(Debug, Clone)]
pub struct Revaluer {
    underlyings: Vec<UnderlyingAtHorizon>,
}

impl Revaluer {
    /// Precomputes everything path-independent for a horizon of `horizon_days`.
    pub fn new(book: &AggregatedBook, horizon_days: f64) -> Revaluer {
        let horizon_years = horizon_days / DAYS_PER_YEAR;
        let underlyings = book
            .underlyings
            .iter()
            .map(|u| {
                let rate = u.quote.rate;
                let options = u
                    .options
                    .iter()
                    .map(|o| {
                        let tau_h = o.tau - horizon_years;
                        let expires = tau_h <= 0.0;
                        let tau = tau_h.max(0.0);
                        OptionAtHorizon {
                            option_type: o.option_type,
                            units: o.units,
                            base_price: o.price,
                            strike: o.strike,
                            base_log_moneyness: (u.quote.spot / o.strike).ln() + rate * tau,
                            vol_sqrt_tau: o.vol * tau.sqrt(),
                            discounted_strike: o.strike * (-rate * tau).exp(),
                            expires,
                        }
                    })
                    .collect();
                UnderlyingAtHorizon {
                    model_index: u.model_index,
                    spot: u.quote.spot,
                    linear_units: u.linear_units,
                    options,
                }
            })
            .collect();
        Revaluer { underlyings }
    }

    /// Writes the book's P&L (positive = gain) for every path of `moves` into `pnl`.
    pub fn revalue(&self, moves: &HorizonMoves, pnl: &mut [f64]) {
        let u = moves.underlyings;
        let rows = moves
            .log_spot
            .chunks_exact(u)
            .zip(moves.vol_ratio.chunks_exact(u));
        for (out, (log_spot, vol_ratio)) in pnl.iter_mut().zip(rows) {
            *out = self.path_pnl(log_spot, vol_ratio);
        }
    }

    /// P&L of one path given its per-underlying ln(S_h/S_0) and iv_h/iv_0.
    pub fn path_pnl(&self, log_spot: &[f64], vol_ratio: &[f64]) -> f64 {
        let mut total = 0.0;
        for u in &self.underlyings {
            let x = log_spot[u.model_index];
            let spot = u.spot * x.exp();
            total += u.linear_units * (spot - u.spot);
            let ratio = vol_ratio[u.model_index];
            for o in &u.options {
                let value = if o.expires {
                    intrinsic(o.option_type, spot, o.strike)
                } else {
                    price_from_parts(
                        o.option_type,
                        spot,
                        o.discounted_strike,
                        o.base_log_moneyness + x,
                        o.vol_sqrt_tau * ratio,
                    )
                };
                total += o.units * (value - o.base_price);
            }
        }
        total
    }
}
