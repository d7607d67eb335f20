//! Files written by `--out DIR`: per-path P&L as Parquet, the summary as JSON and the
//! measures as CSV (polars for both tables); a hedge's trades as a positions CSV.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::backtest::statistics::Observation;
use crate::book::instrument::Instrument;
use crate::book::positions::Position;
use crate::error::{Error, Result};
use crate::hedge::proposal::HedgeProposal;
use crate::report::text::RunReport;

/// Per-path P&L file name inside the output folder (columns `path`, `pnl`).
pub const PNL_FILE: &str = "pnl.parquet";
/// The summary, the same document as `--format json`.
pub const SUMMARY_FILE: &str = "summary.json";
/// Measures table (confidence, var, es, var_stderr, es_stderr).
pub const MEASURES_FILE: &str = "measures.csv";

/// Writes the run's outputs into `dir` (created if missing).
pub fn write_run_outputs(dir: &Path, report: &RunReport, pnl: &[f64]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let paths: Vec<u64> = (0..pnl.len() as u64).collect();
    let mut frame = DataFrame::new(
        pnl.len(),
        vec![
            Column::new("path".into(), paths),
            Column::new("pnl".into(), pnl.to_vec()),
        ],
    )
    .map_err(|e| Error::output(dir, e))?;
    let pnl_path = dir.join(PNL_FILE);
    let file = File::create(&pnl_path).map_err(|e| Error::output(&pnl_path, e))?;
    ParquetWriter::new(file)
        .finish(&mut frame)
        .map_err(|e| Error::output(&pnl_path, e))?;

    write_summary(dir, report)
}

/// Writes `summary.json` and `measures.csv` into `dir` (created if missing).
pub fn write_summary(dir: &Path, report: &RunReport) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let summary_path = dir.join(SUMMARY_FILE);
    let json = serde_json::to_string_pretty(report).map_err(|e| Error::output(&summary_path, e))?;
    std::fs::write(&summary_path, json + "\n").map_err(|e| Error::output(&summary_path, e))?;

    let measures_path = dir.join(MEASURES_FILE);
    let column = |name: &str, f: fn(&crate::risk::measures::RiskMeasure) -> f64| {
        Column::new(
            name.into(),
            report.measures.iter().map(f).collect::<Vec<f64>>(),
        )
    };
    let mut measures = DataFrame::new(
        report.measures.len(),
        vec![
            column("confidence", |m| m.confidence),
            column("var", |m| m.var),
            column("es", |m| m.es),
            column("var_stderr", |m| m.var_stderr),
            column("es_stderr", |m| m.es_stderr),
        ],
    )
    .map_err(|e| Error::output(&measures_path, e))?;
    let mut file = File::create(&measures_path).map_err(|e| Error::output(&measures_path, e))?;
    CsvWriter::new(&mut file)
        .finish(&mut measures)
        .map_err(|e| Error::output(&measures_path, e))
}

/// Writes a backtest's daily series as `series.parquet` and `series.csv` in `dir`: columns
/// `date`, `pnl`, `var`, `es` (null when absent) and `exception`.
pub fn write_backtest_series(dir: &Path, series: &[Observation]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let mut frame = DataFrame::new(
        series.len(),
        vec![
            Column::new(
                "date".into(),
                series.iter().map(|o| o.date.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "pnl".into(),
                series.iter().map(|o| o.pnl).collect::<Vec<_>>(),
            ),
            Column::new(
                "var".into(),
                series.iter().map(|o| o.var).collect::<Vec<_>>(),
            ),
            Column::new("es".into(), series.iter().map(|o| o.es).collect::<Vec<_>>()),
            Column::new(
                "exception".into(),
                series
                    .iter()
                    .map(Observation::exception)
                    .collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(|e| Error::output(dir, e))?;
    let parquet = dir.join("series.parquet");
    let file = File::create(&parquet).map_err(|e| Error::output(&parquet, e))?;
    ParquetWriter::new(file)
        .finish(&mut frame)
        .map_err(|e| Error::output(&parquet, e))?;
    let csv = dir.join("series.csv");
    let mut file = File::create(&csv).map_err(|e| Error::output(&csv, e))?;
    CsvWriter::new(&mut file)
        .finish(&mut frame)
        .map_err(|e| Error::output(&csv, e))
}

/// The hedge's trades file name inside the output folder (positions format).
pub const TRADES_FILE: &str = "trades.csv";

/// Writes a hedge proposal into `dir` (created if missing): `trades.csv` in the positions
/// format, ready for `whatif --trades`, and `summary.json` (the `--format json` document).
pub fn write_hedge_outputs(dir: &Path, proposal: &HedgeProposal) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let trades = &proposal.positions;
    let text = |f: fn(&Position) -> Option<String>| trades.iter().map(f).collect::<Vec<_>>();
    let contract = |p: &Position| match &p.instrument {
        Instrument::Option(o) => Some(o.clone()),
        _ => None,
    };
    let mut frame = DataFrame::new(
        trades.len(),
        vec![
            Column::new("id".into(), text(|p| Some(p.id.clone()))),
            Column::new(
                "kind".into(),
                text(|p| Some(p.instrument.kind_name().to_owned())),
            ),
            Column::new("underlying".into(), text(|p| Some(p.underlying.clone()))),
            Column::new(
                "quantity".into(),
                trades.iter().map(|p| p.quantity).collect::<Vec<_>>(),
            ),
            Column::new(
                "multiplier".into(),
                trades.iter().map(|p| p.multiplier).collect::<Vec<_>>(),
            ),
            Column::new(
                "settlement".into(),
                text(|p| Some(p.settlement.as_str().to_owned())),
            ),
            Column::new("venue".into(), text(|p| Some(p.venue.clone()))),
            Column::new(
                "counterparty".into(),
                text(|p| Some(p.counterparty.clone())),
            ),
            Column::new("book".into(), text(|p| Some(p.book.clone()))),
            Column::new(
                "expiry".into(),
                text(|p| match &p.instrument {
                    Instrument::Option(o) => Some(o.expiry.to_rfc3339()),
                    Instrument::Future { expiry } => expiry.map(|e| e.to_rfc3339()),
                    _ => None,
                }),
            ),
            Column::new(
                "option_type".into(),
                trades
                    .iter()
                    .map(|p| contract(p).map(|o| o.option_type.as_str().to_owned()))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "strike".into(),
                trades
                    .iter()
                    .map(|p| contract(p).map(|o| o.strike))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "implied_vol".into(),
                trades
                    .iter()
                    .map(|p| contract(p).and_then(|o| o.implied_vol))
                    .collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(|e| Error::output(dir, e))?;
    let path = dir.join(TRADES_FILE);
    let mut file = File::create(&path).map_err(|e| Error::output(&path, e))?;
    CsvWriter::new(&mut file)
        .finish(&mut frame)
        .map_err(|e| Error::output(&path, e))?;
    let summary = dir.join(SUMMARY_FILE);
    let json = serde_json::to_string_pretty(proposal).map_err(|e| Error::output(&summary, e))?;
    std::fs::write(&summary, json + "\n").map_err(|e| Error::output(&summary, e))
}
