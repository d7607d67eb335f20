//! The positions file: who holds what, where and with whom (SPEC "Positions file columns").
//!
//! Every row is validated against the market (the underlying must be quoted) and the
//! valuation time (an option must not have expired); errors name file, row and field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rayon::prelude::*;

use crate::book::instrument::{Instrument, OptionContract, OptionType, Settlement};
use crate::error::{Error, Location, Result};
use crate::input::table::{Row, Table};
use crate::input::venue::VenueSpec;
use crate::market::{pegged_price, MarketData};
use crate::model::factors::FactorModel;

/// Venue and book of a position whose file leaves them empty.
pub const UNASSIGNED: &str = "unassigned";

/// One position as held: an instrument, a signed size and where it sits.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// Unique id from the file.
    pub id: String,
    /// What the position holds: spot, perpetual, future or an option contract.
    pub instrument: Instrument,
    /// Underlying name, quoted in the market file.
    pub underlying: String,
    /// Signed number of contracts (or coins for spot); negative is short.
    pub quantity: f64,
    /// Contract size: units of the underlying for linear contracts, the USD face per contract
    /// for coin-settled futures and perpetuals.
    pub multiplier: f64,
    /// The currency the contract settles in: USD (`linear`) or its coin (`inverse`).
    pub settlement: Settlement,
    /// Venue (exchange) holding the position; [`UNASSIGNED`] when the file leaves it empty.
    pub venue: String,
    /// Legal counterparty (the venue unless the file says otherwise).
    pub counterparty: String,
    /// Desk / strategy tag.
    pub book: String,
    /// Where the position sits in its file, for later messages.
    pub row: Location,
}

impl Position {
    /// quantity × multiplier: units of the underlying, except for a coin-settled future or
    /// perpetual, whose multiplier is a USD face, where it is the USD face held.
    pub fn units(&self) -> f64 {
        self.quantity * self.multiplier
    }
}

/// All positions of a portfolio file.
#[derive(Debug, Clone)]
pub struct Book {
    /// The positions file the book was read from (named in errors).
    pub file: PathBuf,
    /// The positions, in file order.
    pub positions: Vec<Position>,
}

impl Book {
    /// Reads a positions file (CSV or Parquet) and validates every row against `market` and
    /// the valuation time.
    pub fn load(path: &Path, market: &MarketData, valuation_time: DateTime<Utc>) -> Result<Book> {
        let table = Table::read(path)?;
        if table.is_empty() {
            return Err(Error::in_file(path, "positions file has no rows"));
        }
        Book::from_table(&table, market, valuation_time)
    }

    /// The positions of a table with the positions file's columns (a file read, or the
    /// service's records), validated against `market` and the valuation time; errors name
    /// the table's source, row and field.
    pub fn from_table(
        table: &Table,
        market: &MarketData,
        valuation_time: DateTime<Utc>,
    ) -> Result<Book> {
        let path = table.file();
        for column in ["id", "kind", "underlying", "quantity"] {
            table.require_column(column)?;
        }
        // rows parse independently (side by side); errors are then taken in row order
        let rows: Vec<Row> = table.rows().collect();
        let parsed: Vec<Result<Position>> = rows
            .par_iter()
            .map(|row| parse_position(row, market, valuation_time))
            .collect();
        let mut seen = HashSet::new();
        let mut positions = Vec::with_capacity(table.len());
        for (row, position) in rows.iter().zip(parsed) {
            let position = position?;
            if !seen.insert(position.id.clone()) {
                return Err(row.error("id", format!("'{}' appears twice", position.id)));
            }
            positions.push(position);
        }
        Ok(Book {
            file: path.to_path_buf(),
            positions,
        })
    }
}

impl Book {
    /// Adds every `[[venue]]` entry's `collateral` as cash balances held on that venue (ids
    /// `collateral:{venue}:{currency}`, book `collateral`), so that collateral counts in the
    /// book's value and P&L like any balance. A currency must be USD, a USD stablecoin or an
    /// underlying of `model` quoted in `market`; `scenario` is named in errors.
    pub fn with_venue_collateral(
        mut self,
        venues: &[VenueSpec],
        market: &MarketData,
        model: &FactorModel,
        scenario: &Path,
    ) -> Result<Book> {
        for (i, venue) in venues.iter().enumerate() {
            for (currency, &amount) in &venue.collateral {
                let modelled =
                    model.underlying_index(currency).is_some() && market.quote(currency).is_some();
                if !modelled && pegged_price(market, currency).is_none() {
                    return Err(Error::input(
                        scenario,
                        Location::File,
                        Some(&format!("venue[{i}].collateral.{currency}")),
                        format!(
                            "'{currency}' is neither USD, a USD stablecoin nor a modelled, \
                             quoted coin"
                        ),
                    ));
                }
                let id = format!("collateral:{}:{currency}", venue.name);
                if self.positions.iter().any(|p| p.id == id) {
                    return Err(Error::input(
                        scenario,
                        Location::File,
                        Some(&format!("venue[{i}].collateral.{currency}")),
                        format!("the positions file already has a position '{id}'"),
                    ));
                }
                self.positions.push(Position {
                    id,
                    instrument: Instrument::Cash,
                    underlying: currency.clone(),
                    quantity: amount,
                    multiplier: 1.0,
                    settlement: Settlement::Linear,
                    venue: venue.name.clone(),
                    counterparty: venue.name.clone(),
                    book: "collateral".to_owned(),
                    row: Location::File,
                });
            }
        }
        Ok(self)
    }
}

fn parse_position(
    row: &Row,
    market: &MarketData,
    valuation_time: DateTime<Utc>,
) -> Result<Position> {
    let quantity = row.number("quantity")?;
    parse_holding(row, market, valuation_time, quantity)
}

/// A positions-file row's instrument and placement (every column but `quantity`), held in
/// `quantity`: what a hedge candidate is, before a size is chosen.
pub(crate) fn parse_holding(
    row: &Row,
    market: &MarketData,
    valuation_time: DateTime<Utc>,
    quantity: f64,
) -> Result<Position> {
    let id = row.required_text("id")?.to_owned();
    let underlying = row.required_text("underlying")?;
    let instrument = parse_instrument(row, valuation_time)?;
    let pegged = instrument == Instrument::Cash && pegged_price(market, underlying).is_some();
    if market.quote(underlying).is_none() && !pegged {
        let known: Vec<&str> = market.underlyings().collect();
        return Err(row.error(
            "underlying",
            format!(
                "unknown underlying '{underlying}': not in the market file {} (it has {})",
                market.file.display(),
                known.join(", ")
            ),
        ));
    }
    let multiplier = row.optional_number("multiplier")?.unwrap_or(1.0);
    if multiplier <= 0.0 {
        return Err(row.error(
            "multiplier",
            format!("must be positive, found {multiplier}"),
        ));
    }
    if instrument == Instrument::Cash && multiplier != 1.0 {
        return Err(row.error(
            "multiplier",
            format!("a cash balance is a quantity of its currency: leave the multiplier empty, found {multiplier}"),
        ));
    }
    let settlement = parse_settlement(row, &instrument)?;
    let venue = row.text("venue").unwrap_or(UNASSIGNED).to_owned();
    Ok(Position {
        id,
        instrument,
        underlying: underlying.to_owned(),
        quantity,
        multiplier,
        settlement,
        counterparty: row.text("counterparty").unwrap_or(&venue).to_owned(),
        venue,
        book: row.text("book").unwrap_or(UNASSIGNED).to_owned(),
        row: row.location(),
    })
}

fn parse_instrument(row: &Row, valuation_time: DateTime<Utc>) -> Result<Instrument> {
    let kind = row.required_text("kind")?;
    match kind.to_ascii_lowercase().as_str() {
        "spot" => Ok(Instrument::Spot),
        "perpetual" | "perp" => Ok(Instrument::Perpetual),
        "future" | "futures" => Ok(Instrument::Future {
            expiry: row
                .text("expiry")
                .map(|_| row.expiry_after("expiry", valuation_time))
                .transpose()?,
        }),
        "option" => parse_option(row, valuation_time).map(Instrument::Option),
        "cash" | "balance" => Ok(Instrument::Cash),
        _ => Err(row.error(
            "kind",
            format!("expected spot, perpetual, future, option or cash, found '{kind}'"),
        )),
    }
}

/// The `settlement` column: `linear` (the default) or `inverse`, which only contracts
/// (futures, perpetuals, options) can be.
fn parse_settlement(row: &Row, instrument: &Instrument) -> Result<Settlement> {
    let settlement = match row
        .text("settlement")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("linear") | Some("usd") => Settlement::Linear,
        Some("inverse") | Some("coin") => Settlement::Inverse,
        Some(other) => {
            return Err(row.error(
                "settlement",
                format!("expected linear or inverse, found '{other}'"),
            ))
        }
    };
    if settlement == Settlement::Inverse
        && matches!(instrument, Instrument::Spot | Instrument::Cash)
    {
        return Err(row.error(
            "settlement",
            format!(
                "a {} position is the coin itself: only futures, perpetuals and options can be \
                 inverse",
                instrument.kind_name()
            ),
        ));
    }
    Ok(settlement)
}

fn parse_option(row: &Row, valuation_time: DateTime<Utc>) -> Result<OptionContract> {
    let option_type = match row
        .required_text("option_type")?
        .to_ascii_lowercase()
        .as_str()
    {
        "call" | "c" => OptionType::Call,
        "put" | "p" => OptionType::Put,
        other => {
            return Err(row.error(
                "option_type",
                format!("expected call or put, found '{other}'"),
            ))
        }
    };
    let strike = row.positive_number("strike")?;
    let expiry = row.expiry_after("expiry", valuation_time)?;
    let implied_vol = row.optional_number("implied_vol")?;
    if let Some(vol) = implied_vol {
        if vol <= 0.0 {
            return Err(row.error(
                "implied_vol",
                format!("must be positive (0.55 means 55 %), found {vol}"),
            ));
        }
    }
    Ok(OptionContract {
        option_type,
        strike,
        expiry,
        implied_vol,
    })
}
