//! The book: what an instrument is, who holds which position, netting positions into distinct
//! instruments, and their exposures (Greeks) by grouping.

pub mod instrument;
pub mod positions;
pub mod aggregate;
pub mod exposures;
pub mod grouping;
