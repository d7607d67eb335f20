//! Full revaluation of the netted book at the horizon on every path.
//!
//! Linear exposure: units × S_0 × (e^{x} − 1) with x = ln(S_h/S_0). Options: Black–Scholes
//! at the simulated spot, at their mark vol (the surface's at their strike and expiry) moved
//! by the path's vol factors — iv_h/iv_0, or the pillars interpolated at the option's tenor
//! left and the skew tilt, see [`Revaluer::with_vol_dynamics`] — with the time to expiry
//! reduced by the horizon; an option expiring inside the horizon is worth its intrinsic value
//! at the simulated price. Futures and perpetuals that are more than linear exposure
//! ([`crate::book::aggregate::NetDeltaOne`]): F_h = S_h·e^{y_h·τ_h} with y_h today's basis
//! plus the path's basis move and τ_h the years left at the horizon (0 without a basis, so
//! F = S, and at expiry, where F converges to S); a USD-settled one earns units × (F_h − F_0),
//! a coin-settled one face × (1/F_0 − 1/F_h) coins worth face × S_h·(1/F_0 − 1/F_h) USD at the
//! horizon; a perpetual also pays the funding accrued on the path. A stablecoin balance with
//! a de-peg moves by the path's de-peg price move. Everything that does not depend on the
//! path is computed once here.
//!
//! Grid mode ([`Revaluer::with_surfaces`]) reads each underlying's live options off
//! revaluation surfaces instead ([`crate::pricing::surface`]; one per expiry under vol
//! pillars), so a path's cost depends on the number of underlyings and expiries, not of
//! options; full revaluation stays the reference.

use std::sync::Arc;

use crate::book::aggregate::{AggregatedBook, Holding};
use crate::book::instrument::{OptionType, Settlement};
use crate::input::scenario::SmileDynamics;
use crate::market::currency::{CoinNumeraire, ReportingCurrency};
use crate::market::vol_surface::VolSurface;
use crate::math;
use crate::mc::paths::{HorizonMoves, PathMove};
use crate::model::factors::{interpolated, skew_loading, term_structure_exponent, FactorModel};
use crate::pricing::batch::{accumulate_pnl, OptionTerms, PathVol};
use crate::pricing::black_scholes::{intrinsic, price_from_parts};
use crate::pricing::surface::{Axis, Surface, SPOT_POINTS, VOL_POINTS};
use crate::time::DAYS_PER_YEAR;

/// Largest |ln| of an option's vol move under a term structure: its vol moves at most by a
/// factor 100 either way, so that a short-dated option's scaled move cannot overflow.
pub const MAX_LOG_VOL_MOVE: f64 = 4.605_170_185_988_092;

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
    /// Today's mark vol σ.
    mark_vol: f64,
    /// τ_h: years left at the horizon (0 once expired).
    tau_left: f64,
    /// σ·√τ_h at today's mark vol.
    vol_sqrt_tau: f64,
    /// K·e^{−r·τ_h}.
    discounted_strike: f64,
    /// τ_h ≤ 0: the option expires inside the horizon.
    expires: bool,
    /// How the option's implied vol follows the path's vol factors.
    vol_move: VolMove,
    /// With a skew factor: (surface slot, loading) with loading = ln(K/F_0)·√(30/max(T, 1)),
    /// T the days left at the horizon; the option's log vol moves by loading × skew move.
    skew: Option<(usize, f64)>,
    /// Years from the valuation time to expiry.
    tau_at_valuation: f64,
    /// Under sticky-moneyness dynamics, the smile the option's vol moves along.
    moving_smile: Option<MovingSmile>,
}

/// How an option's implied vol moves on a path.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VolMove {
    /// The underlying's one vol factor: the vol is scaled by ratio^m, m = (30/max(T, 1))^p
    /// with a term structure of power p, 1 without.
    Factor {
        /// m.
        exponent: f64,
    },
    /// The underlying's pillars: ln of the vol move interpolated at the option's tenor (surface
    /// slots and weights).
    Pillars([(usize, f64); 2]),
}

/// An option's smile under sticky-moneyness dynamics: on a path its vol is scaled by
/// σ_surface(K·S_0/S_h, τ)/σ_surface(K, τ), the surface read at the strike's moneyness against
/// the simulated spot over the surface at the strike (τ the option's tenor today).
#[derive(Debug, Clone)]
struct MovingSmile {
    surface: Arc<VolSurface>,
    spot: f64,
    tau: f64,
    base_vol: f64,
}

/// An option's state on a path at the revaluer's horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionState {
    /// Simulated spot of its underlying, USD.
    pub spot: f64,
    /// Its implied vol on the path (mark vol moved by the path's vol factors and smile).
    pub vol: f64,
    /// Years left to expiry (0 once expired).
    pub tau: f64,
}

/// A netted future or perpetual beyond linear exposure, with its path-independent parts.
#[derive(Debug, Clone)]
struct DeltaOneAtHorizon {
    /// Coins when USD-settled, USD face when coin-settled.
    units: f64,
    /// Coin-settled.
    inverse: bool,
    /// F_0, USD.
    forward: f64,
    /// τ_h: years left at the horizon (0 past expiry or without a basis).
    tau_left: f64,
    /// Today's annualised basis y_0.
    basis: f64,
    /// A perpetual of an underlying with funding: its first funding slot.
    funding: Option<usize>,
}

/// A pegged balance: worth its peg, moving only by its stablecoin's de-peg.
#[derive(Debug, Clone)]
struct PeggedAtHorizon {
    units: f64,
    /// USD per unit today.
    price: f64,
    /// The surface slot of its de-peg's relative price move, if it has one.
    depeg: Option<usize>,
}

#[derive(Debug, Clone)]
struct UnderlyingAtHorizon {
    /// Column of this underlying in [`HorizonMoves`] rows.
    model_index: usize,
    spot: f64,
    linear_units: f64,
    options: Vec<OptionAtHorizon>,
    delta_one: Vec<DeltaOneAtHorizon>,
    /// The surface slot of the basis move, if the underlying has a basis factor.
    basis_slot: Option<usize>,
    /// Indices of the options expiring inside the horizon (never on a surface).
    expiring: Vec<usize>,
}

/// Some of one underlying's live options tabulated on a revaluation surface over (ln spot
/// move, ln vol move), the vol move read off the path the way these options read it.
#[derive(Debug, Clone)]
struct TabulatedOptions {
    surface: Surface,
    /// How the path's vol coordinate is read.
    vol: VolCoordinate,
}

/// Where a revaluation surface's vol coordinate comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VolCoordinate {
    /// ln of the underlying's vol ratio (one surface for all its live options).
    Ratio,
    /// The pillars' log moves interpolated at one expiry's tenor (one surface per expiry).
    Pillars([(usize, f64); 2]),
}

/// Revalues the netted book on simulated horizon moves.
#[derive(Debug, Clone)]
pub struct Revaluer {
    underlyings: Vec<UnderlyingAtHorizon>,
    /// Per underlying (same order), the surfaces of its non-expiring options when the grid
    /// mode is on (none for an underlying revalued in full).
    surfaces: Vec<Vec<TabulatedOptions>>,
    /// Pegged balances, after every underlying's instruments.
    pegged: Vec<PeggedAtHorizon>,
    /// With a coin reporting currency: the coin and the book's value today in USD; path
    /// P&Ls are converted at each path's price of the coin.
    numeraire: Option<(CoinNumeraire, f64)>,
}

impl Revaluer {
    /// The revaluer of `book` on `model`'s simulated paths over `horizon_days`: [`Revaluer::new`]
    /// with the model's vol dynamics ([`Revaluer::with_vol_dynamics`]). Every full
    /// revaluation of a book on the model's paths uses this one, so that they agree.
    pub fn on_paths(book: &AggregatedBook, model: &FactorModel, horizon_days: f64) -> Revaluer {
        Revaluer::new(book, model, horizon_days).with_vol_dynamics(book, model, horizon_days)
    }

    /// Precomputes everything path-independent for a horizon of `horizon_days`, reading the
    /// basis, funding and de-peg moves where `model` puts them in a path's surface row.
    pub fn new(book: &AggregatedBook, model: &FactorModel, horizon_days: f64) -> Revaluer {
        let horizon_years = horizon_days / DAYS_PER_YEAR;
        let underlyings = book
            .underlyings
            .iter()
            .map(|u| {
                let factors = &model.underlyings[u.model_index];
                let funding_slot = factors.funding_slot();
                let delta_one = u
                    .delta_one
                    .iter()
                    .map(|c| DeltaOneAtHorizon {
                        units: c.units,
                        inverse: c.key.settlement == Settlement::Inverse,
                        forward: c.forward,
                        tau_left: (c.tau - horizon_years).max(0.0),
                        basis: u.quote.basis,
                        funding: funding_slot.filter(|_| c.key.perpetual),
                    })
                    .collect();
                let rate = u.quote.rate;
                let options: Vec<OptionAtHorizon> = u
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
                            mark_vol: o.vol,
                            tau_left: tau,
                            vol_sqrt_tau: o.vol * tau.sqrt(),
                            discounted_strike: o.strike * (-rate * tau).exp(),
                            expires,
                            vol_move: VolMove::Factor { exponent: 1.0 },
                            skew: None,
                            tau_at_valuation: o.tau,
                            moving_smile: None,
                        }
                    })
                    .collect();
                let expiring = (0..options.len()).filter(|&i| options[i].expires).collect();
                UnderlyingAtHorizon {
                    model_index: u.model_index,
                    spot: u.quote.spot,
                    linear_units: u.linear_units,
                    options,
                    delta_one,
                    basis_slot: factors.basis_slot(),
                    expiring,
                }
            })
            .collect();
        let pegged = book
            .cash
            .iter()
            .map(|c| PeggedAtHorizon {
                units: c.units,
                price: c.price,
                depeg: model
                    .depegs
                    .iter()
                    .find(|d| d.name == c.currency)
                    .map(|d| d.slot + 1),
            })
            .collect();
        Revaluer {
            underlyings,
            surfaces: Vec::new(),
            pegged,
            numeraire: None,
        }
    }

    /// The same revaluation with the model's vol dynamics:
    /// - each underlying's term structure of vol moves: an option with T days left at the
    ///   horizon moves its implied vol by ratio^m, m = (30/max(T, 1))^p with p the model's
    ///   `term_power` of its underlying (T floored at one day, and the option's vol move
    ///   capped at a factor [`MAX_LOG_VOL_MOVE`] in logs, so that an option expiring just
    ///   after the horizon cannot overflow); p = 0 keeps m = 1 exactly;
    /// - with vol pillars, the option's log-vol move is the pillars' moves interpolated
    ///   linearly at T (flat outside the pillars), and with a skew factor its log vol also
    ///   moves by ln(K/F_0)·√(30/max(T, 1)) times the skew move (F_0 today's forward to the
    ///   option's expiry), the sum capped like the term structure's;
    /// - under sticky-moneyness smile dynamics, the options of an underlying with a surface
    ///   move along its smile as spot moves (`MovingSmile`).
    pub fn with_vol_dynamics(
        mut self,
        book: &AggregatedBook,
        model: &FactorModel,
        horizon_days: f64,
    ) -> Revaluer {
        if model.smile == SmileDynamics::StickyMoneyness {
            for (u, net) in self.underlyings.iter_mut().zip(&book.underlyings) {
                let Some(surface) = &net.surface else {
                    continue;
                };
                let surface = Arc::new(surface.clone());
                for o in &mut u.options {
                    let base_vol = surface.vol(o.strike, o.tau_at_valuation);
                    o.moving_smile = Some(MovingSmile {
                        surface: surface.clone(),
                        spot: u.spot,
                        tau: o.tau_at_valuation,
                        base_vol,
                    });
                }
            }
        }
        for (u, net) in self.underlyings.iter_mut().zip(&book.underlyings) {
            let factors = &model.underlyings[u.model_index];
            let rate = net.quote.rate;
            for o in &mut u.options {
                let days = o.tau_at_valuation * DAYS_PER_YEAR - horizon_days;
                if let Some(weights) = factors.pillar_weights(days) {
                    o.vol_move = VolMove::Pillars(weights);
                } else if factors.term_power != 0.0 {
                    o.vol_move = VolMove::Factor {
                        exponent: term_structure_exponent(days, factors.term_power),
                    };
                }
                o.skew = factors.skew_slot().map(|slot| {
                    let forward = u.spot * (rate * o.tau_at_valuation).exp();
                    (slot, skew_loading(o.strike, forward, days))
                });
            }
        }
        self
    }

    /// The same book under a Deribit-style term-structure shock instead of the model's vol
    /// dynamics: every option's vol moves by ratio^m, m = (30/max(T, 1))^p (T its days left at
    /// the horizon), `ratio` being its underlying's vol ratio, whatever pillars or skew the
    /// model has. For the term-structure stress grid.
    pub fn with_term_structure_shocks(mut self, power: f64, horizon_days: f64) -> Revaluer {
        for u in &mut self.underlyings {
            for o in &mut u.options {
                let days = o.tau_at_valuation * DAYS_PER_YEAR - horizon_days;
                o.vol_move = VolMove::Factor {
                    exponent: term_structure_exponent(days, power),
                };
                o.skew = None;
            }
        }
        self
    }

    /// Switches to grid revaluation: tabulates, per underlying with options that outlive the
    /// horizon, their summed P&L over ±`half_widths[model_index]` = (ln spot, ln vol move)
    /// half-widths: one surface for all of them under one vol factor, one per expiry under
    /// vol pillars (the options of one expiry share its interpolated vol move). Each surface
    /// is tabulated only as finely as an interpolation error of `tolerance` USD needs
    /// ([`Surface::tabulate_to_tolerance`]). Expiring options and points off the grid stay
    /// fully revalued, and so do the options of underlyings with a skew factor (their vol
    /// moves differ by strike).
    pub fn with_surfaces(mut self, half_widths: &[(f64, f64)], tolerance: f64) -> Revaluer {
        use rayon::prelude::*;
        self.surfaces = self
            .underlyings
            .par_iter()
            .map(|u| {
                u.surface_groups(half_widths[u.model_index])
                    .into_iter()
                    .map(|group| group.tabulate(u.spot, tolerance))
                    .collect()
            })
            .collect();
        self
    }

    /// The USD value of one unit of the reporting currency today (1 in USD): scales a
    /// reported P&L into the USD of the surfaces.
    pub fn usd_per_reported_unit(&self) -> f64 {
        self.numeraire.map_or(1.0, |(coin, _)| coin.spot)
    }

    /// What revaluing one path costs in full, counted (no surfaces are read).
    pub fn full_work(&self) -> RevaluationWork {
        let mut work = RevaluationWork::default();
        for o in self.underlyings.iter().flat_map(|u| &u.options) {
            work.count_in_full(o);
        }
        work
    }

    /// What [`Revaluer::with_surfaces`] would cost with these half-widths, counted without
    /// tabulating: the prices its tabulation takes, and per path the surface reads and the
    /// options still revalued in full.
    pub fn grid_work(&self, half_widths: &[(f64, f64)]) -> RevaluationWork {
        let mut work = RevaluationWork::default();
        for u in &self.underlyings {
            let groups = u.surface_groups(half_widths[u.model_index]);
            for group in &groups {
                work.surface_reads += 1;
                work.tabulated_prices +=
                    group.spot_axis.points * group.vol_axis.points * group.options.len();
            }
            for o in &u.options {
                if groups.is_empty() || o.expires {
                    work.count_in_full(o);
                }
            }
        }
        work
    }

    /// Reports path P&Ls ([`Revaluer::revalue`], [`Revaluer::path_pnl`]) in `currency`, the
    /// book being worth `base_value` USD today ([`crate::market::currency`]). Per-instrument
    /// P&Ls ([`Revaluer::unit_pnl`]) stay in USD.
    pub fn in_currency(mut self, currency: &ReportingCurrency, base_value: f64) -> Revaluer {
        self.numeraire = currency.coin.map(|coin| (coin, base_value));
        self
    }

    /// A USD path P&L in the reporting currency.
    #[inline]
    fn reported(&self, pnl: f64, m: PathMove) -> f64 {
        match self.numeraire {
            None => pnl,
            Some((coin, value)) => coin.convert(value, pnl, m.log_spot(coin.model_index)),
        }
    }

    /// The model underlyings (columns of [`HorizonMoves`]) whose moves the revaluation
    /// reads, besides the surface rows.
    pub fn model_underlyings(&self) -> Vec<usize> {
        let mut columns: Vec<usize> = self.underlyings.iter().map(|u| u.model_index).collect();
        columns.extend(self.numeraire.map(|(coin, _)| coin.model_index));
        columns
    }

    /// The same revaluation reading compact moves: model underlying `columns[i]` in column
    /// i (every underlying it reads, [`Revaluer::model_underlyings`], must be there).
    pub fn reading_columns(mut self, columns: &[usize]) -> Revaluer {
        let column = |model_index: usize| {
            columns
                .iter()
                .position(|&c| c == model_index)
                .expect("every column the revaluation reads is kept")
        };
        for u in &mut self.underlyings {
            u.model_index = column(u.model_index);
        }
        if let Some((coin, _)) = &mut self.numeraire {
            coin.model_index = column(coin.model_index);
        }
        self
    }

    /// Whether grid revaluation is on.
    pub fn uses_surfaces(&self) -> bool {
        self.surfaces.iter().any(|s| !s.is_empty())
    }

    /// Full revaluation only (drops the surfaces).
    pub fn without_surfaces(mut self) -> Revaluer {
        self.surfaces.clear();
        self
    }

    /// Writes the book's P&L (positive = gain) for every path of `moves` into `pnl`: each
    /// underlying's live options read off its surfaces when the grid mode is on, else
    /// revalued in full.
    pub fn revalue(&self, moves: &HorizonMoves, pnl: &mut [f64]) {
        self.start_with_pegged(moves, pnl);
        let mut state = BlockState::with_paths(pnl.len());
        for (i, u) in self.underlyings.iter().enumerate() {
            state.read(u, moves);
            u.add_delta_one_pnl(&state, moves, pnl);
            match self.surfaces.get(i).filter(|tables| !tables.is_empty()) {
                Some(tables) => u.add_options_on_surfaces(tables, &mut state, moves, pnl),
                None => u.add_options_in_full(&mut state, moves, pnl),
            }
        }
        if self.numeraire.is_some() {
            for (out, m) in pnl.iter_mut().zip(moves.rows()) {
                *out = self.reported(*out, m);
            }
        }
    }

    /// Starts every path's P&L with its pegged balances' (the empty sum, −0, without any).
    fn start_with_pegged(&self, moves: &HorizonMoves, pnl: &mut [f64]) {
        if self.pegged.is_empty() {
            // the empty sum, as `pegged_pnl` gives it
            pnl.fill(-0.0);
        } else {
            for (out, m) in pnl.iter_mut().zip(moves.rows()) {
                *out = self.pegged_pnl(m);
            }
        }
    }

    /// P&L of one path given its moves, in the reporting currency.
    pub fn path_pnl(&self, m: PathMove) -> f64 {
        let mut total = self.pegged_pnl(m);
        for u in &self.underlyings {
            let (spot, x, ratio) = u.state(m);
            total += u.linear_units * (spot - u.spot) + u.delta_one_pnl(spot, x, m.surface);
            for o in &u.options {
                total += o.units * o.unit_pnl(spot, x, ratio, m.surface);
            }
        }
        self.reported(total, m)
    }

    /// The state of option `option` of underlying `underlying` (indices of the aggregated
    /// book) on path `m`: what a margin grid revalues it from.
    pub fn option_state(&self, underlying: usize, option: usize, m: PathMove) -> OptionState {
        let u = &self.underlyings[underlying];
        let (spot, _, ratio) = u.state(m);
        let o = &u.options[option];
        OptionState {
            spot,
            vol: o.mark_vol * o.scaled_ratio(ratio, m.surface) * o.smile_move(spot),
            tau: o.tau_left,
        }
    }

    /// The simulated spot of underlying `underlying` (index of the aggregated book) on `m`.
    pub fn spot(&self, underlying: usize, m: PathMove) -> f64 {
        self.underlyings[underlying].state(m).0
    }

    /// USD P&L of the pegged balances on a path: 0 unless a stablecoin de-pegs.
    #[inline]
    fn pegged_pnl(&self, m: PathMove) -> f64 {
        self.pegged
            .iter()
            .map(|b| b.units * b.unit_pnl(m.surface))
            .sum()
    }

    /// Number of netted instruments: per underlying its linear exposure, options and other
    /// futures and perpetuals; and every pegged balance.
    pub fn instrument_count(&self) -> usize {
        self.underlyings
            .iter()
            .map(UnderlyingAtHorizon::instrument_count)
            .sum::<usize>()
            + self.pegged.len()
    }

    /// Where a position's netted instrument sits in [`Revaluer::unit_pnl`]'s output:
    /// underlying by underlying, its linear exposure first, then its options, then its other
    /// futures and perpetuals; the pegged balances last.
    pub fn instrument_index(&self, holding: Holding) -> usize {
        let (underlying, within) = match holding {
            Holding::Linear { underlying } => (underlying, 0),
            Holding::Option { underlying, option } => (underlying, 1 + option),
            Holding::DeltaOne {
                underlying,
                contract,
            } => (
                underlying,
                1 + self.underlyings[underlying].options.len() + contract,
            ),
            Holding::Cash { balance } => {
                return self.instrument_count() - self.pegged.len() + balance
            }
        };
        let offset: usize = self.underlyings[..underlying]
            .iter()
            .map(UnderlyingAtHorizon::instrument_count)
            .sum();
        offset + within
    }

    /// USD P&L per unit of every netted instrument on one path, in
    /// [`Revaluer::instrument_index`] order: S_h − S_0 per coin of linear exposure, V_h − V_0
    /// per coin of an option, per coin or USD face of another future or perpetual, and per
    /// unit of a pegged balance. The path's P&L is the units-weighted sum.
    pub fn unit_pnl(&self, m: PathMove, out: &mut [f64]) {
        let mut slots = out.iter_mut();
        for u in &self.underlyings {
            let (spot, x, ratio) = u.state(m);
            if let Some(slot) = slots.next() {
                *slot = spot - u.spot;
            }
            for (o, slot) in u.options.iter().zip(slots.by_ref()) {
                *slot = o.unit_pnl(spot, x, ratio, m.surface);
            }
            for (c, slot) in u.delta_one.iter().zip(slots.by_ref()) {
                *slot = c.unit_pnl(u.spot, spot, x, u.basis_move(m.surface), m.surface);
            }
        }
        for (b, slot) in self.pegged.iter().zip(slots) {
            *slot = b.unit_pnl(m.surface);
        }
    }
}

impl DeltaOneAtHorizon {
    /// USD P&L per unit at simulated spot `spot` (log move `x`) with the path's basis move
    /// `basis_move`: (F_h − F_0) per coin when USD-settled, S_h·(1/F_0 − 1/F_h) per USD face
    /// when coin-settled, less a perpetual's funding.
    #[inline]
    fn unit_pnl(&self, spot0: f64, spot: f64, x: f64, basis_move: f64, surface: &[f64]) -> f64 {
        let carry = if self.tau_left == 0.0 {
            1.0
        } else {
            ((self.basis + basis_move) * self.tau_left).exp()
        };
        let price_pnl = if self.inverse {
            spot / self.forward - 1.0 / carry
        } else {
            spot * carry - self.forward
        };
        let funding = match self.funding {
            None => 0.0,
            Some(slot) if self.inverse => x.exp() * surface[slot + 2],
            Some(slot) => spot0 * surface[slot + 1],
        };
        price_pnl - funding
    }
}

impl PeggedAtHorizon {
    /// USD P&L per unit: the peg times the path's de-peg move (0 without a de-peg).
    #[inline]
    fn unit_pnl(&self, surface: &[f64]) -> f64 {
        self.depeg.map_or(0.0, |slot| self.price * surface[slot])
    }
}

/// The options of one underlying that one revaluation surface holds: they read the same
/// vol coordinate, over the same axes.
struct SurfaceGroup<'a> {
    vol: VolCoordinate,
    options: Vec<&'a OptionAtHorizon>,
    spot_axis: Axis,
    vol_axis: Axis,
}

impl SurfaceGroup<'_> {
    /// The narrowest feature of the group's P&L along ln spot: the smallest σ·√τ_h at the
    /// horizon, at the lowest vol the vol axis reaches.
    fn narrowest_spot_feature(&self) -> f64 {
        let lowest_vol = self.vol_axis.start.exp();
        self.options
            .iter()
            .map(|o| o.vol_sqrt_tau * lowest_vol)
            .fold(f64::INFINITY, f64::min)
    }

    /// Tabulates the group's summed P&L (underlying at `spot0` today), a run of spot points
    /// at a time through the batch pricer, on its axes' nodes only as finely as an
    /// interpolation error of `tolerance` USD needs ([`Surface::tabulate_to_tolerance`]).
    fn tabulate(&self, spot0: f64, tolerance: f64) -> TabulatedOptions {
        let column = |xs: &[f64], log_move: f64, out: &mut [f64]| {
            let mut spot = vec![0.0; xs.len()];
            math::scaled_exp(spot0, xs, &mut spot);
            let (ratio, row) = self.vol.path_with_move(log_move);
            let ratio = vec![ratio; xs.len()];
            let mut vol = vec![0.0; xs.len()];
            let points = Points {
                spot: &spot,
                x: xs,
                ratio: &ratio,
            };
            // The sum of the group's P&Ls from −0, as `Iterator::sum`.
            out.fill(-0.0);
            for o in &self.options {
                o.accumulate_live_pnl(points, |_| &row, &mut vol, out);
            }
        };
        let surface = Surface::tabulate_to_tolerance(
            self.spot_axis,
            self.vol_axis,
            tolerance,
            self.narrowest_spot_feature(),
            column,
        );
        TabulatedOptions {
            surface,
            vol: self.vol,
        }
    }
}

/// Work counted for the choice between grid and full revaluation
/// ([`crate::mc::cost`]): per path, options priced and surfaces read; once per run, option
/// prices to tabulate the surfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RevaluationWork {
    /// Options priced on every path whose vol is today's times the underlying's vol ratio.
    pub plain_options: usize,
    /// Options priced on every path whose vol moves otherwise (term structure, pillars,
    /// skew, moving smile): their vol costs an exp or a surface lookup per path.
    pub moving_options: usize,
    /// Options expiring inside the horizon (intrinsic value per path).
    pub expiring_options: usize,
    /// Revaluation surfaces read per path.
    pub surface_reads: usize,
    /// Option prices the surfaces' tabulation takes at most, once: every node of the
    /// finest grid (an adaptive tabulation takes fewer).
    pub tabulated_prices: usize,
}

impl RevaluationWork {
    fn count_in_full(&mut self, o: &OptionAtHorizon) {
        if o.expires {
            self.expiring_options += 1;
        } else if o.moves_with_ratio() {
            self.plain_options += 1;
        } else {
            self.moving_options += 1;
        }
    }
}

impl UnderlyingAtHorizon {
    /// The revaluation surfaces of this underlying's live options with (ln spot, ln vol
    /// move) half-widths `half_width`: one for all of them under one vol factor, one per
    /// expiry under vol pillars; none when an option has a skew factor (its vol move differs
    /// by strike) or none outlives the horizon.
    fn surface_groups(&self, half_width: (f64, f64)) -> Vec<SurfaceGroup<'_>> {
        let live: Vec<&OptionAtHorizon> = self.options.iter().filter(|o| !o.expires).collect();
        if live.iter().any(|o| o.skew.is_some()) {
            return Vec::new();
        }
        let spot_axis = Axis::centred(half_width.0, SPOT_POINTS);
        let vol_axis = Axis::centred(half_width.1, VOL_POINTS);
        let mut coordinates: Vec<VolCoordinate> = Vec::new();
        for o in &live {
            let c = o.vol_coordinate();
            if !coordinates.contains(&c) {
                coordinates.push(c);
            }
        }
        coordinates
            .into_iter()
            .map(|vol| SurfaceGroup {
                vol,
                options: live
                    .iter()
                    .copied()
                    .filter(|o| o.vol_coordinate() == vol)
                    .collect(),
                spot_axis,
                vol_axis,
            })
            .collect()
    }

    /// Linear exposure, options and other futures and perpetuals.
    fn instrument_count(&self) -> usize {
        1 + self.options.len() + self.delta_one.len()
    }

    /// The path's move of this underlying's annualised basis (0 without a basis factor).
    #[inline]
    fn basis_move(&self, surface: &[f64]) -> f64 {
        self.basis_slot.map_or(0.0, |slot| surface[slot])
    }

    /// USD P&L of the futures and perpetuals beyond linear exposure on a path.
    #[inline]
    fn delta_one_pnl(&self, spot: f64, x: f64, surface: &[f64]) -> f64 {
        let basis_move = self.basis_move(surface);
        self.delta_one
            .iter()
            .map(|c| c.units * c.unit_pnl(self.spot, spot, x, basis_move, surface))
            .sum()
    }

    /// Simulated spot (S_0·e^x with [`math::exp`], the same bits on every platform), its log
    /// move x and the implied-vol ratio of this underlying on a path.
    #[inline]
    fn state(&self, m: PathMove) -> (f64, f64, f64) {
        let x = m.log_spot(self.model_index);
        (self.spot * math::exp(x), x, m.vol_ratio(self.model_index))
    }

    /// Adds the linear exposure's and the futures' and perpetuals' P&L on every path of a
    /// block (`state` read for this underlying), in [`Revaluer::path_pnl`]'s order.
    fn add_delta_one_pnl(&self, state: &BlockState, moves: &HorizonMoves, pnl: &mut [f64]) {
        if self.delta_one.is_empty() {
            // an empty sum (−0) added to the linear P&L leaves it as it is
            for (p, total) in pnl.iter_mut().enumerate() {
                *total += self.linear_units * (state.spot[p] - self.spot);
            }
            return;
        }
        for (p, m) in moves.rows().enumerate().take(pnl.len()) {
            let (spot, x) = (state.spot[p], state.x[p]);
            pnl[p] +=
                self.linear_units * (spot - self.spot) + self.delta_one_pnl(spot, x, m.surface);
        }
    }

    /// Adds every option's P&L on every path of a block, revalued in full: option by option
    /// over the paths ([`crate::pricing::batch`]), each path's sum in the scalar order, so
    /// the P&Ls are [`Revaluer::path_pnl`]'s to the last bit.
    fn add_options_in_full(&self, state: &mut BlockState, moves: &HorizonMoves, pnl: &mut [f64]) {
        for o in &self.options {
            if o.expires {
                for (p, m) in moves.rows().enumerate().take(pnl.len()) {
                    let (spot, x, ratio) = (state.spot[p], state.x[p], state.ratio[p]);
                    pnl[p] += o.units * o.unit_pnl(spot, x, ratio, m.surface);
                }
                continue;
            }
            let points = Points {
                spot: &state.spot,
                x: &state.x,
                ratio: &state.ratio,
            };
            o.accumulate_live_pnl(points, |p| moves.row(p).surface, &mut state.vol, pnl);
        }
    }

    /// Adds the options' P&L on every path of a block with the live ones read off `tables`
    /// (those expiring inside the horizon revalued in full); a path off a grid has all of
    /// this underlying's options revalued in full. One underlying at a time over the block,
    /// so its surfaces stay in cache while every path reads them, and each surface's vol
    /// coordinates first, then its reads over the block ([`Surface::add_values`]).
    fn add_options_on_surfaces(
        &self,
        tables: &[TabulatedOptions],
        state: &mut BlockState,
        moves: &HorizonMoves,
        pnl: &mut [f64],
    ) {
        let paths = pnl.len();
        // the empty sum, as `Iterator::sum` starts it
        state.live.clear();
        state.live.resize(paths, Some(-0.0));
        for t in tables {
            for (p, m) in moves.rows().enumerate().take(paths) {
                state.vol[p] = t.vol.log_move(state.ratio[p], m.surface);
            }
            t.surface.add_values(&state.x, &state.vol, &mut state.live);
        }
        for (p, m) in moves.rows().enumerate().take(paths) {
            let (spot, x, ratio) = (state.spot[p], state.x[p], state.ratio[p]);
            let options_in_full: &mut dyn Iterator<Item = &OptionAtHorizon> = match state.live[p] {
                Some(live) => {
                    pnl[p] += live;
                    &mut self.expiring.iter().map(|&i| &self.options[i])
                }
                None => &mut self.options.iter(),
            };
            for o in options_in_full {
                pnl[p] += o.units * o.unit_pnl(spot, x, ratio, m.surface);
            }
        }
    }
}

impl VolCoordinate {
    /// The coordinate on a path with vol ratio `ratio` and surface row `surface`.
    #[inline]
    fn log_move(self, ratio: f64, surface: &[f64]) -> f64 {
        match self {
            VolCoordinate::Ratio => ratio.ln(),
            VolCoordinate::Pillars(weights) => interpolated(&weights, surface),
        }
    }

    /// A vol ratio and surface row whose coordinate is `log_move`, for tabulation.
    fn path_with_move(self, log_move: f64) -> (f64, Vec<f64>) {
        match self {
            VolCoordinate::Ratio => (log_move.exp(), Vec::new()),
            VolCoordinate::Pillars(weights) => {
                let mut row = vec![0.0; weights[0].0.max(weights[1].0) + 1];
                row[weights[0].0] = log_move;
                row[weights[1].0] = log_move;
                (1.0, row)
            }
        }
    }
}

/// Points an option is revalued at, structure-of-arrays: simulated spot (USD), its log move
/// ln(S_h/S_0) and the underlying's vol ratio iv_h/iv_0.
#[derive(Clone, Copy)]
struct Points<'a> {
    spot: &'a [f64],
    x: &'a [f64],
    ratio: &'a [f64],
}

/// One underlying's state on each path of a block, structure-of-arrays.
struct BlockState {
    /// Simulated spot, USD.
    spot: Vec<f64>,
    /// ln(S_h/S_0).
    x: Vec<f64>,
    /// iv_h/iv_0.
    ratio: Vec<f64>,
    /// σ·√τ_h of the option being revalued, or a surface's vol coordinate.
    vol: Vec<f64>,
    /// The sum of the surfaces read so far (`None` once a point is off a grid).
    live: Vec<Option<f64>>,
}

impl BlockState {
    fn with_paths(paths: usize) -> BlockState {
        BlockState {
            spot: vec![0.0; paths],
            x: vec![0.0; paths],
            ratio: vec![0.0; paths],
            vol: vec![0.0; paths],
            live: Vec::new(),
        }
    }

    /// Underlying `u`'s state on every path of `moves`, as [`UnderlyingAtHorizon::state`].
    fn read(&mut self, u: &UnderlyingAtHorizon, moves: &HorizonMoves) {
        moves.copy_spot_and_vol(u.model_index, &mut self.x, &mut self.ratio);
        math::scaled_exp(u.spot, &self.x, &mut self.spot);
    }
}

impl OptionAtHorizon {
    /// Whether the option's σ·√τ_h on a path is today's times its underlying's vol ratio
    /// exactly (one vol factor, no term structure, skew or moving smile).
    fn moves_with_ratio(&self) -> bool {
        self.vol_move == (VolMove::Factor { exponent: 1.0 })
            && self.skew.is_none()
            && self.moving_smile.is_none()
    }

    /// Adds units × (V_h − V_0) of this option, which outlives the horizon, to `total[p]`
    /// at every point p of `points`, `surface(p)` being p's surface row; `vol` is scratch of
    /// `total`'s length. The batch form of [`OptionAtHorizon::unit_pnl`], to the last bit.
    fn accumulate_live_pnl<'a>(
        &self,
        points: Points,
        surface: impl Fn(usize) -> &'a [f64],
        vol: &mut [f64],
        total: &mut [f64],
    ) {
        let path_vol = if self.moves_with_ratio() {
            PathVol::Scaled(self.vol_sqrt_tau, points.ratio)
        } else {
            for (p, v) in vol.iter_mut().enumerate() {
                *v = self.vol_sqrt_tau
                    * self.scaled_ratio(points.ratio[p], surface(p))
                    * self.smile_move(points.spot[p]);
            }
            PathVol::Given(vol)
        };
        accumulate_pnl(&self.batch_terms(), points.spot, points.x, path_vol, total);
    }

    /// The terms [`accumulate_pnl`] reads.
    fn batch_terms(&self) -> OptionTerms {
        OptionTerms {
            kind: self.option_type,
            units: self.units,
            base_price: self.base_price,
            discounted_strike: self.discounted_strike,
            base_log_moneyness: self.base_log_moneyness,
        }
    }

    /// The factor by which the smile moves the option's vol at simulated spot `spot` (1
    /// under sticky-strike dynamics).
    #[inline]
    fn smile_move(&self, spot: f64) -> f64 {
        match &self.moving_smile {
            None => 1.0,
            Some(m) => m.surface.vol(self.strike * m.spot / spot, m.tau) / m.base_vol,
        }
    }

    /// Where a revaluation surface of this option reads its vol move (ignoring skew).
    fn vol_coordinate(&self) -> VolCoordinate {
        match self.vol_move {
            VolMove::Factor { .. } => VolCoordinate::Ratio,
            VolMove::Pillars(weights) => VolCoordinate::Pillars(weights),
        }
    }

    /// The factor by which the path moves the option's implied vol, given its underlying's
    /// vol ratio and the path's surface row: `ratio` itself for the plain one-factor model.
    #[inline]
    fn scaled_ratio(&self, ratio: f64, surface: &[f64]) -> f64 {
        let mut log_move = match self.vol_move {
            VolMove::Factor { exponent } if exponent == 1.0 && self.skew.is_none() => return ratio,
            VolMove::Factor { exponent } => exponent * ratio.ln(),
            VolMove::Pillars(weights) => interpolated(&weights, surface),
        };
        if let Some((slot, loading)) = self.skew {
            log_move += loading * surface[slot];
        }
        log_move.clamp(-MAX_LOG_VOL_MOVE, MAX_LOG_VOL_MOVE).exp()
    }

    /// Value change of one unit at the horizon: intrinsic if it expired inside it, else
    /// Black–Scholes at the simulated spot (log move `x`) and moved vol (the underlying's vol
    /// `ratio` and the path's `surface` row).
    #[inline]
    fn unit_pnl(&self, spot: f64, x: f64, ratio: f64, surface: &[f64]) -> f64 {
        let value = if self.expires {
            intrinsic(self.option_type, spot, self.strike)
        } else {
            price_from_parts(
                self.option_type,
                spot,
                self.discounted_strike,
                self.base_log_moneyness + x,
                self.vol_sqrt_tau * self.scaled_ratio(ratio, surface) * self.smile_move(spot),
            )
        };
        value - self.base_price
    }
}
