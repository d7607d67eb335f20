//! How many worker threads a computation uses, passed explicitly down to the simulator (as
//! faer passes `Par`) rather than taken from an ambient pool. Results never depend on it:
//! every block of paths draws from its own random stream.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// A number of worker threads, at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(usize);

impl Threads {
    /// One worker per core the machine offers (1 when that cannot be known).
    pub fn all() -> Threads {
        Threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Exactly `count` workers (at least one).
    pub fn exactly(count: usize) -> Threads {
        Threads(count.max(1))
    }

    /// The number of workers.
    pub fn count(self) -> usize {
        self.0
    }

    /// A pool of this many workers, for the parallel loops of a computation: built once per
    /// worker count and shared by every later simulator (a rolling backtest builds thousands
    /// of them).
    pub fn pool(self) -> Result<Arc<rayon::ThreadPool>> {
        static POOLS: OnceLock<Mutex<BTreeMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
        let pools = POOLS.get_or_init(|| Mutex::new(BTreeMap::new()));
        let mut pools = pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pool) = pools.get(&self.0) {
            return Ok(pool.clone());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.0)
            .build()
            .map(Arc::new)
            .map_err(|e| Error::Resource {
                message: format!("cannot start {} worker threads: {e}", self.0),
            })?;
        pools.insert(self.0, pool.clone());
        Ok(pool)
    }
}
