//! Hedge proposals: the trades among candidate instruments that minimise ES, or reach a
//! target ES at the least cost, chosen on simulated scenarios by a linear program and judged
//! on fresh paths; and the simpler delta- and vega-neutral hedges.
//!
//! [`candidates`] says what may be traded and at what cost, [`scenarios`] simulates the book
//! and every candidate on the same paths, [`solver`] solves the Rockafellar–Uryasev linear
//! program (with `fallback`, Clarabel, should its interior point stall), [`proposal`] puts them together.

pub mod candidates;
pub mod scenarios;
pub mod solver;
mod fallback;
pub mod proposal;
