//! tailrisk: Monte Carlo Value-at-Risk and Expected Shortfall for crypto derivatives books.
//!
//! The modules read as the pipeline of one run, in order:
//!
//! 1. [`input`] — the scenario file, CSV / Parquet tables and the loaded [`input::job::Job`];
//! 2. [`book`] — instruments, positions, netting into distinct instruments, exposures;
//! 3. [`market`] — spots, ATM vols and rates as of the valuation time;
//! 4. [`model`] — risk factors, correlation and Cholesky, calibration from history;
//! 5. [`mc`] — shocks, price and implied-vol paths, the simulation loop, importance
//!    sampling and shards;
//! 6. [`pricing`] — Black–Scholes, full revaluation and revaluation surfaces;
//! 7. [`risk`] — VaR and ES with standard errors, contributions, what-if;
//! 8. [`margin`] — venue margin along the paths: margin calls, liquidations, buffers;
//! 9. [`hedge`] — proposed trades: least ES or the cheapest reaching a target, judged on
//!    fresh paths;
//! 10. [`stress`] — named scenarios, grids, historical replay, reverse stress;
//! 11. [`backtest`] — rolling forecasts and their statistical tests;
//! 12. [`report`] — result documents, text tables, output files, the committee report;
//! 13. [`service`] — the live book, market and paths behind an HTTP/JSON API
//!     (`tailrisk serve`): pre-trade what-ifs, limits, events, a durable store.
//!
//! [`error`] types every failure with its exit code; [`time`] holds the 365-day calendar;
//! [`math`] the exp and erfc whose bits are the same on every platform.
//! The command line is the binary's own (`src/cli/`), a thin shell over these modules.
//!
//! Conventions (docs/spec.md): money in the reporting currency; VaR and ES are positive
//! numbers meaning a loss; confidence levels like 0.99; a year is 365 days.

#![warn(missing_docs)]

pub mod input;
pub mod book;
pub mod market;
pub mod model;
pub mod mc;
pub mod pricing;
pub mod risk;
pub mod margin;
pub mod hedge;
pub mod stress;
pub mod backtest;
pub mod report;
pub mod service;

pub mod error;
pub mod math;
pub mod time;

pub use error::{Error, Result};
pub use time::DAYS_PER_YEAR;
