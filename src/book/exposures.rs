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
use crate::book::positions::Book;
use crate::model::factors::skew_loading;
use crate::pricing::black_scholes::{bs_greeks, Greeks};
use crate::time::DAYS_PER_YEAR;

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
        let units = position.units();
        let (spot, greeks) = match *holding {
            Holding::Linear { underlying } => {
                (aggregated.underlyings[underlying].quote.spot, LINEAR_GREEKS)
            }
            Holding::Option { underlying, option } => (
                aggregated.underlyings[underlying].quote.spot,
                unit_greeks[underlying][option],
            ),
            Holding::Cash { balance } => (aggregated.cash[balance].price, PEGGED_GREEKS),
        };
        let holds = match holding {
            Holding::Cash { .. } => Holdings {
                bucket: None,
                skew_loading: 0.0,
                linear: units,
                option: 0.0,
                value: units * spot,
            },
            Holding::Linear { .. } => Holdings {
                bucket: None,
                skew_loading: 0.0,
                linear: units,
                option: 0.0,
                value: if position.instrument.carries_value() {
                    units * spot
                } else {
                    0.0
                },
            },
            Holding::Option { underlying, option } => Holdings {
                bucket: Some(bucket_of(
                    aggregated.underlyings[*underlying].options[*option].tau,
                )),
                skew_loading: vol_per_slope(aggregated, *underlying, *option),
                linear: 0.0,
                option: units,
                value: units * greeks.price,
            },
        };
        for (g, group) in Grouping::AGGREGATES.into_iter().enumerate() {
            let key = group.key_of(position).to_owned();
            let row = rows
                .entry((g, key.clone(), position.underlying.clone()))
                .or_insert_with(|| ExposureRow {
                    group,
                    key,
                    underlying: position.underlying.clone(),
                    linear_position: 0.0,
                    option_position: 0.0,
                    value: 0.0,
                    delta: 0.0,
                    delta_usd: 0.0,
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
                    positions: 0,
                });
            add(row, units, &greeks, spot, &holds);
        }
    }
    rows.into_values().collect()
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
    linear: f64,
    option: f64,
    value: f64,
}

fn add(row: &mut ExposureRow, units: f64, g: &Greeks, spot: f64, holds: &Holdings) {
    row.linear_position += holds.linear;
    row.option_position += holds.option;
    row.value += holds.value;
    row.delta += units * g.delta;
    row.delta_usd += units * g.delta * spot;
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
