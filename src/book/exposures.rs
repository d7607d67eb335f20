//! Net Greeks of the book by underlying, venue, counterparty and book.
//!
//! Greeks are computed once per netted instrument (analytic Black–Scholes for options) and
//! scaled by each position's units. Coin-denominated figures (delta, gamma) only add up
//! within one underlying, so every row is for one (group, key, underlying); currency figures
//! (delta_usd, gamma_usd, vega, theta) may be summed across rows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::book::aggregate::{AggregatedBook, Holding};
use crate::book::grouping::Grouping;
use crate::book::instrument::{Instrument, Settlement};
use crate::book::positions::{Book, Position};
use crate::model::factors::skew_loading;
use crate::pricing::black_scholes::{bs_greeks, Greeks};
use crate::time::{years_between, DAYS_PER_YEAR};

/// Net sensitivities of the positions in one group key on one underlying.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureRow {
    /// `underlying`, `venue`, `counterparty` or `book`.
    pub group: Grouping,
    /// The venue / counterparty / book name (the underlying itself for `underlying`).
    pub key: String,
    /// The underlying the row's figures are for (coin figures add up within one underlying only).
    pub underlying: String,
    /// Net delta-one position (spot + perpetuals + futures) in coins of the underlying.
    pub linear_position: f64,
    /// Net options position in coins of the underlying (Σ quantity × multiplier, signed).
    pub option_position: f64,
    /// Today's mark-to-market value in currency (spot and options; perpetuals and futures
    /// are worth 0, SPEC `base_value`).
    pub value: f64,
    /// Net delta in coins of the underlying.
    pub delta: f64,
    /// Net delta in reporting currency: delta × spot.
    pub delta_usd: f64,
    /// Net delta in coins as venues quote coin-settled contracts: the sensitivity of each
    /// position's value in its settlement coin, times spot. For a coin-settled ("inverse")
    /// option it is Deribit's delta, Black–Scholes delta − option price in coin; for
    /// USD-settled positions, futures and perpetuals it equals `delta`. (The USD exposure of
    /// a coin-settled option is still `delta`: its coin value is coin held.)
    pub settlement_delta: f64,
    /// Net gamma: change of delta (coins) per one unit of currency move in spot.
    pub gamma: f64,
    /// Change of `delta_usd` for a 1 % spot move from gamma: gamma × spot² / 100.
    pub gamma_usd: f64,
    /// Value change for a one vol point (0.01) rise in implied vol, in currency.
    pub vega: f64,
    /// `vega` split by the options' time to expiry, one entry per [`TENOR_BUCKETS`] bucket
    /// (currency per vol point): a calendar spread shows offsetting buckets where the total
    /// nets to near zero.
    pub vega_by_tenor: Vec<TenorVega>,
    /// Value change as one calendar day passes, in currency.
    pub theta: f64,
    /// Value change for a +0.01 rise of the 30-day smile slope d ln σ / d ln(K/F) (the skew
    /// factor's unit, `docs/model.md`), in currency: each option's log vol moves by
    /// 0.01 · ln(K/F) · √(30/T), T its days to expiry (at least 1). A long risk reversal (long
    /// call, short put) gains when the put skew flattens.
    pub skew: f64,
    /// Value change for a +0.01 rise of the annualised futures basis ln(F/S)/τ, in currency:
    /// futures with an expiry only (a long future gains).
    pub basis: f64,
    /// Value change over one day for a +0.01 rise of the annualised funding rate, in
    /// currency: perpetuals only (longs pay funding, so a long perpetual loses).
    pub funding: f64,
    /// Positions in the row.
    pub positions: usize,
}

/// Upper edges (days to expiry, inclusive) of the vega tenor buckets; the last bucket is
/// everything beyond the last edge. The edges are the pillars crypto venues mark vol at.
pub const TENOR_BUCKETS: [f64; 4] = [7.0, 30.0, 90.0, 180.0];

/// Vega of one tenor bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenorVega {
    /// The bucket, e.g. `7-30d` (days to expiry; `0-7d` includes 7, `180d+` is beyond 180).
    pub tenor: String,
    /// Value change for a one vol point rise of the bucket's options, in currency.
    pub vega: f64,
}

/// The label of bucket `i` of [`TENOR_BUCKETS`].
fn bucket_label(i: usize) -> String {
    match i {
        0 => format!("0-{}d", TENOR_BUCKETS[0]),
        i if i == TENOR_BUCKETS.len() => format!("{}d+", TENOR_BUCKETS[i - 1]),
        i => format!("{}-{}d", TENOR_BUCKETS[i - 1], TENOR_BUCKETS[i]),
    }
}

/// The bucket of an option with `tau` years to expiry.
fn bucket_of(tau: f64) -> usize {
    let days = tau * DAYS_PER_YEAR;
    TENOR_BUCKETS
        .iter()
        .position(|&edge| days <= edge)
        .unwrap_or(TENOR_BUCKETS.len())
}

/// Exposure rows for every group, sorted by group, key and underlying.
pub fn exposures(book: &Book, aggregated: &AggregatedBook) -> Vec<ExposureRow> {
    let unit_greeks = unit_greeks(aggregated);
    let mut rows: BTreeMap<(usize, String, String), ExposureRow> = BTreeMap::new();
    for (position, holding) in book.positions.iter().zip(&aggregated.holdings) {
        let (spot, greeks, holds) = position_holds(position, *holding, aggregated, &unit_greeks);
        for (g, group) in Grouping::AGGREGATES.into_iter().enumerate() {
            let key = group.key_of(position).to_owned();
            let row = rows
                .entry((g, key.clone(), position.underlying.clone()))
                .or_insert_with(|| empty_row(group, key, &position.underlying));
            add(row, position.units(), &greeks, spot, &holds);
        }
    }
    rows.into_values().collect()
}

fn empty_row(group: Grouping, key: String, underlying: &str) -> ExposureRow {
    ExposureRow {
        group,
        key,
        underlying: underlying.to_owned(),
        linear_position: 0.0,
        option_position: 0.0,
        value: 0.0,
        delta: 0.0,
        delta_usd: 0.0,
        settlement_delta: 0.0,
        gamma: 0.0,
        gamma_usd: 0.0,
        vega: 0.0,
        vega_by_tenor: (0..=TENOR_BUCKETS.len())
            .map(|i| TenorVega {
                tenor: bucket_label(i),
                vega: 0.0,
            })
            .collect(),
        theta: 0.0,
        skew: 0.0,
        basis: 0.0,
        funding: 0.0,
        positions: 0,
    }
}

/// Spot, unit Greeks and what else one position holds.
fn position_holds(
    position: &Position,
    holding: Holding,
    aggregated: &AggregatedBook,
    unit_greeks: &[Vec<Greeks>],
) -> (f64, Greeks, Holdings) {
    let units = position.units();
    let spot = match holding {
        Holding::Cash { balance } => aggregated.cash[balance].price,
        Holding::Linear { underlying }
        | Holding::Option { underlying, .. }
        | Holding::DeltaOne { underlying, .. } => aggregated.underlyings[underlying].quote.spot,
    };
    let mut holds = Holdings {
        bucket: None,
        skew_loading: 0.0,
        linear: units,
        option: 0.0,
        value: 0.0,
        settlement_delta: None,
        basis: 0.0,
        funding: 0.0,
    };
    let greeks = match holding {
        Holding::Cash { .. } => {
            holds.value = units * spot;
            PEGGED_GREEKS
        }
        Holding::Linear { .. } => {
            if position.instrument.carries_value() {
                holds.value = units * spot;
            }
            LINEAR_GREEKS
        }
        Holding::Option { underlying, option } => {
            let greeks = unit_greeks[underlying][option];
            holds.bucket = Some(bucket_of(
                aggregated.underlyings[underlying].options[option].tau,
            ));
            holds.skew_loading = vol_per_slope(aggregated, underlying, option);
            holds.linear = 0.0;
            holds.option = units;
            holds.value = units * greeks.price;
            if position.settlement == Settlement::Inverse {
                holds.settlement_delta = Some(units * greeks.in_coin(spot).delta);
            }
            greeks
        }
        Holding::DeltaOne {
            underlying,
            contract,
        } => {
            let u = &aggregated.underlyings[underlying];
            let c = &u.delta_one[contract];
            let carry = (u.quote.basis * c.tau).exp();
            let inverse = c.key.settlement == Settlement::Inverse;
            // a coin-settled contract's face buys face/F_0 coins of exposure
            holds.linear = if inverse { units / c.forward } else { units };
            Greeks {
                delta: if inverse { 1.0 / c.forward } else { carry },
                ..PEGGED_GREEKS
            }
        }
    };
    holds.basis = basis_per_point(position, aggregated, holding, spot, units);
    if position.instrument == Instrument::Perpetual {
        // one day's funding at 0.01 more: a linear perpetual on units·S, a coin-settled one
        // on its USD face
        let notional = if position.settlement == Settlement::Inverse {
            units
        } else {
            units * spot
        };
        holds.funding = -notional * 0.01 / DAYS_PER_YEAR;
    }
    (spot, greeks, holds)
}

/// Value change of a future for +0.01 of the annualised basis y (F = S·e^{y·τ}): units·F·τ
/// per point when USD-settled, face·τ·e^{−y·τ} when coin-settled; 0 without an expiry.
fn basis_per_point(
    position: &Position,
    aggregated: &AggregatedBook,
    holding: Holding,
    spot: f64,
    units: f64,
) -> f64 {
    let Instrument::Future {
        expiry: Some(expiry),
    } = position.instrument
    else {
        return 0.0;
    };
    let (Holding::Linear { underlying } | Holding::DeltaOne { underlying, .. }) = holding else {
        return 0.0;
    };
    let tau = years_between(aggregated.valuation_time, expiry);
    let carry = (aggregated.underlyings[underlying].quote.basis * tau).exp();
    let per_unit = if position.settlement == Settlement::Inverse {
        tau / carry
    } else {
        spot * carry * tau
    };
    units * per_unit * 0.01
}

/// Greeks of one unit of a pegged balance (USD, a stablecoin): no sensitivity to any factor.
const PEGGED_GREEKS: Greeks = Greeks {
    price: 0.0,
    delta: 0.0,
    gamma: 0.0,
    vega: 0.0,
    theta: 0.0,
};

/// Greeks of one unit of a delta-one instrument.
const LINEAR_GREEKS: Greeks = Greeks {
    price: 0.0,
    delta: 1.0,
    gamma: 0.0,
    vega: 0.0,
    theta: 0.0,
};

fn unit_greeks(aggregated: &AggregatedBook) -> Vec<Vec<Greeks>> {
    aggregated
        .underlyings
        .iter()
        .map(|u| {
            u.options
                .iter()
                .map(|o| {
                    bs_greeks(
                        o.option_type,
                        u.quote.spot,
                        o.strike,
                        o.tau,
                        o.vol,
                        u.quote.rate,
                    )
                })
                .collect()
        })
        .collect()
}

/// σ · [`skew_loading`] of an option today (T its days to expiry, F the forward to its
/// expiry): its vol's change per unit change of the 30-day smile slope.
fn vol_per_slope(aggregated: &AggregatedBook, underlying: usize, option: usize) -> f64 {
    let u = &aggregated.underlyings[underlying];
    let o = &u.options[option];
    let forward = u.quote.spot * (u.quote.rate * o.tau).exp();
    o.vol * skew_loading(o.strike, forward, o.tau * DAYS_PER_YEAR)
}

/// What one position adds to a row besides its Greeks.
struct Holdings {
    /// The tenor bucket of an option.
    bucket: Option<usize>,
    /// [`skew_loading`] of an option, 0 for delta-one.
    skew_loading: f64,
    /// Delta-one position in coins.
    linear: f64,
    option: f64,
    value: f64,
    /// A coin-settled option's delta in coin ([`crate::pricing::black_scholes::CoinGreeks`]);
    /// `None`: the same as its delta.
    settlement_delta: Option<f64>,
    basis: f64,
    funding: f64,
}

fn add(row: &mut ExposureRow, units: f64, g: &Greeks, spot: f64, holds: &Holdings) {
    row.linear_position += holds.linear;
    row.option_position += holds.option;
    row.value += holds.value;
    row.delta += units * g.delta;
    row.delta_usd += units * g.delta * spot;
    row.settlement_delta += holds.settlement_delta.unwrap_or(units * g.delta);
    row.basis += holds.basis;
    row.funding += holds.funding;
    row.gamma += units * g.gamma;
    row.gamma_usd += units * g.gamma * spot * spot / 100.0;
    row.vega += units * g.vega;
    if let Some(bucket) = holds.bucket {
        row.vega_by_tenor[bucket].vega += units * g.vega;
    }
    row.theta += units * g.theta;
    // vega is per vol point (0.01 of σ): dV = vega · 100 · dσ, dσ = 0.01 · loading
    row.skew += units * g.vega * holds.skew_loading;
    row.positions += 1;
}
