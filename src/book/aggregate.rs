//! Netting positions into distinct instruments before revaluation, so that the cost of a run
//! grows with the number of distinct contracts and underlyings, not with the number of trades.
//!
//! - All delta-one positions (spot, perpetuals, futures) of an underlying net into one linear
//!   exposure in coins: their P&L is units × (S_h − S_0) whichever venue holds them.
//! - Options net per contract: same underlying, type, strike, expiry and mark vol (the same
//!   BTC option held on two venues is revalued once). Two marks of one contract stay apart,
//!   since they are valued differently.
//! - Cash balances in a modelled coin are linear exposure like spot; balances in USD or a USD
//!   stablecoin without a risk factor net per currency at their peg (moving only when the
//!   model gives the stablecoin a de-peg).
//! - Contracts whose P&L is more than units × (S_h − S_0) net per [`DeltaOneKey`]: coin-settled
//!   ("inverse") futures and perpetuals, perpetuals of an underlying with funding, and futures
//!   of an underlying with a basis (per expiry).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::book::instrument::{Instrument, OptionType, Settlement};
use crate::book::positions::Book;
use crate::error::{Error, Result};
use crate::market::vol_surface::VolSurface;
use crate::market::{pegged_price, MarketData, Quote};
use crate::model::factors::FactorModel;
use crate::pricing::black_scholes::bs_price;
use crate::time::years_between;

/// The furthest expiry, in years, of a future under a basis.
pub const MAX_FUTURE_YEARS: f64 = 50.0;

/// A distinct option contract with the net size held across all positions.
#[derive(Debug, Clone, PartialEq)]
pub struct NetOption {
    /// Call or put.
    pub option_type: OptionType,
    /// Strike in the reporting currency (USD) per unit of underlying.
    pub strike: f64,
    /// Expiry instant (UTC).
    pub expiry: DateTime<Utc>,
    /// Years of 365 days from the valuation time to expiry (positive).
    pub tau: f64,
    /// Annualised mark vol.
    pub vol: f64,
    /// Net units of underlying: Σ quantity × multiplier.
    pub units: f64,
    /// Today's price per unit of underlying.
    pub price: f64,
}

/// A futures or perpetual contract whose P&L is more than units × (S_h − S_0), netted over
/// every position with the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct NetDeltaOne {
    /// Settlement, kind and expiry.
    pub key: DeltaOneKey,
    /// Years of 365 days from the valuation time to expiry, 0 without a basis (F = S).
    pub tau: f64,
    /// Today's futures price F_0 = S_0·e^{y·τ} (y the market's basis), in USD.
    pub forward: f64,
    /// Net size: coins (Σ quantity × multiplier) when linear, USD face (Σ quantity × face)
    /// when coin-settled.
    pub units: f64,
}

/// What makes two delta-one contracts net together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeltaOneKey {
    /// USD- or coin-settled.
    pub settlement: Settlement,
    /// A perpetual (accrues funding) rather than a future.
    pub perpetual: bool,
    /// The future's expiry when the underlying has a basis (its F converges to S at it).
    pub expiry: Option<DateTime<Utc>>,
}

/// Everything the book holds on one underlying, netted.
#[derive(Debug, Clone, PartialEq)]
pub struct NetUnderlying {
    /// Underlying name, as in the market and positions files (e.g. `BTC`).
    pub name: String,
    /// Index of this underlying in the model's underlyings.
    pub model_index: usize,
    /// Today's market for the underlying: spot, ATM vol and rate.
    pub quote: Quote,
    /// Net delta-one units whose P&L is units × (S_h − S_0) (spot, balances, and USD-settled
    /// perpetuals and futures unless funding or basis applies), in coins.
    pub linear_units: f64,
    /// Net spot and coin-balance units only: the part of the linear exposure that carries
    /// value today.
    pub spot_units: f64,
    /// Distinct option contracts held on the underlying, in order of first appearance in the book;
    /// [`Holding::Option`] indexes into it.
    pub options: Vec<NetOption>,
    /// Futures and perpetuals netted per [`DeltaOneKey`], in order of first appearance;
    /// [`Holding::DeltaOne`] indexes into it.
    pub delta_one: Vec<NetDeltaOne>,
    /// The underlying's implied-vol surface, when the market has one: the smile the options
    /// move along under sticky-moneyness dynamics.
    pub surface: Option<VolSurface>,
}

/// A balance in USD or a USD stablecoin without a risk factor, netted per currency: worth its
/// peg, no P&L.
#[derive(Debug, Clone, PartialEq)]
pub struct CashBalance {
    /// The currency (`USD`, `USDT`, …).
    pub currency: String,
    /// Net units of the currency.
    pub units: f64,
    /// USD per unit ([`crate::market::pegged_price`]).
    pub price: f64,
}

/// Which netted instrument a position landed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// The linear exposure of underlying `underlying` (index into the aggregated book).
    Linear {
        /// Index into [`AggregatedBook::underlyings`].
        underlying: usize,
    },
    /// Option `option` of underlying `underlying`.
    Option {
        /// Index into [`AggregatedBook::underlyings`].
        underlying: usize,
        /// Index into that underlying's [`NetUnderlying::options`].
        option: usize,
    },
    /// Contract `contract` of underlying `underlying`'s [`NetUnderlying::delta_one`].
    DeltaOne {
        /// Index into [`AggregatedBook::underlyings`].
        underlying: usize,
        /// Index into that underlying's [`NetUnderlying::delta_one`].
        contract: usize,
    },
    /// Pegged balance `balance`.
    Cash {
        /// Index into [`AggregatedBook::cash`].
        balance: usize,
    },
}

/// Where a position goes while the book is netted (underlyings are ordered at the end).
enum Pending {
    /// A holding of the model's underlying.
    Net(usize, Slot),
    /// A pegged balance.
    Cash(usize),
}

/// The book netted per distinct instrument.
#[derive(Debug, Clone)]
pub struct AggregatedBook {
    /// Underlyings held, in model order.
    pub underlyings: Vec<NetUnderlying>,
    /// For each position of the book (same order), where it was netted.
    pub holdings: Vec<Holding>,
    /// Balances in USD and USD stablecoins without a risk factor, per currency in order of
    /// first appearance.
    pub cash: Vec<CashBalance>,
    /// Valuation time (UTC): option prices and times to expiry are as of this instant.
    pub valuation_time: DateTime<Utc>,
}

/// Where a position lands within its underlying.
#[derive(Clone, Copy)]
enum Slot {
    Linear,
    Option(usize),
    DeltaOne(usize),
}

type ContractKey = (OptionType, u64, DateTime<Utc>, u64);

impl AggregatedBook {
    /// Nets `book` using today's `market`; every underlying needs a factor in `model`
    /// (`scenario_file` is named when it lacks one).
    pub fn build(
        book: &Book,
        market: &MarketData,
        model: &FactorModel,
        valuation_time: DateTime<Utc>,
        scenario_file: &Path,
    ) -> Result<AggregatedBook> {
        let mut by_model_index: BTreeMap<usize, (NetUnderlying, BTreeMap<ContractKey, usize>)> =
            BTreeMap::new();
        let mut pending = Vec::with_capacity(book.positions.len());
        let mut cash: Vec<CashBalance> = Vec::new();
        for p in &book.positions {
            let pegged = (p.instrument == Instrument::Cash
                && model.underlying_index(&p.underlying).is_none())
            .then(|| pegged_price(market, &p.underlying))
            .flatten();
            if let Some(price) = pegged {
                let balance = cash
                    .iter()
                    .position(|c| c.currency == p.underlying)
                    .unwrap_or_else(|| {
                        cash.push(CashBalance {
                            currency: p.underlying.clone(),
                            units: 0.0,
                            price,
                        });
                        cash.len() - 1
                    });
                cash[balance].units += p.units();
                pending.push(Pending::Cash(balance));
                continue;
            }
            let model_index = model.underlying_index(&p.underlying).ok_or_else(|| {
                Error::in_row(
                    &book.file,
                    p.row.clone(),
                    "underlying",
                    format!(
                        "no risk factor for '{}': add [model.factors.{}] to {}",
                        p.underlying,
                        p.underlying,
                        scenario_file.display()
                    ),
                )
            })?;
            let quote = *market.quote(&p.underlying).ok_or_else(|| {
                Error::in_row(&book.file, p.row.clone(), "underlying", "not quoted")
            })?;
            let (net, contracts) = by_model_index.entry(model_index).or_insert_with(|| {
                let net = NetUnderlying {
                    name: p.underlying.clone(),
                    model_index,
                    quote,
                    linear_units: 0.0,
                    spot_units: 0.0,
                    options: Vec::new(),
                    delta_one: Vec::new(),
                    surface: market
                        .surfaces
                        .as_ref()
                        .and_then(|s| s.surface(&p.underlying))
                        .cloned(),
                };
                (net, BTreeMap::new())
            });
            let factors = &model.underlyings[model_index];
            let slot = match &p.instrument {
                Instrument::Option(c) => {
                    let tau = years_between(valuation_time, c.expiry);
                    let vol = c.implied_vol.unwrap_or_else(|| {
                        market
                            .option_vol(&p.underlying, c.strike, tau)
                            .unwrap_or(quote.atm_vol)
                    });
                    let key = (c.option_type, c.strike.to_bits(), c.expiry, vol.to_bits());
                    let next = net.options.len();
                    let index = *contracts.entry(key).or_insert(next);
                    if index == next {
                        net.options.push(NetOption {
                            option_type: c.option_type,
                            strike: c.strike,
                            expiry: c.expiry,
                            tau,
                            vol,
                            units: 0.0,
                            price: bs_price(
                                c.option_type,
                                quote.spot,
                                c.strike,
                                tau,
                                vol,
                                quote.rate,
                            ),
                        });
                    }
                    net.options[index].units += p.units();
                    Slot::Option(index)
                }
                Instrument::Spot | Instrument::Cash => {
                    net.spot_units += p.units();
                    net.linear_units += p.units();
                    Slot::Linear
                }
                Instrument::Perpetual | Instrument::Future { .. } => {
                    let has_basis = factors.basis.is_some() || quote.basis != 0.0;
                    let key = match p.instrument {
                        Instrument::Perpetual => (p.settlement == Settlement::Inverse
                            || factors.funding.is_some())
                        .then_some(DeltaOneKey {
                            settlement: p.settlement,
                            perpetual: true,
                            expiry: None,
                        }),
                        Instrument::Future { expiry } => {
                            let expiry = if has_basis {
                                let expiry = expiry.ok_or_else(|| {
                                    Error::in_row(
                                        &book.file,
                                        p.row.clone(),
                                        "expiry",
                                        format!(
                                            "a future on {} needs its expiry: the model or \
                                             market gives it a basis, which converges at expiry",
                                            p.underlying
                                        ),
                                    )
                                })?;
                                if years_between(valuation_time, expiry) > MAX_FUTURE_YEARS {
                                    return Err(Error::in_row(
                                        &book.file,
                                        p.row.clone(),
                                        "expiry",
                                        format!(
                                            "a future more than {MAX_FUTURE_YEARS} years away \
                                             under a basis: F = S·e^{{y·τ}} would be meaningless"
                                        ),
                                    ));
                                }
                                Some(expiry)
                            } else {
                                None
                            };
                            (p.settlement == Settlement::Inverse || expiry.is_some()).then_some(
                                DeltaOneKey {
                                    settlement: p.settlement,
                                    perpetual: false,
                                    expiry,
                                },
                            )
                        }
                        _ => None,
                    };
                    match key {
                        None => {
                            net.linear_units += p.units();
                            Slot::Linear
                        }
                        Some(key) => {
                            let index = net
                                .delta_one
                                .iter()
                                .position(|c| c.key == key)
                                .unwrap_or_else(|| {
                                    let tau = key
                                        .expiry
                                        .map_or(0.0, |e| years_between(valuation_time, e));
                                    net.delta_one.push(NetDeltaOne {
                                        key,
                                        tau,
                                        forward: quote.spot * (quote.basis * tau).exp(),
                                        units: 0.0,
                                    });
                                    net.delta_one.len() - 1
                                });
                            net.delta_one[index].units += p.units();
                            Slot::DeltaOne(index)
                        }
                    }
                }
            };
            pending.push(Pending::Net(model_index, slot));
        }
        let order: Vec<usize> = by_model_index.keys().copied().collect();
        let holdings = pending
            .into_iter()
            .map(|pending| match pending {
                Pending::Cash(balance) => Holding::Cash { balance },
                Pending::Net(model_index, slot) => {
                    let underlying = order.binary_search(&model_index).unwrap_or_default();
                    match slot {
                        Slot::Option(option) => Holding::Option { underlying, option },
                        Slot::DeltaOne(contract) => Holding::DeltaOne {
                            underlying,
                            contract,
                        },
                        Slot::Linear => Holding::Linear { underlying },
                    }
                }
            })
            .collect();
        Ok(AggregatedBook {
            underlyings: by_model_index.into_values().map(|(net, _)| net).collect(),
            holdings,
            cash,
            valuation_time,
        })
    }

    /// Today's mark-to-market value (SPEC `base_value`): spot and coin-balance units × S plus
    /// option units × price plus pegged balances; perpetuals and futures are margined and
    /// count 0.
    pub fn base_value(&self) -> f64 {
        let held: f64 = self
            .underlyings
            .iter()
            .map(|u| {
                u.spot_units * u.quote.spot
                    + u.options.iter().map(|o| o.units * o.price).sum::<f64>()
            })
            .sum();
        if self.cash.is_empty() {
            return held;
        }
        held + self.cash.iter().map(|c| c.units * c.price).sum::<f64>()
    }

    /// Number of distinct option contracts revalued on each path.
    pub fn option_count(&self) -> usize {
        self.underlyings.iter().map(|u| u.options.len()).sum()
    }

    /// Number of futures and perpetual contracts revalued apart from linear exposure
    /// (coin-settled, accruing funding or carrying a basis).
    pub fn delta_one_count(&self) -> usize {
        self.underlyings.iter().map(|u| u.delta_one.len()).sum()
    }
}
