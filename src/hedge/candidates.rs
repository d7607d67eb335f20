//! Hedge candidates: the instruments a hedge may trade, what trading them costs and how much
//! of them it may trade.
//!
//! A candidates file has the positions file's columns (`quantity` is not read: the hedge
//! chooses it) plus, all optional:
//! - `cost`: fees per unit traded either way, USD (added to the spread below);
//! - `bid`, `ask`: quotes per unit, USD. Buying pays ask − V₀ over the model value V₀ and
//!   selling V₀ − bid; a quote on the wrong side of V₀ counts as costless (the hedge does not
//!   trade on the model's disagreement with the market);
//! - `min_quantity`, `max_quantity`: bounds on the signed quantity traded (none by default);
//! - `lot`: the quantity increment the trade is rounded to at the end.
//!
//! Without a file, the candidates are one linear perpetual per coin the book holds, costing
//! [`DEFAULT_PERPETUAL_FEE`] of the notional per unit, unbounded, without lots.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::book::instrument::{Instrument, Settlement};
use crate::book::positions::{parse_holding, Book, Position, UNASSIGNED};
use crate::error::{Error, Location, Result};
use crate::input::job::Job;
use crate::input::table::{Row, Table};

/// Cost per unit of a default perpetual candidate, as a fraction of its notional: a taker
/// fee of 5 basis points (Binance's and Deribit's published taker fees are 0.04–0.05 %).
pub const DEFAULT_PERPETUAL_FEE: f64 = 0.0005;

/// One instrument a hedge may trade.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The instrument, held in quantity 1 (its id, underlying, multiplier, venue, …).
    pub position: Position,
    /// Model value today of one unit, USD (0 for perpetuals and futures).
    pub unit_value: f64,
    /// Cost of buying one unit, USD, ≥ 0.
    pub buy_cost: f64,
    /// Cost of selling one unit, USD, ≥ 0.
    pub sell_cost: f64,
    /// Least signed quantity (−∞ for none).
    pub min_quantity: f64,
    /// Largest signed quantity (+∞ for none).
    pub max_quantity: f64,
    /// Quantity increment of the final trade, if any.
    pub lot: Option<f64>,
}

/// The candidates of a hedge and the file they came from (`None` for the defaults).
#[derive(Debug, Clone)]
pub struct Candidates {
    /// The candidates file, named in errors; `None` for the default perpetuals.
    pub file: Option<PathBuf>,
    /// The candidates, in file order.
    pub list: Vec<Candidate>,
}

impl Candidates {
    /// Reads a candidates file against the job's market and valuation time. Ids must differ
    /// from each other and from the book's.
    pub fn load(path: &Path, job: &Job) -> Result<Candidates> {
        let table = Table::read(path)?;
        if table.is_empty() {
            return Err(Error::in_file(path, "candidates file has no rows"));
        }
        for column in ["id", "kind", "underlying"] {
            table.require_column(column)?;
        }
        let book_ids: HashSet<&str> = job.book.positions.iter().map(|p| p.id.as_str()).collect();
        let mut seen = HashSet::new();
        let mut list = Vec::with_capacity(table.len());
        for row in table.rows() {
            let position = parse_holding(&row, &job.market, job.valuation_time, 1.0)?;
            if position.instrument == Instrument::Cash {
                return Err(row.error("kind", "a cash balance is not a tradable hedge"));
            }
            if !seen.insert(position.id.clone()) {
                return Err(row.error("id", format!("'{}' appears twice", position.id)));
            }
            if book_ids.contains(position.id.as_str()) {
                return Err(row.error(
                    "id",
                    format!(
                        "'{}' is already a position id in {}; give the candidate its own id",
                        position.id,
                        job.book.file.display()
                    ),
                ));
            }
            let unit_value = unit_value(&position, job)?;
            list.push(candidate_terms(&row, position, unit_value)?);
        }
        Ok(Candidates {
            file: Some(path.to_path_buf()),
            list,
        })
    }

    /// One linear perpetual (multiplier 1) per coin the book holds, in model order, id
    /// `hedge-{coin}-perp` (with a number appended while the book already uses it), costing
    /// [`DEFAULT_PERPETUAL_FEE`] of spot per unit.
    pub fn default_perpetuals(job: &Job) -> Candidates {
        let taken: HashSet<&str> = job.book.positions.iter().map(|p| p.id.as_str()).collect();
        let list = job
            .aggregated
            .underlyings
            .iter()
            .map(|u| {
                let fee = DEFAULT_PERPETUAL_FEE * u.quote.spot;
                let mut position = perpetual(&u.name);
                let base = position.id.clone();
                let mut n = 1;
                while taken.contains(position.id.as_str()) {
                    n += 1;
                    position.id = format!("{base}-{n}");
                }
                Candidate {
                    position,
                    unit_value: 0.0,
                    buy_cost: fee,
                    sell_cost: fee,
                    min_quantity: f64::NEG_INFINITY,
                    max_quantity: f64::INFINITY,
                    lot: None,
                }
            })
            .collect();
        Candidates { file: None, list }
    }

    /// Where candidate `index` came from, for messages.
    pub fn origin(&self, index: usize) -> String {
        match &self.file {
            Some(file) => format!("{} ({})", self.list[index].position.id, file.display()),
            None => format!("{} (default perpetual)", self.list[index].position.id),
        }
    }
}

/// A linear perpetual on `underlying` of multiplier 1, quantity 1.
fn perpetual(underlying: &str) -> Position {
    Position {
        id: format!("hedge-{underlying}-perp"),
        instrument: Instrument::Perpetual,
        underlying: underlying.to_owned(),
        quantity: 1.0,
        multiplier: 1.0,
        settlement: Settlement::Linear,
        venue: UNASSIGNED.to_owned(),
        counterparty: UNASSIGNED.to_owned(),
        book: "hedge".to_owned(),
        row: Location::File,
    }
}

/// Model value today of one unit of `position` (quantity 1), USD.
fn unit_value(position: &Position, job: &Job) -> Result<f64> {
    let book = Book {
        file: job.book.file.clone(),
        positions: vec![position.clone()],
    };
    let netted = job.net(&book)?;
    Ok(netted.base_value())
}

/// The cost, bound and lot columns of a candidate row.
fn candidate_terms(row: &Row, position: Position, unit_value: f64) -> Result<Candidate> {
    let fee = non_negative(row, "cost")?.unwrap_or(0.0);
    let bid = non_negative(row, "bid")?;
    let ask = non_negative(row, "ask")?;
    if let (Some(bid), Some(ask)) = (bid, ask) {
        if bid > ask {
            return Err(row.error("bid", format!("bid {bid} is above the ask {ask}")));
        }
    }
    let min_quantity = row
        .optional_number("min_quantity")?
        .unwrap_or(f64::NEG_INFINITY);
    let max_quantity = row
        .optional_number("max_quantity")?
        .unwrap_or(f64::INFINITY);
    if min_quantity > max_quantity {
        return Err(row.error(
            "min_quantity",
            format!("{min_quantity} is above max_quantity {max_quantity}"),
        ));
    }
    let lot = row.optional_number("lot")?;
    if let Some(lot) = lot {
        if lot <= 0.0 {
            return Err(row.error("lot", format!("must be positive, found {lot}")));
        }
        if (min_quantity / lot).ceil() > (max_quantity / lot).floor() {
            return Err(row.error(
                "lot",
                format!("no multiple of {lot} lies within [{min_quantity}, {max_quantity}]"),
            ));
        }
    }
    Ok(Candidate {
        position,
        unit_value,
        buy_cost: fee + ask.map_or(0.0, |a| (a - unit_value).max(0.0)),
        sell_cost: fee + bid.map_or(0.0, |b| (unit_value - b).max(0.0)),
        min_quantity,
        max_quantity,
        lot,
    })
}

/// An optional number that must not be negative.
fn non_negative(row: &Row, field: &str) -> Result<Option<f64>> {
    let value = row.optional_number(field)?;
    match value {
        Some(v) if v < 0.0 => Err(row.error(field, format!("must not be negative, found {v}"))),
        _ => Ok(value),
    }
}
