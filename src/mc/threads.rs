//! How many worker threads a computation uses, passed explicitly down to the simulator (as
//! faer passes `Par`) rather than taken from an ambient pool. Results never depend on it:
//! every block of paths draws from its own random stream.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// The pools built so far, by worker count and whether they serve requests.
type Pools = BTreeMap<(usize, bool), Arc<rayon::ThreadPool>>;

/// A number of worker threads, at least one, and whether they serve requests waiting for an
/// answer (a pool of their own, so that a long run does not hold them up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(usize, bool);

impl Threads {
    /// One worker per core the machine offers (1 when that cannot be known).
    pub fn all() -> Threads {
        Threads(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            false,
        )
    }

    /// Exactly `count` workers (at least one).
    pub fn exactly(count: usize) -> Threads {
        Threads(count.max(1), false)
    }

    /// As many workers in a pool apart from the runs' (the service's what-ifs: rayon takes
    /// a pool's own queued work before work handed in from outside, so a what-if on the
    /// runs' pool would wait for most of a run).
    pub fn for_requests(self) -> Threads {
        Threads(self.0, true)
    }

    /// The number of workers.
    pub fn count(self) -> usize {
        self.0
    }

    /// A pool of this many workers, for the parallel loops of a computation: built once per
    /// worker count and shared by every later simulator (a rolling backtest builds thousands
    /// of them).
    pub fn pool(self) -> Result<Arc<rayon::ThreadPool>> {
        static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
        let pools = POOLS.get_or_init(|| Mutex::new(BTreeMap::new()));
        let mut pools = pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pool) = pools.get(&(self.0, self.1)) {
            return Ok(pool.clone());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.0)
            .build()
            .map(Arc::new)
            .map_err(|e| Error::Resource {
                message: format!("cannot start {} worker threads: {e}", self.0),
            })?;
        pools.insert((self.0, self.1), pool.clone());
        Ok(pool)
    }
}
