//! Reading an implied-vol history for calibration. Two layouts, told apart by their columns:
//!
//! - **wide** (levels): a date column, then one implied-vol level column per underlying,
//!   named `U` or `U:vol` (read by
//!   [`PriceHistory::from_table`](crate::stress::replay::PriceHistory::from_table)); one
//!   factor `U.vol`;
//! - **long** (pillars): columns `date, underlying, tenor_days, vol`, one row per date,
//!   underlying and tenor pillar; one factor `U.vol.{N}d` per distinct tenor of U. A file with
//!   an `underlying` or a `tenor_days` column is read as long and must have all four.
//!
//! In the long layout `date` is `YYYY-MM-DD`, `tenor_days` a whole number of calendar days
//! ≥ 1 (`30` or `30.0`), `vol` the ATM implied vol at that tenor, a finite number above 0
//! (a fraction, 0.55 = 55 %; only ratios of successive levels enter the calibration, so a
//! file consistently in percent gives the same result). A (date, underlying, tenor_days)
//! given twice is an error; so is a pillar with fewer than [`MIN_PILLAR_OBSERVATIONS`]
//! dates. Rows of underlyings that are not calibrated (absent from the price history or not
//! chosen) are checked like the others, then ignored, and listed in
//! [`PillarHistory::ignored`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::error::{Error, Location, Result};
use crate::input::table::{Row, Table};

/// The columns of the long (pillar) layout, all required.
pub const PILLAR_COLUMNS: [&str; 4] = ["date", "underlying", "tenor_days", "vol"];

/// Fewest dates of one (underlying, tenor) pillar: 3 levels give the 2 returns a volatility
/// needs.
pub const MIN_PILLAR_OBSERVATIONS: usize = 3;

/// ATM implied-vol levels per underlying and tenor pillar, from a long vol history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PillarHistory {
    /// underlying → tenor in calendar days → (date, ATM implied vol as a fraction), dates
    /// ascending.
    pub series: BTreeMap<String, BTreeMap<u32, Vec<(NaiveDate, f64)>>>,
    /// Underlyings of the file that are not calibrated, sorted; their rows were ignored.
    pub ignored: Vec<String>,
}

/// True when `table` is in the long pillar layout: it has an `underlying` or a `tenor_days`
/// column (a wide file names its columns after underlyings).
pub fn is_pillar_table(table: &Table) -> bool {
    table.column("underlying").is_some() || table.column("tenor_days").is_some()
}

/// Reads a long vol history, keeping the rows of `underlyings` (every row is validated).
pub fn read_pillars(table: &Table, underlyings: &[&str]) -> Result<PillarHistory> {
    let path = table.file();
    for column in PILLAR_COLUMNS {
        table.require_column(column)?;
    }
    if table.is_empty() {
        return Err(Error::in_file(path, "the vol history has no data rows"));
    }
    // (underlying, tenor) → date → (vol, data row of its first occurrence)
    let mut points: BTreeMap<(String, u32), BTreeMap<NaiveDate, (f64, usize)>> = BTreeMap::new();
    let mut ignored = BTreeSet::new();
    for row in table.rows() {
        let date = date(&row)?;
        let underlying = row.required_text("underlying")?;
        let tenor = tenor_days(&row)?;
        let vol = row.number("vol")?;
        if vol <= 0.0 {
            return Err(row.error("vol", format!("implied vol must be positive, found {vol}")));
        }
        let pillar = points.entry((underlying.to_owned(), tenor)).or_default();
        if let Some(&(_, first)) = pillar.get(&date) {
            return Err(row.error(
                "date",
                format!("{underlying} at {tenor} days on {date} is already given in row {first}"),
            ));
        }
        pillar.insert(date, (vol, row_number(&row)));
        if !underlyings.contains(&underlying) {
            ignored.insert(underlying.to_owned());
        }
    }
    let mut series: BTreeMap<String, BTreeMap<u32, Vec<(NaiveDate, f64)>>> = BTreeMap::new();
    for ((underlying, tenor), levels) in points {
        if ignored.contains(&underlying) {
            continue;
        }
        if levels.len() < MIN_PILLAR_OBSERVATIONS {
            let first = levels.values().map(|&(_, row)| row).min().unwrap_or(1);
            return Err(Error::in_row(
                path,
                location(table, first),
                "tenor_days",
                format!(
                    "{underlying} at {tenor} days has {} date(s); a pillar needs at least \
                     {MIN_PILLAR_OBSERVATIONS}",
                    levels.len()
                ),
            ));
        }
        series.entry(underlying).or_default().insert(
            tenor,
            levels.into_iter().map(|(d, (v, _))| (d, v)).collect(),
        );
    }
    if series.is_empty() {
        return Err(Error::input(
            path,
            Location::File,
            Some("underlying"),
            format!(
                "no rows for any underlying of the price history ({}); the file has {}",
                underlyings.join(", "),
                ignored.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(PillarHistory {
        series,
        ignored: ignored.into_iter().collect(),
    })
}

/// The `date` of a row.
fn date(row: &Row<'_>) -> Result<NaiveDate> {
    let text = row.required_text("date")?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        row.error(
            "date",
            format!("expected a date like 2020-01-17, found '{text}'"),
        )
    })
}

/// The `tenor_days` of a row: a whole number of days, at least 1.
fn tenor_days(row: &Row<'_>) -> Result<u32> {
    let value = row.number("tenor_days")?;
    if value < 1.0 || value.fract() != 0.0 || value > f64::from(u32::MAX) {
        return Err(row.error(
            "tenor_days",
            format!("expected a whole number of days of at least 1, found {value}"),
        ));
    }
    Ok(value as u32)
}

/// The data row number (from 1) of a row.
fn row_number(row: &Row<'_>) -> usize {
    match row.location() {
        Location::Row { row, .. } => row,
        _ => 0,
    }
}

/// The location of data row `row` (from 1) of `table`, as [`Row::location`] gives it.
fn location(table: &Table, row: usize) -> Location {
    table
        .rows()
        .nth(row.saturating_sub(1))
        .map_or(Location::File, |r| r.location())
}
