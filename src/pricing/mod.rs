//! Pricing and revaluation: Black–Scholes prices and Greeks, full revaluation of the netted
//! book on a path (and on a block of paths at once, four per vector instruction), and
//! revaluation surfaces (the grid).

pub mod black_scholes;
pub mod batch;
pub mod revaluation;
pub mod surface;
