//! The risk-factor model: factors and their volatilities, the correlation matrix (checks,
//! Higham repair, Cholesky), and calibration from daily history (prices and implied vols).

pub mod factors;
pub mod correlation;
pub mod calibration;
pub mod vol_history;
