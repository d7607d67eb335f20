//! Deterministic stress scenarios: the book revalued at the horizon after named relative moves
//! of spots and implied vols (SPEC `[[stress]]`), optionally with the default of a venue or
//! counterparty, each P&L broken down by underlying, venue, counterparty and book; and the
//! spot × implied-vol grid of exchange risk matrices.
//!
//! A stress is revalued exactly like a Monte Carlo path: time to expiry reduced by the run's
//! horizon, options expiring inside it at intrinsic value, so a scenario that moves nothing
//! shows the book's time decay over the horizon.
//!
//! Default of a venue or counterparty: its positions no longer hedge anything — their
//! market P&L is dropped — and the book loses their net positive mark-to-market value today
//! (the exposure at default: max(Σ value, 0), netted across that party's positions as under a
//! netting agreement; margined perpetuals and futures are worth 0, collateral is not
//! modelled).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::book::aggregate::Holding;
use crate::book::grouping::Grouping;
use crate::error::{Error, Location, Result};
use crate::input::job::Job;
use crate::input::scenario::StressSpec;
use crate::market::{MAX_ABS_RATE, USD_STABLECOINS};
use crate::mc::paths::PathMove;
use crate::model::factors::FactorModel;
use crate::pricing::revaluation::Revaluer;
use crate::time::DAYS_PER_YEAR;

/// Relative moves of every model underlying's spot and implied vol (0 = unchanged,
/// −0.3 = × 0.7), in the model's underlying order, and the moves of the model's vol pillars
/// and skews.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorMove {
    /// Relative spot move per model underlying, as a fraction (−0.3 = spot × 0.7).
    pub spot: Vec<f64>,
    /// Relative implied-vol move per model underlying, as a fraction (0.5 = vol × 1.5); for an
    /// underlying with vol pillars, its 30-day vol's move (the pillars in `surface` price).
    pub vol: Vec<f64>,
    /// The surface row ([`crate::model::factors`]): per pillar ln(1 + relative ATM vol
    /// move), per skew the change of the 30-day slope d ln σ / d ln(K/F), per basis the change
    /// of the annualised basis, per funding the change of the annualised rate (its accrual
    /// slots are filled in from the spot move when the move is revalued).
    pub surface: Vec<f64>,
    /// Relative price moves of USD stablecoins (−0.12 = de-peg to 0.88), whether or not the
    /// model gives them a de-peg factor.
    pub peg: BTreeMap<String, f64>,
}

impl FactorMove {
    /// No move of any factor of `model`.
    pub fn none(model: &FactorModel) -> FactorMove {
        let n = model.underlyings.len();
        FactorMove {
            spot: vec![0.0; n],
            vol: vec![0.0; n],
            surface: vec![0.0; model.surface_width],
            peg: BTreeMap::new(),
        }
    }

    /// The surface row to revalue this move on over `horizon_days`: each funding's accrual
    /// slots hold one step's accrual at the moved rate and the moved spot (A_lin =
    /// r·h/365·S_h/S_0, A_inv = r·h/365·S_0/S_h).
    fn path_row(&self, model: &FactorModel, horizon_days: f64) -> Vec<f64> {
        let mut row = self.surface.clone();
        let years = horizon_days / DAYS_PER_YEAR;
        for (i, u) in model.underlyings.iter().enumerate() {
            if let (Some(f), Some(slot)) = (&u.funding, u.funding_slot()) {
                let rate_dt = (f.rate + row[slot]) * years;
                let growth = 1.0 + self.spot[i];
                row[slot + 1] = rate_dt * growth;
                row[slot + 2] = rate_dt / growth;
            }
        }
        row
    }

    /// Moves every implied vol of underlying `i` of `model` by the relative `moved` (0.5 =
    /// × 1.5): its vol factor and each of its pillars alike.
    pub fn set_vol(&mut self, model: &FactorModel, i: usize, moved: f64) {
        self.vol[i] = moved;
        let u = &model.underlyings[i];
        for slot in u.surface_offset..u.surface_offset + u.pillars.len() {
            self.surface[slot] = moved.ln_1p();
        }
    }
}

/// The loss of a venue's or counterparty's positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultEvent {
    /// [`Grouping::Venue`] or [`Grouping::Counterparty`].
    pub group: Grouping,
    /// Name of the defaulted venue or counterparty.
    pub key: String,
}

/// One scenario's result (JSON `stress` items).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressResult {
    /// Scenario name: the `[[stress]]` name (`reverse stress` for the reverse stress's move).
    pub name: String,
    /// What happened, from `[[stress]] description` (left out of the JSON when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the figures come from, from `[[stress]] source` (left out of the JSON when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Book P&L in currency, positive = gain.
    pub pnl: f64,
    /// The factor moves applied (factor name → relative move), zero moves left out.
    pub moves: BTreeMap<String, f64>,
    /// group → key → P&L.
    pub breakdown: BTreeMap<&'static str, BTreeMap<String, f64>>,
    /// The venue or counterparty defaulting in this scenario, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultEvent>,
    /// With a default: the exposure lost (positive), included in `pnl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure_lost: Option<f64>,
}

/// The book ready for deterministic revaluation at the run's horizon.
pub struct StressBook<'a> {
    job: &'a Job,
    revaluer: Revaluer,
    instrument_of: Vec<usize>,
    /// Today's mark-to-market value of each position (0 for perpetuals and futures).
    values_today: Vec<f64>,
}

impl<'a> StressBook<'a> {
    /// Prepares `job`'s book for deterministic revaluation at its `[run] horizon_days`: the
    /// path-independent pricing parts and each position's value today.
    pub fn new(job: &'a Job) -> StressBook<'a> {
        let horizon = job.scenario.run.horizon_days;
        let revaluer = Revaluer::on_paths(&job.aggregated, &job.model, horizon);
        StressBook::with_revaluer(job, revaluer)
    }

    /// The same book under Deribit-style term-structure vol shocks: a vol move v of an
    /// underlying moves an option with T days left at the horizon by (1 + v)^((30/T)^p)
    /// ([`Revaluer::with_term_structure_shocks`]), whatever pillars or skew the model has.
    pub fn with_term_structure(job: &'a Job, power: f64) -> StressBook<'a> {
        let horizon = job.scenario.run.horizon_days;
        let revaluer = Revaluer::on_paths(&job.aggregated, &job.model, horizon)
            .with_term_structure_shocks(power, horizon);
        StressBook::with_revaluer(job, revaluer)
    }

    fn with_revaluer(job: &'a Job, revaluer: Revaluer) -> StressBook<'a> {
        let instrument_of = job
            .aggregated
            .holdings
            .iter()
            .map(|&h| revaluer.instrument_index(h))
            .collect();
        let values_today = job
            .book
            .positions
            .iter()
            .zip(&job.aggregated.holdings)
            .map(|(p, &h)| {
                if !p.instrument.carries_value() {
                    return 0.0;
                }
                match h {
                    Holding::Linear { underlying } => {
                        p.units() * job.aggregated.underlyings[underlying].quote.spot
                    }
                    Holding::Option { underlying, option } => {
                        p.units() * job.aggregated.underlyings[underlying].options[option].price
                    }
                    Holding::Cash { balance } => p.units() * job.aggregated.cash[balance].price,
                    Holding::DeltaOne { .. } => 0.0,
                }
            })
            .collect();
        StressBook {
            job,
            revaluer,
            instrument_of,
            values_today,
        }
    }

    /// Number of model underlyings (the length of a [`FactorMove`]).
    pub fn underlyings(&self) -> usize {
        self.job.model.underlyings.len()
    }

    /// A move of nothing, to be filled in.
    pub fn no_move(&self) -> FactorMove {
        FactorMove::none(&self.job.model)
    }

    /// The model's underlying names, in [`FactorMove`] order.
    pub fn underlying_names(&self) -> Vec<&str> {
        self.job
            .model
            .underlyings
            .iter()
            .map(|u| u.name.as_str())
            .collect()
    }

    /// Names of the underlyings the book holds.
    pub fn held_underlyings(&self) -> Vec<&str> {
        self.job
            .aggregated
            .underlyings
            .iter()
            .map(|u| u.name.as_str())
            .collect()
    }

    /// P&L of every position (book order) after the move, at the horizon, in the reporting
    /// currency.
    pub fn position_pnl(&self, m: &FactorMove) -> Vec<f64> {
        self.reported(m, self.position_pnl_usd(m))
    }

    /// Per-position USD P&Ls `pnl` of move `m` in the reporting currency: each converted at
    /// the move's price of the currency's coin, with the position's value today.
    fn reported(&self, m: &FactorMove, mut pnl: Vec<f64>) -> Vec<f64> {
        if let Some(coin) = self.job.currency.coin {
            let log_move = m.spot[coin.model_index].ln_1p();
            for (p, value) in pnl.iter_mut().zip(&self.values_today) {
                *p = coin.convert(*value, *p, log_move);
            }
        }
        pnl
    }

    /// P&L of every position (book order) after the move, at the horizon, in USD.
    fn position_pnl_usd(&self, m: &FactorMove) -> Vec<f64> {
        let log_spot: Vec<f64> = m.spot.iter().map(|s| s.ln_1p()).collect();
        let vol_ratio: Vec<f64> = m.vol.iter().map(|v| 1.0 + v).collect();
        let mut unit = vec![0.0; self.revaluer.instrument_count()];
        let surface = m.path_row(&self.job.model, self.job.scenario.run.horizon_days);
        let moves = PathMove::new(&log_spot, &vol_ratio, &surface);
        self.revaluer.unit_pnl(moves, &mut unit);
        let cash = &self.job.aggregated.cash;
        self.job
            .book
            .positions
            .iter()
            .zip(&self.instrument_of)
            .zip(&self.job.aggregated.holdings)
            .map(|((p, &i), h)| {
                let depeg = match h {
                    Holding::Cash { balance } => m
                        .peg
                        .get(&cash[*balance].currency)
                        .map_or(0.0, |moved| cash[*balance].price * moved),
                    _ => 0.0,
                };
                p.units() * (unit[i] + depeg)
            })
            .collect()
    }

    /// Book P&L after the move (no default).
    pub fn pnl(&self, m: &FactorMove) -> f64 {
        self.position_pnl(m).iter().sum()
    }

    /// The full result of a move, with an optional default.
    pub fn evaluate(
        &self,
        name: &str,
        m: &FactorMove,
        default: Option<&DefaultEvent>,
    ) -> StressResult {
        let mut pnl = self.position_pnl_usd(m);
        let mut exposure_lost = None;
        if let Some(event) = default {
            let positions = &self.job.book.positions;
            let hit: Vec<usize> = (0..positions.len())
                .filter(|&i| event.group.key_of(&positions[i]) == event.key)
                .collect();
            let exposure = hit
                .iter()
                .map(|&i| self.values_today[i])
                .sum::<f64>()
                .max(0.0);
            let total_value: f64 = hit.iter().map(|&i| self.values_today[i]).sum();
            for &i in &hit {
                // each position loses its share of the exposure; no market P&L any more
                pnl[i] = if total_value > 0.0 {
                    -exposure * self.values_today[i] / total_value
                } else {
                    0.0
                };
            }
            exposure_lost = Some(exposure);
        }
        let pnl = self.reported(m, pnl);
        let exposure_lost = exposure_lost.map(|usd| self.job.currency.value_today(usd));
        let mut breakdown: BTreeMap<&'static str, BTreeMap<String, f64>> = BTreeMap::new();
        for group in Grouping::AGGREGATES {
            let by_key = breakdown.entry(group.name()).or_default();
            for (p, value) in self.job.book.positions.iter().zip(&pnl) {
                *by_key.entry(group.key_of(p).to_owned()).or_default() += value;
            }
        }
        StressResult {
            name: name.to_owned(),
            description: None,
            source: None,
            pnl: pnl.iter().sum(),
            moves: self.named_moves(m),
            breakdown,
            default: default.cloned(),
            exposure_lost,
        }
    }

    /// The move by factor name: relative moves of spots, vols and pillars, the skew's change.
    fn named_moves(&self, m: &FactorMove) -> BTreeMap<String, f64> {
        let mut moves = BTreeMap::new();
        for (i, u) in self.job.model.underlyings.iter().enumerate() {
            let name = &u.name;
            if m.spot[i] != 0.0 {
                moves.insert(format!("{name}.spot"), m.spot[i]);
            }
            if m.vol[i] != 0.0 && u.pillars.is_empty() {
                moves.insert(format!("{name}.vol"), m.vol[i]);
            }
            for (j, p) in u.pillars.iter().enumerate() {
                let log_move = m.surface[u.surface_offset + j];
                if log_move != 0.0 {
                    moves.insert(
                        self.job.model.factor_names[p.factor].clone(),
                        log_move.exp_m1(),
                    );
                }
            }
            let absolute = [
                ("skew", u.skew_slot()),
                ("basis", u.basis_slot()),
                ("funding", u.funding_slot()),
            ];
            for (kind, slot) in absolute {
                if let Some(slot) = slot.filter(|&slot| m.surface[slot] != 0.0) {
                    moves.insert(format!("{name}.{kind}"), m.surface[slot]);
                }
            }
        }
        for (currency, &moved) in &m.peg {
            if moved != 0.0 {
                moves.insert(format!("{currency}.peg"), moved);
            }
        }
        moves
    }

    /// Runs a `[[stress]]` scenario from `file` (named in errors).
    pub fn run_spec(&self, spec: &StressSpec, file: &Path) -> Result<StressResult> {
        let (m, default) = self.resolve(spec, file)?;
        let mut result = self.evaluate(&spec.name, &m, default.as_ref());
        result.description.clone_from(&spec.description);
        result.source.clone_from(&spec.source);
        Ok(result)
    }

    /// Checks a scenario's factor names, moves and defaulted party against the model and the
    /// book.
    fn resolve(
        &self,
        spec: &StressSpec,
        file: &Path,
    ) -> Result<(FactorMove, Option<DefaultEvent>)> {
        let field = |what: &str| format!("stress '{}' {what}", spec.name);
        let model = &self.job.model;
        let mut m = FactorMove::none(model);
        for (factor, &moved) in &spec.shocks {
            let bad =
                |message: String| Error::input(file, Location::File, Some(&field(factor)), message);
            let (underlying, kind) = split_factor(factor).ok_or_else(|| {
                bad(
                    "expected a factor like BTC.spot, BTC.vol, BTC.vol.30d, BTC.skew, \
                     BTC.basis, BTC.funding or USDC.peg"
                        .to_owned(),
                )
            })?;
            if kind == "peg" {
                if !USD_STABLECOINS.contains(&underlying)
                    || model.underlying_index(underlying).is_some()
                {
                    return Err(bad(format!(
                        "'{underlying}' is not a USD stablecoin held at its peg (one without a \
                         spot factor): a de-peg applies to {}",
                        USD_STABLECOINS.join(", ")
                    )));
                }
                if !(moved.is_finite() && (-1.0..=0.0).contains(&moved)) {
                    return Err(bad(format!(
                        "a de-peg is a relative fall of the price in [-1, 0] (-0.12 means \
                         0.88 USD), found {moved}"
                    )));
                }
                m.peg.insert(underlying.to_owned(), moved);
                continue;
            }
            let index = model
                .underlying_index(underlying)
                .ok_or_else(|| bad(format!("'{underlying}' is not an underlying of the model")))?;
            let u = &model.underlyings[index];
            let relative = !matches!(kind, "skew" | "basis" | "funding");
            if matches!(kind, "basis" | "funding") && moved.abs() > MAX_ABS_RATE {
                return Err(bad(format!(
                    "an annualised change beyond ±{MAX_ABS_RATE} (1000 %), found {moved}: 0.05 \
                     means 5 %/year"
                )));
            }
            if !(moved.is_finite() && (!relative || moved > -1.0)) {
                return Err(bad(format!(
                    "a relative move must be above -1 (-0.3 means x 0.7), found {moved}"
                )));
            }
            match kind {
                "spot" => m.spot[index] = moved,
                "vol" => m.set_vol(model, index, moved),
                "skew" | "basis" | "funding" => {
                    let (slot, needs) = match kind {
                        "skew" => (u.skew_slot(), "a skew_vol"),
                        "basis" => (u.basis_slot(), "a basis_vol"),
                        _ => (u.funding_slot(), "a funding_rate or funding_vol"),
                    };
                    let slot = slot.ok_or_else(|| {
                        bad(format!(
                            "the model has no {kind} factor for {underlying}: give \
                             [model.factors.{underlying}] {needs}"
                        ))
                    })?;
                    m.surface[slot] = moved;
                }
                pillar => {
                    let j = u
                        .pillars
                        .iter()
                        .position(|p| model.factor_names[p.factor] == *factor)
                        .ok_or_else(|| {
                            bad(format!(
                                "'{pillar}' is not a vol pillar of {underlying}: its pillars \
                                 are {:?} days",
                                u.pillars.iter().map(|p| p.days as u32).collect::<Vec<_>>()
                            ))
                        })?;
                    m.surface[u.surface_offset + j] = moved.ln_1p();
                }
            }
        }
        let default = match (&spec.default_venue, &spec.default_counterparty) {
            (Some(_), Some(_)) => {
                return Err(Error::input(
                    file,
                    Location::File,
                    Some(&field("default")),
                    "give default_venue or default_counterparty, not both",
                ))
            }
            (Some(venue), None) => Some((Grouping::Venue, venue)),
            (None, Some(party)) => Some((Grouping::Counterparty, party)),
            (None, None) => None,
        };
        let default = default
            .map(|(group, key)| {
                let known = self
                    .job
                    .book
                    .positions
                    .iter()
                    .any(|p| group.key_of(p) == key);
                if known {
                    Ok(DefaultEvent {
                        group,
                        key: key.clone(),
                    })
                } else {
                    Err(Error::input(
                        file,
                        Location::File,
                        Some(&field(&format!("default_{group}"))),
                        format!("the book holds nothing with {group} '{key}'"),
                    ))
                }
            })
            .transpose()?;
        Ok((m, default))
    }
}

/// Splits a stress factor name into its underlying and kind: `spot`, `vol`, `skew` or a
/// pillar `vol.{days}d`.
fn split_factor(factor: &str) -> Option<(&str, &str)> {
    for kind in [".spot", ".vol", ".skew", ".basis", ".funding", ".peg"] {
        if let Some(underlying) = factor.strip_suffix(kind) {
            return Some((underlying, &kind[1..]));
        }
    }
    let (underlying, days) = factor.rsplit_once(".vol.")?;
    let days = days.strip_suffix('d')?;
    (!days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (underlying, &factor[underlying.len() + 1..]))
}

/// Spot moves of the default grid: −50 % to +50 % in steps of 10 %.
pub const GRID_SPOT_MOVES: [f64; 11] = [-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5];
/// Implied-vol moves of the default grid: −50 % to +100 %.
pub const GRID_VOL_MOVES: [f64; 7] = [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0];

/// The book's P&L on a grid of spot × implied-vol moves, for one underlying (others fixed)
/// or for all together (`underlying` = "all").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressGrid {
    /// The underlying moved, or `all` when every held underlying moves together.
    pub underlying: String,
    /// Relative spot moves of the grid's rows, as fractions (−0.5 = spot × 0.5).
    pub spot_moves: Vec<f64>,
    /// Relative implied-vol moves of the grid's columns, as fractions (1.0 = vol × 2).
    pub vol_moves: Vec<f64>,
    /// `pnl[i][j]`: spot move i, vol move j.
    pub pnl: Vec<Vec<f64>>,
}

/// Grids for every underlying the book holds, then for all underlyings together.
pub fn stress_grids(book: &StressBook, spot_moves: &[f64], vol_moves: &[f64]) -> Vec<StressGrid> {
    let held: Vec<usize> = book
        .job
        .aggregated
        .underlyings
        .iter()
        .map(|u| u.model_index)
        .collect();
    let names = book.underlying_names();
    let mut targets: Vec<(String, Vec<usize>)> = held
        .iter()
        .map(|&i| (names[i].to_owned(), vec![i]))
        .collect();
    targets.push(("all".to_owned(), held));
    targets
        .into_iter()
        .map(|(underlying, indices)| {
            let pnl = spot_moves
                .iter()
                .map(|&s| {
                    vol_moves
                        .iter()
                        .map(|&v| {
                            let mut m = book.no_move();
                            for &i in &indices {
                                m.spot[i] = s;
                                m.set_vol(&book.job.model, i, v);
                            }
                            book.pnl(&m)
                        })
                        .collect()
                })
                .collect();
            StressGrid {
                underlying,
                spot_moves: spot_moves.to_vec(),
                vol_moves: vol_moves.to_vec(),
                pnl,
            }
        })
        .collect()
}
