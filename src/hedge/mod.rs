//! Hedge proposals: the trades among candidates that minimise ES, or reach a target ES at
//! the least cost, on simulated scenarios; checked out of sample.

pub mod solver;
