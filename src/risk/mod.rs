//! Risk measures: VaR and ES with standard errors, contributions (Euler, marginal, incremental)
//! and what-if.

pub mod measures;
pub mod run;
pub mod contributions;
pub mod whatif;
