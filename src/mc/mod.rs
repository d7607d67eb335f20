//! Monte Carlo scenario generation: correlated normal / Student-t shocks per block stream,
//! price and implied-vol paths, the simulation loop and the cost estimate that chooses its
//! revaluation, importance sampling (its proposal and its
//! driver) and shards of a run.

pub mod shocks;
pub mod paths;
pub mod simulation;
pub mod cost;
pub mod threads;
pub mod proposal;
pub mod importance;
pub mod shard;
