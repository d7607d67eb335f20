//! A venue's positions as its margin engine sees them: collateral (balances and spot, at
//! their haircut) and derivatives (futures, perpetuals and options, whose notional and
//! scenario losses set the requirements), each netted per instrument of the revaluation.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::book::aggregate::Holding;
use crate::book::instrument::{Instrument, OptionType, Settlement};
use crate::input::job::Job;
use crate::input::venue::{PortfolioGridSpec, VenueSpec};
use crate::mc::paths::PathMove;
use crate::model::factors::term_structure_exponent;
use crate::pricing::black_scholes::{bs_price, intrinsic, price_from_parts};
use crate::pricing::revaluation::Revaluer;
use crate::time::DAYS_PER_YEAR;

/// Initial and maintenance margin of a venue, USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requirement {
    /// Initial margin: equity below it is a margin call.
    pub initial: f64,
    /// Maintenance margin: equity below it is a liquidation.
    pub maintenance: f64,
}

/// A balance or spot holding counted in the venue's equity at its haircut.
#[derive(Debug, Clone)]
struct Collateral {
    instrument: usize,
    units: f64,
    value_today: f64,
    /// 1 − haircut.
    weight: f64,
}

/// A derivative netted per instrument on the venue.
#[derive(Debug, Clone)]
struct Derivative {
    instrument: usize,
    units: f64,
    value_today: f64,
    /// Index of its underlying in the aggregated book.
    underlying: usize,
    /// Coins of exposure per unit (1, or 1/F_0 for a coin-settled future's USD face).
    coins_per_unit: f64,
    /// The option's contract, if it is one: (aggregated option index, type, strike, rate).
    option: Option<(usize, OptionType, f64, f64)>,
}

/// One venue's book.
#[derive(Debug, Clone)]
pub struct VenueBook {
    /// The `[[venue]]` entry.
    pub spec: VenueSpec,
    collateral: Vec<Collateral>,
    /// In instrument order, so each underlying's derivatives are contiguous.
    derivatives: Vec<Derivative>,
    /// Per aggregated underlying its derivatives are on (ascending), their range in
    /// `derivatives`.
    groups: Vec<(usize, Range<usize>)>,
    /// The portfolio grid's price moves, −range to +range (empty under other margins).
    price_moves: Vec<f64>,
}

impl VenueBook {
    /// Every `[[venue]]` of `job` with its positions, instrument indices as in `revaluer`.
    pub fn all(job: &Job, revaluer: &Revaluer) -> Vec<VenueBook> {
        job.scenario
            .venues
            .iter()
            .map(|spec| VenueBook::of(spec, job, revaluer))
            .collect()
    }

    fn of(spec: &VenueSpec, job: &Job, revaluer: &Revaluer) -> VenueBook {
        let agg = &job.aggregated;
        let mut collateral: BTreeMap<(usize, u64), Collateral> = BTreeMap::new();
        let mut derivatives: BTreeMap<usize, Derivative> = BTreeMap::new();
        for (p, &holding) in job.book.positions.iter().zip(&agg.holdings) {
            if p.venue != spec.name {
                continue;
            }
            let instrument = revaluer.instrument_index(holding);
            let units = p.units();
            match (&p.instrument, holding) {
                (Instrument::Spot | Instrument::Cash, _) => {
                    let price = match holding {
                        Holding::Cash { balance } => agg.cash[balance].price,
                        Holding::Linear { underlying } => agg.underlyings[underlying].quote.spot,
                        _ => 0.0,
                    };
                    let weight = 1.0 - spec.haircut_of(&p.underlying);
                    let entry =
                        collateral
                            .entry((instrument, weight.to_bits()))
                            .or_insert(Collateral {
                                instrument,
                                units: 0.0,
                                value_today: 0.0,
                                weight,
                            });
                    entry.units += units;
                    entry.value_today += units * price;
                }
                (_, Holding::Cash { .. }) => {}
                (
                    _,
                    Holding::Linear { underlying }
                    | Holding::DeltaOne { underlying, .. }
                    | Holding::Option { underlying, .. },
                ) => {
                    let u = &agg.underlyings[underlying];
                    let (coins_per_unit, option, price) = match holding {
                        Holding::Option { option, .. } => {
                            let o = &u.options[option];
                            (
                                1.0,
                                Some((option, o.option_type, o.strike, u.quote.rate)),
                                o.price,
                            )
                        }
                        Holding::DeltaOne { contract, .. }
                            if u.delta_one[contract].key.settlement == Settlement::Inverse =>
                        {
                            (1.0 / u.delta_one[contract].forward, None, 0.0)
                        }
                        _ => (1.0, None, 0.0),
                    };
                    let entry = derivatives.entry(instrument).or_insert(Derivative {
                        instrument,
                        units: 0.0,
                        value_today: 0.0,
                        underlying,
                        coins_per_unit,
                        option,
                    });
                    entry.units += units;
                    entry.value_today += units * price;
                }
            }
        }
        let derivatives: Vec<Derivative> = derivatives.into_values().collect();
        let mut groups: Vec<(usize, Range<usize>)> = Vec::new();
        for (i, d) in derivatives.iter().enumerate() {
            match groups.last_mut() {
                Some((u, range)) if *u == d.underlying => range.end = i + 1,
                _ => groups.push((d.underlying, i..i + 1)),
            }
        }
        let grid = &spec.portfolio;
        let price_moves = if spec.margin == "portfolio" {
            let last = f64::from(grid.price_steps - 1);
            (0..grid.price_steps)
                .map(|i| grid.price_range * (2.0 * f64::from(i) / last - 1.0))
                .collect()
        } else {
            Vec::new()
        };
        VenueBook {
            spec: spec.clone(),
            collateral: collateral.into_values().collect(),
            derivatives,
            groups,
            price_moves,
        }
    }

    /// Equity on a path: collateral at its haircut plus the derivatives' value today and P&L
    /// since, USD, given every instrument's P&L per unit `unit_pnl`
    /// ([`Revaluer::unit_pnl`]).
    pub fn equity(&self, unit_pnl: &[f64]) -> f64 {
        let collateral: f64 = self
            .collateral
            .iter()
            .map(|c| c.weight * (c.value_today + c.units * unit_pnl[c.instrument]))
            .sum();
        collateral + self.derivatives_value(unit_pnl)
    }

    /// The derivatives' value today plus their P&L since, USD.
    pub fn derivatives_value(&self, unit_pnl: &[f64]) -> f64 {
        self.derivatives
            .iter()
            .map(|d| d.value_today + d.units * unit_pnl[d.instrument])
            .sum()
    }

    /// The derivatives' notional Σ |coins| × S on path `m`, USD: what a liquidation fee is
    /// charged on.
    pub fn notional(&self, revaluer: &Revaluer, m: PathMove) -> f64 {
        self.groups
            .iter()
            .map(|(u, range)| notional(&self.derivatives[range.clone()], revaluer.spot(*u, m)))
            .sum()
    }

    /// Whether margin is checked: a margin model other than `none` and some derivative (a
    /// venue of collateral only is never called).
    pub fn is_margined(&self) -> bool {
        self.spec.margin != "none" && !self.derivatives.is_empty()
    }

    /// What the fund has on the venue when it fails, USD: its collateral at full value plus
    /// its derivatives' value (frozen at `derivatives_frozen_at` after a liquidation).
    pub fn value_at_failure(&self, unit_pnl: &[f64], derivatives_frozen_at: Option<f64>) -> f64 {
        let collateral: f64 = self
            .collateral
            .iter()
            .map(|c| c.value_today + c.units * unit_pnl[c.instrument])
            .sum();
        collateral + derivatives_frozen_at.unwrap_or_else(|| self.derivatives_value(unit_pnl))
    }

    /// Initial and maintenance margin on path `m` (prices and vols of `revaluer`'s horizon).
    pub fn requirement(&self, revaluer: &Revaluer, m: PathMove) -> Requirement {
        if self.spec.margin == "none" {
            return Requirement {
                initial: 0.0,
                maintenance: 0.0,
            };
        }
        if self.spec.margin == "portfolio" {
            let maintenance = self.portfolio_margin(revaluer, m);
            return Requirement {
                initial: maintenance * self.spec.portfolio.initial_factor,
                maintenance,
            };
        }
        let mut requirement = Requirement {
            initial: 0.0,
            maintenance: 0.0,
        };
        for (u, range) in &self.groups {
            let held = &self.derivatives[range.clone()];
            let (initial, maintenance) = self.tiered(notional(held, revaluer.spot(*u, m)));
            requirement.initial += initial;
            requirement.maintenance += maintenance;
        }
        requirement
    }

    /// Initial and maintenance margin of one underlying's `notional` under the linear
    /// schedule: flat rates, or each tier's rates on the part of the notional within it.
    fn tiered(&self, notional: f64) -> (f64, f64) {
        let spec = &self.spec;
        if spec.tiers.is_empty() {
            return (
                notional * spec.initial_margin.unwrap_or(0.0),
                notional * spec.maintenance_margin.unwrap_or(0.0),
            );
        }
        let (mut initial, mut maintenance, mut edge) = (0.0, 0.0, 0.0);
        for (j, tier) in spec.tiers.iter().enumerate() {
            let last = j + 1 == spec.tiers.len();
            let top = if last {
                notional
            } else {
                notional.min(tier.up_to)
            };
            let within = (top - edge).max(0.0);
            initial += within * tier.initial_margin;
            maintenance += within * tier.maintenance_margin;
            edge = tier.up_to;
            if notional <= edge {
                break;
            }
        }
        (initial, maintenance)
    }

    /// Maintenance margin under the portfolio grid: per underlying, the worst loss over the
    /// main grid (price moves × vol up / same / down) or a fraction of the extended table's
    /// (vol up), plus a contingency per net short option contract.
    fn portfolio_margin(&self, revaluer: &Revaluer, m: PathMove) -> f64 {
        let grid = &self.spec.portfolio;
        let mut total = 0.0;
        for (u, range) in &self.groups {
            let spot = revaluer.spot(*u, m);
            let held: Vec<(&Derivative, Option<GridState>)> = self.derivatives[range.clone()]
                .iter()
                .map(|d| (d, d.grid_state(revaluer, m, spot, grid)))
                .collect();
            let pnl = |moved: f64, vol: usize| -> f64 {
                let log_move = moved.ln_1p();
                held.iter()
                    .map(|(d, state)| d.scenario_pnl(*state, spot, moved, log_move, vol))
                    .sum()
            };
            let mut worst: f64 = 0.0;
            for &moved in &self.price_moves {
                for vol in [VOL_UP, VOL_SAME, VOL_DOWN] {
                    worst = worst.max(-pnl(moved, vol));
                }
            }
            for &moved in &grid.extended_moves {
                worst = worst.max(-grid.extended_fraction * pnl(moved, VOL_UP));
            }
            let short_contracts: f64 = held
                .iter()
                .filter(|(d, _)| d.option.is_some())
                .map(|(d, _)| (-d.units).max(0.0))
                .sum();
            total += worst + short_contracts * grid.short_option_minimum * spot;
        }
        total
    }
}

/// The portfolio grid's vol scenarios, as indices of [`GridState::vols`].
const VOL_UP: usize = 0;
const VOL_SAME: usize = 1;
const VOL_DOWN: usize = 2;

/// An option on a path as the portfolio grid revalues it: the Black–Scholes parts that do
/// not change across the grid's scenarios ([`price_from_parts`]).
#[derive(Debug, Clone, Copy)]
struct GridState {
    /// Expired inside the horizon: worth its intrinsic value.
    expired: bool,
    /// Its price at the path's spot and vol.
    price: f64,
    /// K·e^{−rτ}.
    discounted_strike: f64,
    /// ln(S/K) + rτ at the path's spot.
    log_moneyness: f64,
    /// σ·√τ in each vol scenario.
    vol_sqrt_tau: [f64; 3],
}

impl GridState {
    /// An expired option's state, its price to be filled in.
    fn expired() -> GridState {
        GridState {
            expired: true,
            price: 0.0,
            discounted_strike: 0.0,
            log_moneyness: 0.0,
            vol_sqrt_tau: [0.0; 3],
        }
    }
}

/// Σ |coins| × `spot` of derivatives on one underlying, USD.
fn notional(held: &[Derivative], spot: f64) -> f64 {
    held.iter()
        .map(|d| (d.units * d.coins_per_unit).abs() * spot)
        .sum()
}

impl Derivative {
    /// An option's state on path `m`, its price there and its vols in the grid's vol
    /// scenarios: 30-day vol moves of +`vol_up`, 0 and −`vol_down`, an option with T days
    /// left moving by (1 + v)^((30/max(T, 1))^p). `None` for delta-one.
    fn grid_state(
        &self,
        revaluer: &Revaluer,
        m: PathMove,
        spot: f64,
        grid: &PortfolioGridSpec,
    ) -> Option<GridState> {
        let (option, kind, strike, rate) = self.option?;
        let state = revaluer.option_state(self.underlying, option, m);
        if state.tau <= 0.0 {
            return Some(GridState {
                price: intrinsic(kind, spot, strike),
                ..GridState::expired()
            });
        }
        let power = term_structure_exponent(state.tau * DAYS_PER_YEAR, grid.vol_power);
        let sqrt_tau = state.tau.sqrt();
        let mut vol_sqrt_tau = [state.vol * sqrt_tau; 3];
        vol_sqrt_tau[VOL_UP] *= (1.0 + grid.vol_up).powf(power);
        vol_sqrt_tau[VOL_DOWN] *= (1.0 - grid.vol_down).powf(power);
        Some(GridState {
            expired: false,
            price: bs_price(kind, spot, strike, state.tau, state.vol, rate),
            discounted_strike: strike * (-rate * state.tau).exp(),
            log_moneyness: (spot / strike).ln() + rate * state.tau,
            vol_sqrt_tau,
        })
    }

    /// Value change, USD, when the underlying's spot moves from `spot` by the relative
    /// `moved` (`log_move` = ln(1 + moved)) in vol scenario `vol` ([`VOL_UP`], [`VOL_SAME`],
    /// [`VOL_DOWN`]), from an option's grid state.
    fn scenario_pnl(
        &self,
        state: Option<GridState>,
        spot: f64,
        moved: f64,
        log_move: f64,
        vol: usize,
    ) -> f64 {
        let (Some((_, kind, strike, _)), Some(g)) = (self.option, state) else {
            return self.units * self.coins_per_unit * spot * moved;
        };
        let shocked = spot * (1.0 + moved);
        let after = if g.expired {
            intrinsic(kind, shocked, strike)
        } else {
            price_from_parts(
                kind,
                shocked,
                g.discounted_strike,
                g.log_moneyness + log_move,
                g.vol_sqrt_tau[vol],
            )
        };
        self.units * (after - g.price)
    }
}
