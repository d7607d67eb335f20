//! Runs beyond one machine: `run --shard I/N` simulates a disjoint, deterministic slice of
//! the blocks of paths and writes what the merge needs; `merge` combines the shards into
//! exactly the single-machine result.
//!
//! Shard I of N (0-based) takes blocks ⌊B·I/N⌋ .. ⌊B·(I+1)/N⌋ of the run's B blocks. Since
//! every block draws from its own (seed, block) stream, the union of the shards' paths is
//! the single run's. A shard writes `shard-I-of-N.json` (the run's report context, the
//! per-block P&L moments, the block range) and `shard-I-of-N.parquet` (its largest losses
//! with their path indices — as many as the VaR and ES estimators of the whole run read —
//! and each one's grid error). With grid revaluation a shard revalues in full every path
//! that can enter those largest losses, as the single run does for its own.
//! The merge keeps the overall largest losses, which are the same values the single run
//! keeps (the global top k lies within the union of the shards' top k), so sorting them gives
//! the same numbers to the last bit; the mean and standard deviation are combined block by
//! block in path order, as the single run does.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::mc::simulation::{largest_tail_error, ExactTail, TailPath};
use crate::report::text::RunReport;
use crate::risk::measures::{
    combine_moments, largest_losses, tail_keep, var_es_from_tail, Moments,
};

/// Version tag of the shard format.
pub const SHARD_FORMAT: &str = "tailrisk-shard-2";

/// Which slice of the blocks a shard simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// 0-based shard index.
    pub index: u64,
    /// Number of shards N the run is split into (at least 1).
    pub count: u64,
}

impl ShardSpec {
    /// Parses `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> std::result::Result<ShardSpec, String> {
        let bad = || format!("expected I/N with 0 <= I < N (e.g. 0/4), found '{text}'");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }

    /// The blocks of this shard among `blocks` in all.
    pub fn blocks(&self, blocks: u64) -> Range<u64> {
        let cut = |i: u64| (u128::from(blocks) * u128::from(i) / u128::from(self.count)) as u64;
        cut(self.index)..cut(self.index + 1)
    }

    fn stem(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// The JSON half of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Version tag of the shard format ([`SHARD_FORMAT`]); the merge refuses any other.
    pub format: String,
    /// Which shard of the run this is (index I of N).
    pub shard: ShardSpec,
    /// First block and one past the last.
    pub blocks: (u64, u64),
    /// Blocks of the whole run.
    pub total_blocks: u64,
    /// The whole run's report with no measures yet (the merge fills them).
    pub report: RunReport,
    /// Confidence levels of the run.
    pub levels: Vec<f64>,
    /// P&L moments of each block of the shard, in block order.
    pub block_moments: Vec<Moments>,
    /// The Parquet file with the largest losses (`path`, `loss`, `grid_error`), next to
    /// this one.
    pub tail_file: String,
}

/// A shard's place in its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSlice {
    /// The shard's index I of N.
    pub spec: ShardSpec,
    /// The blocks it simulates.
    pub blocks: Range<u64>,
    /// Blocks of the whole run.
    pub total_blocks: u64,
}

/// What a shard simulated.
pub struct ShardPaths<'a> {
    /// P&L of the shard's paths in path order (with grid revaluation, the tail's revalued in
    /// full).
    pub pnl: &'a [f64],
    /// P&L moments of each block, in block order (with grid revaluation, of the grid P&L).
    pub block_moments: Vec<Moments>,
    /// With grid revaluation, the paths revalued in full
    /// ([`crate::mc::simulation::Simulator::exact_tail`] with [`tail_keep`] of the whole run).
    pub exact: Option<ExactTail>,
}

/// The paths of a fully revalued shard whose loss is at least the `keep`-th largest.
fn full_tail(pnl: &[f64], first_path: u64, keep: usize) -> Vec<TailPath> {
    let threshold = largest_losses(pnl, keep)
        .last()
        .copied()
        .unwrap_or(f64::NEG_INFINITY);
    pnl.iter()
        .enumerate()
        .filter(|(_, p)| -**p >= threshold)
        .map(|(i, p)| TailPath {
            path: first_path + i as u64,
            loss: -p,
            grid_error: 0.0,
        })
        .collect()
}

/// Writes the shard's files into `dir` and returns the JSON file's path. `report` is the
/// run's [`crate::report::text::report_context`].
pub fn write_shard(
    dir: &Path,
    slice: &ShardSlice,
    report: &RunReport,
    levels: &[f64],
    paths: ShardPaths,
) -> Result<PathBuf> {
    let spec = slice.spec;
    let first_path = slice.blocks.start * crate::mc::shocks::BLOCK_PATHS as u64;
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let keep = tail_keep(report.paths as usize, levels);
    let rows = match &paths.exact {
        Some(exact) => exact.tail(),
        None => full_tail(paths.pnl, first_path, keep),
    };
    let tail_name = format!("{}.parquet", spec.stem());
    let tail_path = dir.join(&tail_name);
    let column = |name: &str, f: fn(&TailPath) -> f64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<f64>>())
    };
    let mut frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "path".into(),
                rows.iter().map(|r| r.path).collect::<Vec<u64>>(),
            ),
            column("loss", |r| r.loss),
            column("grid_error", |r| r.grid_error),
        ],
    )
    .map_err(|e| Error::output(&tail_path, e))?;
    let file = File::create(&tail_path).map_err(|e| Error::output(&tail_path, e))?;
    ParquetWriter::new(file)
        .finish(&mut frame)
        .map_err(|e| Error::output(&tail_path, e))?;
    let shard = ShardFile {
        format: SHARD_FORMAT.to_owned(),
        shard: spec,
        blocks: (slice.blocks.start, slice.blocks.end),
        total_blocks: slice.total_blocks,
        report: report.clone(),
        levels: levels.to_vec(),
        block_moments: paths.block_moments,
        tail_file: tail_name,
    };
    let json_path = dir.join(format!("{}.json", spec.stem()));
    let text = serde_json::to_string_pretty(&shard).map_err(|e| Error::output(&json_path, e))?;
    std::fs::write(&json_path, text + "\n").map_err(|e| Error::output(&json_path, e))?;
    Ok(json_path)
}

/// Reads shard JSON files (and their tails) and returns the merged report: identical to the
/// single-machine run's.
pub fn merge(files: &[PathBuf]) -> Result<RunReport> {
    let mut shards: Vec<(PathBuf, ShardFile)> = files
        .iter()
        .map(|f| read_shard(f).map(|s| (f.clone(), s)))
        .collect::<Result<_>>()?;
    shards.sort_by_key(|(_, s)| s.shard.index);
    check_complete(&shards)?;
    let (_, first) = &shards[0];
    let mut rows = Vec::new();
    let mut moments = Vec::new();
    for (path, shard) in &shards {
        rows.extend(read_tail(&path.with_file_name(&shard.tail_file))?);
        moments.extend_from_slice(&shard.block_moments);
    }
    let mut report = first.report.clone();
    let n = report.paths as usize;
    let losses = rows.iter().map(|r| r.loss).collect();
    report.measures = var_es_from_tail(losses, n, &first.levels);
    if let Some(keep) = report.revaluation.exact_tail_paths {
        report.revaluation.max_tail_error = Some(largest_tail_error(rows, keep));
    }
    let (mean, stdev) = combine_moments(&moments);
    report.pnl_mean = mean;
    report.pnl_stdev = stdev;
    Ok(report)
}

fn read_shard(path: &Path) -> Result<ShardFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::in_file(path, format!("cannot read shard: {e}")))?;
    let shard: ShardFile = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            path,
            Location::Line(e.line()),
            None,
            format!("not a shard file: {e}"),
        )
    })?;
    if shard.format != SHARD_FORMAT {
        return Err(Error::in_file(
            path,
            format!("shard format '{}', expected {SHARD_FORMAT}", shard.format),
        ));
    }
    Ok(shard)
}

/// All N shards of one run, each once, covering every block.
fn check_complete(shards: &[(PathBuf, ShardFile)]) -> Result<()> {
    let (first_path, first) = &shards[0];
    let count = first.shard.count;
    let mut next_block = 0;
    for (i, (path, s)) in shards.iter().enumerate() {
        if s.shard.count != count || s.shard.index != i as u64 {
            return Err(Error::in_file(
                path,
                format!(
                    "expected shard {i} of {count}, found {}/{} (give every shard of one run once)",
                    s.shard.index, s.shard.count
                ),
            ));
        }
        if s.report != first.report
            || s.levels != first.levels
            || s.total_blocks != first.total_blocks
        {
            return Err(Error::in_file(
                path,
                format!("comes from a different run than {}", first_path.display()),
            ));
        }
        if s.blocks.0 != next_block {
            return Err(Error::in_file(
                path,
                "its blocks do not follow the previous shard's",
            ));
        }
        next_block = s.blocks.1;
    }
    if shards.len() as u64 != count || next_block != first.total_blocks {
        return Err(Error::in_file(
            first_path,
            format!(
                "{} of {count} shards given; every shard is needed",
                shards.len()
            ),
        ));
    }
    Ok(())
}

fn read_tail(path: &Path) -> Result<Vec<TailPath>> {
    let file = File::open(path).map_err(|e| Error::in_file(path, format!("cannot open: {e}")))?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::in_file(path, format!("cannot read Parquet: {e}")))?;
    let column = |name: &str| {
        frame
            .column(name)
            .and_then(|c| c.f64().cloned())
            .map_err(|e| Error::input(path, Location::File, Some(name), e.to_string()))
    };
    let indices = frame
        .column("path")
        .and_then(|c| c.u64().cloned())
        .map_err(|e| Error::input(path, Location::File, Some("path"), e.to_string()))?;
    let (loss, grid_error) = (column("loss")?, column("grid_error")?);
    Ok(indices
        .into_no_null_iter()
        .zip(loss.into_no_null_iter())
        .zip(grid_error.into_no_null_iter())
        .map(|((path, loss), grid_error)| TailPath {
            path,
            loss,
            grid_error,
        })
        .collect())
}
