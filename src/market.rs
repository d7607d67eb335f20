//! Market data: what the book is valued on. One row per underlying:
//! `underlying,spot,atm_vol,rate`, optionally `basis` (annualised futures basis) and `as_of`
//! (the valuation time).

pub mod currency;
pub mod vol_surface;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::input::table::Table;
use crate::time::parse_instant;
use vol_surface::VolSurfaces;

/// USD stablecoins a cash balance may be held in without a risk factor: each is worth 1 USD
/// unless the market file quotes it (a de-peg is not modelled yet).
pub const USD_STABLECOINS: [&str; 8] = [
    "USDT", "USDC", "DAI", "FDUSD", "TUSD", "USDP", "PYUSD", "BUSD",
];

/// The fixed USD price of a balance in `currency` held without a risk factor: 1 for USD, the
/// market file's spot (else 1) for a USD stablecoin, `None` for anything else.
pub fn pegged_price(market: &MarketData, currency: &str) -> Option<f64> {
    if currency == "USD" {
        return Some(1.0);
    }
    USD_STABLECOINS
        .contains(&currency)
        .then(|| market.quote(currency).map_or(1.0, |q| q.spot))
}

/// Largest |rate| or |basis| a market file may give, annualised (1000 %): beyond it forwards
/// overflow and the figure is surely a typo (5 for 5 %).
pub const MAX_ABS_RATE: f64 = 10.0;

/// An optional annualised rate column (0 when empty), refused beyond ±`limit`.
fn bounded(row: &crate::input::table::Row, field: &str, limit: f64) -> Result<f64> {
    let value = row.optional_number(field)?.unwrap_or(0.0);
    if value.abs() > limit {
        return Err(row.error(
            field,
            format!("an annualised rate of {value} is beyond ±{limit} (0.05 means 5 %/year)"),
        ));
    }
    Ok(value)
}

/// Today's market for one underlying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    /// Spot price in reporting currency per unit.
    pub spot: f64,
    /// Annualised at-the-money implied vol (fraction): the mark of options without their own.
    pub atm_vol: f64,
    /// Continuously compounded annual rate, also the carry of options (b = r).
    pub rate: f64,
    /// Annualised basis y of dated futures, ln(F/S)/τ (optional `basis` column, default 0):
    /// a future expiring in τ years trades at S·e^{y·τ}.
    pub basis: f64,
}

/// The market file, validated.
#[derive(Debug, Clone)]
pub struct MarketData {
    /// The file it came from.
    pub file: PathBuf,
    /// The `as_of` column's time, if the file has one.
    pub as_of: Option<DateTime<Utc>>,
    quotes: BTreeMap<String, Quote>,
    /// Implied-vol surfaces, when the scenario gives a surface file.
    pub surfaces: Option<VolSurfaces>,
}

impl MarketData {
    /// Reads and validates a market file (CSV or Parquet).
    pub fn load(path: &Path) -> Result<MarketData> {
        let table = Table::read(path)?;
        if table.is_empty() {
            return Err(Error::in_file(path, "market file has no rows"));
        }
        for column in ["underlying", "spot", "atm_vol"] {
            table.require_column(column)?;
        }
        let mut quotes = BTreeMap::new();
        let mut as_of = None;
        for row in table.rows() {
            let underlying = row.required_text("underlying")?;
            let quote = Quote {
                spot: positive(row.number("spot")?, || {
                    row.error("spot", "spot must be positive")
                })?,
                atm_vol: positive(row.number("atm_vol")?, || {
                    row.error("atm_vol", "implied vol must be positive (0.55 means 55 %)")
                })?,
                rate: bounded(&row, "rate", MAX_ABS_RATE)?,
                basis: bounded(&row, "basis", MAX_ABS_RATE)?,
            };
            if quotes.insert(underlying.to_owned(), quote).is_some() {
                return Err(row.error("underlying", format!("'{underlying}' appears twice")));
            }
            if let Some(text) = row.text("as_of") {
                let time = parse_instant(text, 0).ok_or_else(|| {
                    row.error(
                        "as_of",
                        format!("expected an ISO 8601 UTC time, found '{text}'"),
                    )
                })?;
                if as_of.is_some_and(|t| t != time) {
                    return Err(row.error("as_of", "differs from an earlier row's as_of"));
                }
                as_of = Some(time);
            }
        }
        Ok(MarketData {
            file: path.to_path_buf(),
            as_of,
            quotes,
            surfaces: None,
        })
    }

    /// The quote of an underlying, if the market file has it.
    pub fn quote(&self, underlying: &str) -> Option<&Quote> {
        self.quotes.get(underlying)
    }

    /// The mark vol (annualised fraction) of an option on `underlying` with `strike`
    /// expiring `tau` years from the valuation time: its surface's, else the ATM vol; `None`
    /// when the underlying is not quoted.
    pub fn option_vol(&self, underlying: &str, strike: f64, tau: f64) -> Option<f64> {
        let surface = self.surfaces.as_ref().and_then(|s| s.surface(underlying));
        match surface {
            Some(surface) => Some(surface.vol(strike, tau)),
            None => self.quote(underlying).map(|q| q.atm_vol),
        }
    }

    /// The underlyings quoted, sorted.
    pub fn underlyings(&self) -> impl Iterator<Item = &str> {
        self.quotes.keys().map(String::as_str)
    }

    /// Moves a quoted underlying's spot and/or ATM vol (a live market update); the message
    /// says which value is wrong when one is not finite and positive, or the underlying is
    /// not quoted.
    pub fn update(
        &mut self,
        underlying: &str,
        spot: Option<f64>,
        atm_vol: Option<f64>,
    ) -> std::result::Result<(), String> {
        let Some(quote) = self.quotes.get_mut(underlying) else {
            return Err(format!(
                "unknown underlying '{underlying}': the market quotes {}",
                self.quotes.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        for (name, value) in [("spot", spot), ("atm_vol", atm_vol)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(format!("{name} must be a finite number above 0, found {v}"));
            }
        }
        quote.spot = spot.unwrap_or(quote.spot);
        quote.atm_vol = atm_vol.unwrap_or(quote.atm_vol);
        Ok(())
    }
}

fn positive(value: f64, error: impl FnOnce() -> Error) -> Result<f64> {
    if value > 0.0 {
        Ok(value)
    } else {
        Err(error())
    }
}
