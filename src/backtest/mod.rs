//! Backtesting: the statistical tests of a forecast series (Kupiec, Christoffersen, traffic
//! light, ES test, limits) and the rolling out-of-sample forecast of the static book.

pub mod statistics;
pub mod rolling;
pub mod report;
