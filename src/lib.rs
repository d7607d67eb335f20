//! tailrisk: Monte Carlo Value-at-Risk and Expected Shortfall for crypto derivatives books.
//!
//! The modules read as the pipeline, in order:
//!
//! 1. inputs — [`config`] (the scenario file), [`table`] (CSV / Parquet reading),
//!    [`instrument`] (what a position holds), [`book`] (positions), [`market`] (market data),
//!    [`time`] (365-day calendar);
//! 2. aggregation — [`aggregate`] nets positions per distinct instrument;
//!    [`exposures`] reports their Greeks;
//! 3. model — [`correlation`] (checks, Higham repair, Cholesky), [`model`] (risk factors)
//!    and [`calibration`] (the model from daily history);
//! 4. scenarios — [`shocks`] (correlated normal / Student-t shocks per block stream),
//!    [`proposal`] (the importance-sampling mixture of shifted and tilted shocks) and
//!    [`paths`] (price and implied-vol paths);
//! 5. valuation — [`pricing`] (Black–Scholes and Greeks) and [`revaluation`] (the netted book
//!    on each path, in full or on [`surface`]s), driven by [`simulation`] (and by
//!    [`importance`] for importance-sampled runs: pilot, design points, weighted measures);
//! 6. risk — [`measures`] (VaR, ES and their standard errors) and [`contributions`] (Euler,
//!    marginal and incremental VaR / ES of positions and groups) and [`whatif`] (the
//!    book before and after proposed trades);
//! 7. stress — [`stress`] (named scenarios, defaults, spot × vol grids) and [`replay`]
//!    (historical moves applied to today's book) and [`reverse`] (the most plausible move
//!    that loses a given amount);
//! 8. backtesting — [`rolling`] (out-of-sample forecasts of the static book) and
//!    [`backtest`] (Kupiec, Christoffersen, traffic light, ES test, limit multipliers);
//! 9. outputs — [`report`] (JSON and tables), [`output`] (Parquet / CSV files), [`shard`]
//!    (slices of a run and their exact merge), [`html`]
//!    (the committee report) with [`svg`] (its charts), [`cli`].
//!
//! [`job`] loads a scenario file and everything it points to, in that order; [`synthetic`]
//! writes large synthetic books for benchmarks.
//!
//! Conventions (SPEC): money in the reporting currency; VaR and ES are positive numbers
//! meaning a loss; confidence levels like 0.99; a year is 365 days.

pub mod aggregate;
pub mod backtest;
pub mod book;
pub mod calibration;
pub mod cli;
pub mod config;
pub mod contributions;
pub mod correlation;
pub mod error;
pub mod exposures;
pub mod html;
pub mod importance;
pub mod instrument;
pub mod job;
pub mod market;
pub mod measures;
pub mod model;
pub mod output;
pub mod paths;
pub mod pricing;
pub mod proposal;
pub mod replay;
pub mod report;
pub mod revaluation;
pub mod reverse;
pub mod rolling;
pub mod shard;
pub mod shocks;
pub mod simulation;
pub mod stress;
pub mod surface;
pub mod svg;
pub mod synthetic;
pub mod table;
pub mod time;
pub mod whatif;

pub use error::{Error, Result};
pub use time::DAYS_PER_YEAR;
