//! Historical replay: every N-day move of a daily price history applied to today's book.
//!
//! The price file is wide: a date column (`date`, or the first column) and one column per
//! underlying, named `BTC` or `BTC:close` (the shipped data's style); CSV or Parquet. Gaps
//! are allowed: empty cells are skipped, assets may start later. The move of an underlying
//! over the window ending on date t is P(t)/P(s) − 1 with s the last date at or before
//! t − N days that has a price, taken only if s lies within the window's length again
//! (t − 2N < s); otherwise that underlying is listed as missing for the window and does not
//! move. Implied vols do not move (the history has no vols). Underlyings of the book without
//! a column do not move either and are reported.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::error::{Error, Location, Result};
use crate::input::table::Table;
use crate::stress::scenarios::StressBook;

/// Daily closes per underlying, sorted by date.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceHistory {
    /// underlying → (date, price) ascending.
    pub series: BTreeMap<String, Vec<(NaiveDate, f64)>>,
}

impl PriceHistory {
    /// Reads the price columns of `underlyings` that the file has (`U` or `U:close`).
    pub fn load(path: &Path, underlyings: &[&str]) -> Result<PriceHistory> {
        Self::load_levels(path, Some(underlyings), ":close")
    }

    /// Reads level columns named `U` or `U{suffix}` (e.g. `BTC:close`, `BTC:vol`) for
    /// `underlyings`, or for every such column when `None` (if any column has the suffix,
    /// only those; else every column but the date).
    pub fn load_levels(
        path: &Path,
        underlyings: Option<&[&str]>,
        suffix: &str,
    ) -> Result<PriceHistory> {
        Self::from_table(&Table::read(path)?, underlyings, suffix)
    }

    /// [`PriceHistory::load_levels`] on a table already read (errors name its file).
    pub fn from_table(
        table: &Table,
        underlyings: Option<&[&str]>,
        suffix: &str,
    ) -> Result<PriceHistory> {
        let path = table.file();
        let date_column = table
            .column("date")
            .or_else(|| (!table.names().is_empty()).then_some(0))
            .ok_or_else(|| Error::in_file(path, "no columns"))?;
        let date_name = table.names()[date_column].clone();
        let discovered = discover_underlyings(table.names(), date_column, suffix);
        let underlyings: Vec<&str> = match underlyings {
            Some(list) => list.to_vec(),
            None => discovered.iter().map(String::as_str).collect(),
        };
        let mut series = BTreeMap::new();
        for &u in &underlyings {
            let Some(column) = [u.to_owned(), format!("{u}{suffix}")]
                .into_iter()
                .find(|name| table.column(name).is_some())
            else {
                continue;
            };
            let mut points = Vec::new();
            for row in table.rows() {
                let Some(price) = row.optional_number(&column)? else {
                    continue;
                };
                if price <= 0.0 {
                    return Err(
                        row.error(&column, format!("price must be positive, found {price}"))
                    );
                }
                let text = row.required_text(&date_name)?;
                let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                    row.error(
                        &date_name,
                        format!("expected a date like 2020-01-17, found '{text}'"),
                    )
                })?;
                points.push((date, price));
            }
            points.sort_by_key(|p| p.0);
            if points.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(Error::input(
                    path,
                    Location::File,
                    Some(&date_name),
                    "a date appears twice",
                ));
            }
            series.insert(u.to_owned(), points);
        }
        if series.is_empty() {
            return Err(Error::input(
                path,
                Location::File,
                None,
                format!(
                    "no column for any of the underlyings ({}): name columns U or U{suffix}",
                    underlyings.join(", ")
                ),
            ));
        }
        Ok(PriceHistory { series })
    }

    /// The levels of one underlying, if present.
    pub fn levels(&self, underlying: &str) -> Option<&[(NaiveDate, f64)]> {
        self.series.get(underlying).map(Vec::as_slice)
    }

    /// The N-day relative moves ending on each date that has at least one price: (start,
    /// end, underlying → move, underlyings without a move).
    pub fn windows(&self, days: u64) -> Vec<HistoricalMove> {
        let mut ends: Vec<NaiveDate> = self.series.values().flatten().map(|p| p.0).collect();
        ends.sort();
        ends.dedup();
        ends.into_iter()
            .filter_map(|end| self.move_ending(end, days))
            .collect()
    }

    fn move_ending(&self, end: NaiveDate, days: u64) -> Option<HistoricalMove> {
        let start = end.checked_sub_days(Days::new(days))?;
        let oldest = start.checked_sub_days(Days::new(days))?;
        let mut moves = BTreeMap::new();
        let mut missing = Vec::new();
        for (u, points) in &self.series {
            let at_end = points
                .binary_search_by_key(&end, |p| p.0)
                .ok()
                .map(|i| points[i].1);
            let before = points.partition_point(|p| p.0 <= start);
            let at_start = before
                .checked_sub(1)
                .map(|i| points[i])
                .filter(|p| p.0 > oldest)
                .map(|p| p.1);
            match (at_start, at_end) {
                (Some(a), Some(b)) => {
                    moves.insert(u.clone(), b / a - 1.0);
                }
                _ => missing.push(u.clone()),
            }
        }
        (!moves.is_empty()).then_some(HistoricalMove {
            start,
            end,
            moves,
            missing,
        })
    }
}

/// Underlying names of a wide file's columns: the prefixes of `U{suffix}` columns if any,
/// else every column but the date.
fn discover_underlyings(names: &[String], date_column: usize, suffix: &str) -> Vec<String> {
    let with_suffix: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
        .collect();
    if !with_suffix.is_empty() {
        return with_suffix;
    }
    names
        .iter()
        .enumerate()
        .filter(|&(i, n)| i != date_column && !n.contains(':'))
        .map(|(_, n)| n.clone())
        .collect()
}

/// One historical window's moves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoricalMove {
    /// Nominal start of the window: `end` minus the window length in calendar days (each move
    /// starts from the last price on or before it).
    #[serde(serialize_with = "iso_date")]
    pub start: NaiveDate,
    /// Last day of the window, on which the moves end.
    #[serde(serialize_with = "iso_date")]
    pub end: NaiveDate,
    /// underlying → relative spot move.
    pub moves: BTreeMap<String, f64>,
    /// Underlyings of the file without prices for this window (they do not move).
    pub missing: Vec<String>,
}

/// Writes a date as `2020-01-17`.
fn iso_date<S: serde::Serializer>(
    date: &NaiveDate,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(date)
}

/// One replayed window: its moves and the book's P&L (JSON `history.worst` items).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replayed {
    /// The window and its spot moves (flattened into this item in the JSON).
    #[serde(flatten)]
    pub window: HistoricalMove,
    /// Book P&L of the window's moves, in reporting currency (USD), positive = gain; revalued at
    /// the run's horizon with implied vols unchanged.
    pub pnl: f64,
    /// underlying → P&L.
    pub by_underlying: BTreeMap<String, f64>,
}

/// The result of a replay (JSON `history`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    /// Window length in calendar days (the N of the N-day moves).
    pub window_days: u64,
    /// Windows replayed (count): every end date on which at least one underlying has a move.
    pub windows: usize,
    /// Book underlyings with no column in the file (never moved).
    pub not_in_history: Vec<String>,
    /// The worst windows, most negative P&L first.
    pub worst: Vec<Replayed>,
}

/// Applies every `window_days` move of `history` to the book and keeps the `worst` ones.
pub fn replay(book: &StressBook, history: &PriceHistory, window_days: u64, worst: usize) -> Replay {
    let names = book.underlying_names();
    let windows = history.windows(window_days);
    let mut replayed: Vec<Replayed> = windows
        .iter()
        .map(|w| {
            let mut m = book.no_move();
            for (i, name) in names.iter().enumerate() {
                if let Some(&moved) = w.moves.get(*name) {
                    m.spot[i] = moved;
                }
            }
            let result = book.evaluate("history", &m, None);
            Replayed {
                window: w.clone(),
                pnl: result.pnl,
                by_underlying: result.breakdown["underlying"].clone(),
            }
        })
        .collect();
    replayed.sort_by(|a, b| {
        a.pnl
            .total_cmp(&b.pnl)
            .then(a.window.end.cmp(&b.window.end))
    });
    replayed.truncate(worst);
    Replay {
        window_days,
        windows: windows.len(),
        not_in_history: book
            .held_underlyings()
            .into_iter()
            .filter(|u| !history.series.contains_key(*u))
            .map(str::to_owned)
            .collect(),
        worst: replayed,
    }
}
