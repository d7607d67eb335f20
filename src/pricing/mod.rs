//! Pricing and revaluation: Black–Scholes prices and Greeks, full revaluation of the netted
//! book on a path (and on a block of paths at once, eight per pair of AVX2 instructions), and
//! revaluation surfaces (the grid).

pub mod black_scholes;
pub mod batch;
pub mod revaluation;
pub mod surface;
