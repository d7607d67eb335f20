//! Risk measures: VaR and ES with standard errors, contributions (Euler, marginal, incremental)
//! and what-if (with its cache of a base run).

pub mod measures;
pub mod run;
pub mod contributions;
pub mod whatif;
pub mod whatif_cache;
