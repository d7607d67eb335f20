//! Pricing and revaluation: Black–Scholes prices and Greeks, full revaluation of the netted
//! book on a path, and revaluation surfaces (the grid).

pub mod black_scholes;
pub mod revaluation;
pub mod surface;
