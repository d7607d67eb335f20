//! What a trade would change: the book before and after adding trades and removing
//! positions, simulated on common random numbers (the same shocks drive both books, since
//! the random streams depend only on the seed, the block and the model), so the change of
//! VaR and ES has a standard error far below either figure's own.

use std::path::Path;

use serde::Serialize;

use crate::book::aggregate::AggregatedBook;
use crate::book::positions::Book;
use crate::error::{Error, Location, Result};
use crate::input::job::Job;
use crate::mc::simulation::{SimulationSettings, Simulator};
use crate::risk::measures::{change, var_es, RiskMeasure};

/// One side of a what-if: the book's value and risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BookRisk {
    /// Mark-to-market value today, reporting currency.
    pub base_value: f64,
    /// Positions in the book (count).
    pub positions: usize,
    /// VaR and ES per configured level, positive = loss, with standard errors.
    pub measures: Vec<RiskMeasure>,
}

/// The result of `tailrisk whatif` (JSON keys `before`, `after`, `change`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIf {
    /// Monte Carlo paths each book is simulated on (count); both books share them.
    pub paths: u64,
    /// Random seed shared by both simulations (common random numbers).
    pub seed: u64,
    /// Horizon in calendar days (365-day year).
    pub horizon_days: f64,
    /// Reporting currency of every value, VaR and ES (`USD` or a coin).
    pub currency: String,
    /// The scenario's book as loaded.
    pub before: BookRisk,
    /// The book with the trades added and the positions removed.
    pub after: BookRisk,
    /// after − before per level; the standard errors are those of the change itself.
    pub change: Vec<RiskMeasure>,
    /// Ids of the trades added and of the positions removed.
    pub trades_added: Vec<String>,
    /// Ids of the positions removed (`--remove`), as given.
    pub positions_removed: Vec<String>,
}

/// The book with `remove` taken out and `trades` added. Removing an id the book does not
/// hold, or adding a trade whose id the book already uses, is an error naming the file.
pub fn modified_book(book: &Book, trades: Option<&Book>, remove: &[String]) -> Result<Book> {
    if let Some(missing) = remove
        .iter()
        .find(|id| !book.positions.iter().any(|p| &p.id == *id))
    {
        return Err(Error::input(
            &book.file,
            Location::File,
            Some("id"),
            format!("cannot remove '{missing}': the book holds no position with that id"),
        ));
    }
    let mut positions: Vec<_> = book
        .positions
        .iter()
        .filter(|p| !remove.contains(&p.id))
        .cloned()
        .collect();
    for trade in trades.map_or(&[][..], |t| &t.positions[..]) {
        if book.positions.iter().any(|p| p.id == trade.id) {
            let file = trades.map_or(book.file.as_path(), |t| t.file.as_path());
            return Err(Error::in_row(
                file,
                trade.row.clone(),
                "id",
                format!(
                    "'{}' is already a position id in {}; give the trade its own id",
                    trade.id,
                    book.file.display()
                ),
            ));
        }
        positions.push(trade.clone());
    }
    Ok(Book {
        file: book.file.clone(),
        positions,
    })
}

/// Simulates the job's book and the modified one on the same paths and compares them.
pub fn what_if(
    job: &Job,
    trades_file: Option<&Path>,
    remove: &[String],
    settings: SimulationSettings,
) -> Result<WhatIf> {
    let trades = trades_file
        .map(|path| Book::load(path, &job.market, job.valuation_time))
        .transpose()?;
    let after_book = modified_book(&job.book, trades.as_ref(), remove)?;
    let after = AggregatedBook::build(
        &after_book,
        &job.market,
        &job.model,
        job.valuation_time,
        &job.scenario.path,
    )?;
    let levels = &job.scenario.run.confidence;
    let currency = &job.currency;
    let pnl_before = Simulator::new(&job.model, &job.aggregated, settings)?
        .in_currency(currency, job.aggregated.base_value())
        .pnl(&|_| {})?;
    let pnl_after = Simulator::new(&job.model, &after, settings)?
        .in_currency(currency, after.base_value())
        .pnl(&|_| {})?;
    let before_measures = var_es(&pnl_before, levels);
    let after_measures = var_es(&pnl_after, levels);
    let changes = before_measures
        .iter()
        .zip(&after_measures)
        .map(|(b, a)| change(&pnl_before, &pnl_after, b, a))
        .collect();
    Ok(WhatIf {
        paths: settings.paths,
        seed: settings.seed,
        horizon_days: settings.horizon_days,
        currency: currency.name.clone(),
        before: BookRisk {
            base_value: job.base_value(),
            positions: job.book.positions.len(),
            measures: before_measures,
        },
        after: BookRisk {
            base_value: currency.value_today(after.base_value()),
            positions: after_book.positions.len(),
            measures: after_measures,
        },
        change: changes,
        trades_added: trades
            .iter()
            .flat_map(|t| t.positions.iter().map(|p| p.id.clone()))
            .collect(),
        positions_removed: remove.to_vec(),
    })
}
