//! Inputs: the scenario file (with its `[[venue]]` entries), CSV / Parquet tables, and the loaded job (every file a run reads,
//! validated into types, with file / row / field errors); synthetic books for benchmarks.

pub mod scenario;
pub mod venue;
pub mod table;
pub mod job;
pub mod synthetic;
