//! The what-if cache (`whatif --cache DIR`): a base run kept on disk so that later what-ifs on
//! the same inputs revalue only their trades.
//!
//! It holds the book's USD P&L on every path and every path's horizon moves, column by
//! column: what revaluing any trade on those paths reads. A what-if then costs the trades'
//! revaluation on the columns of their underlyings, not a new simulation, and gives the
//! numbers of an uncached what-if to the last bit (both add the trades' P&L to the same
//! base P&L on the same moves).
//!
//! Layout: `DIR/FINGERPRINT/` (the fingerprint of the loaded inputs, 16 hex digits) holds
//! `manifest.json` (format, fingerprint, paths, underlyings, surface width), `base_pnl.f64`,
//! `log_spot.U.f64` and `vol_ratio.U.f64` per model underlying U (its index), and
//! `surface.J.f64` per slot J of the paths' surface rows; each a column of raw
//! little-endian f64, one number per path in path order. A cache is written into a
//! directory of its own and renamed into place whole, so a reader never sees a half-written
//! one and two writers never mix; caches of other inputs in DIR are then removed. A cache
//! whose manifest differs from the job's, or whose files are missing or short, is rebuilt,
//! and so is one whose first paths this build does not reproduce to the last bit (a cache
//! written by a build with other numerics).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::input::job::Job;
use crate::mc::paths::HorizonMoves;
use crate::mc::simulation::SimulationSettings;
use crate::model::factors::FactorModel;

/// Bumped when the layout or the meaning of a column changes.
const FORMAT: u32 = 1;

/// What the cache was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    /// FNV-1a of the loaded model, netted book, valuation time and run settings.
    fingerprint: String,
    paths: u64,
    underlyings: usize,
    surface_width: usize,
}

/// A cache directory whose manifest matches the job.
#[derive(Debug, Clone)]
pub struct MovesCache {
    dir: PathBuf,
    manifest: Manifest,
}

/// The columns of the moves one what-if reads, read block by block from a cache.
#[derive(Debug, Clone)]
pub struct CachedMoves {
    /// The book's USD P&L per path.
    base_pnl: PathBuf,
    /// Per column of the compact moves: the model underlying's ln(S_h/S_0) and iv_h/iv_0
    /// files.
    spot_and_vol: Vec<(PathBuf, PathBuf)>,
    /// Every surface slot's file.
    surface: Vec<PathBuf>,
}

/// The open column files of [`CachedMoves`], read at offsets (shared by worker threads).
#[derive(Debug)]
pub struct ColumnReader {
    base_pnl: fs::File,
    files: Vec<(fs::File, fs::File)>,
    surface: Vec<fs::File>,
}

/// 64-bit FNV-1a of the loaded inputs that decide the paths and the book's P&L on them: the
/// factor model (not the path its scenario was named by), the netted book, the valuation
/// time, paths, seed, horizon and steps (not the thread count, which changes nothing), and
/// this build's version.
pub fn fingerprint(job: &Job, settings: &SimulationSettings) -> String {
    use std::fmt::Write as _;
    let model = FactorModel {
        file: PathBuf::new(),
        ..job.model.clone()
    };
    let mut hash = Fnv1a::default();
    write!(
        hash,
        "{}|{:?}|{:?}|{:?}|{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        model,
        job.aggregated,
        job.valuation_time,
        settings.paths,
        settings.seed,
        settings.horizon_days,
        settings.steps
    )
    .expect("hashing text cannot fail");
    format!("{:016x}", hash.0)
}

/// 64-bit FNV-1a of the text written into it, fed as it is formatted (the Debug text of a
/// large book is megabytes; it is never held whole).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        for &b in text.as_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(())
    }
}

impl MovesCache {
    /// The cache in `dir` if one was built from these inputs (`fingerprint`) with this shape
    /// and all its files are whole; `None` when it is absent, stale or damaged.
    pub fn open(
        dir: &Path,
        fingerprint: &str,
        paths: u64,
        underlyings: usize,
        surface_width: usize,
    ) -> Option<MovesCache> {
        let cache_dir = dir.join(fingerprint);
        let text = fs::read_to_string(cache_dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        let expected = Manifest {
            format: FORMAT,
            fingerprint: fingerprint.to_owned(),
            paths,
            underlyings,
            surface_width,
        };
        if manifest != expected {
            return None;
        }
        let cache = MovesCache {
            dir: cache_dir,
            manifest,
        };
        let bytes = paths * 8;
        let whole = cache
            .column_files()
            .iter()
            .all(|f| fs::metadata(f).is_ok_and(|m| m.len() == bytes));
        whole.then_some(cache)
    }

    /// Makes sure `dir` exists and is a directory, before a simulation whose results would
    /// be written there.
    pub fn prepare(dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))
    }

    /// Writes a cache of `base_pnl` (USD, per path) and the moves of every path (`blocks`,
    /// in path order) into `dir/fingerprint`: into a directory of its own first, renamed
    /// into place when whole; then removes the caches of other inputs in `dir`.
    pub fn write(
        dir: &Path,
        fingerprint: &str,
        base_pnl: &[f64],
        blocks: &[HorizonMoves],
    ) -> Result<MovesCache> {
        let (underlyings, surface_width) = blocks
            .first()
            .map_or((0, 0), |b| (b.underlyings, b.surface_width));
        let manifest = Manifest {
            format: FORMAT,
            fingerprint: fingerprint.to_owned(),
            paths: base_pnl.len() as u64,
            underlyings,
            surface_width,
        };
        fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
        let partial = dir.join(format!("{fingerprint}.partial-{}", std::process::id()));
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir(&partial).map_err(|e| Error::output(&partial, e))?;
        let staged = MovesCache {
            dir: partial.clone(),
            manifest,
        };
        if let Err(e) = staged.write_columns(base_pnl, blocks) {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        let place = dir.join(fingerprint);
        // a cache of the same inputs that is being replaced (damaged, or from another build)
        let _ = fs::remove_dir_all(&place);
        if fs::rename(&partial, &place).is_err() {
            // another process put the same inputs' cache in place meanwhile: keep theirs
            let _ = fs::remove_dir_all(&partial);
            if !place.join("manifest.json").exists() {
                return Err(Error::output(&place, "could not move the cache into place"));
            }
        }
        remove_other_caches(dir, fingerprint);
        Ok(MovesCache {
            dir: place,
            manifest: staged.manifest,
        })
    }

    /// Every column and the manifest (last) into this cache's directory.
    fn write_columns(&self, base_pnl: &[f64], blocks: &[HorizonMoves]) -> Result<()> {
        write_column(&self.dir.join("base_pnl.f64"), base_pnl.iter().copied())?;
        for u in 0..self.manifest.underlyings {
            let spot = blocks.iter().flat_map(|b| b.log_spot_column(u));
            write_column(&self.spot_file(u), spot)?;
            let vol = blocks.iter().flat_map(|b| b.vol_ratio_column(u));
            write_column(&self.vol_file(u), vol)?;
        }
        for slot in 0..self.manifest.surface_width {
            let column = blocks.iter().flat_map(|b| b.surface_column(slot));
            write_column(&self.surface_file(slot), column)?;
        }
        let path = self.dir.join("manifest.json");
        let text = serde_json::to_string_pretty(&self.manifest).expect("manifest serialises");
        fs::write(&path, text).map_err(|e| Error::output(&path, e))
    }

    /// The book's P&L and every column's moves on the first `rows` paths, for checking
    /// that this build reproduces them.
    pub fn head(&self, rows: usize) -> Result<(Vec<f64>, HorizonMoves)> {
        let rows = rows.min(self.manifest.paths as usize);
        let all: Vec<usize> = (0..self.manifest.underlyings).collect();
        let reader = self.moves(&all).reader()?;
        let mut moves = HorizonMoves::default();
        reader.fill(0, rows, &mut Vec::new(), &mut moves)?;
        let mut base = vec![0.0; rows];
        reader.base_pnl(0, &mut base)?;
        Ok((base, moves))
    }

    /// Paths in the cache.
    pub fn paths(&self) -> usize {
        self.manifest.paths as usize
    }

    /// The moves of model underlyings `underlyings` (in that order: column i of the compact
    /// moves is model underlying `underlyings[i]`) and every surface slot.
    pub fn moves(&self, underlyings: &[usize]) -> CachedMoves {
        CachedMoves {
            base_pnl: self.dir.join("base_pnl.f64"),
            spot_and_vol: underlyings
                .iter()
                .map(|&u| (self.spot_file(u), self.vol_file(u)))
                .collect(),
            surface: (0..self.manifest.surface_width)
                .map(|slot| self.surface_file(slot))
                .collect(),
        }
    }

    fn spot_file(&self, u: usize) -> PathBuf {
        self.dir.join(format!("log_spot.{u}.f64"))
    }

    fn vol_file(&self, u: usize) -> PathBuf {
        self.dir.join(format!("vol_ratio.{u}.f64"))
    }

    fn surface_file(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("surface.{slot}.f64"))
    }

    fn column_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.dir.join("base_pnl.f64")];
        for u in 0..self.manifest.underlyings {
            files.push(self.spot_file(u));
            files.push(self.vol_file(u));
        }
        files.extend((0..self.manifest.surface_width).map(|slot| self.surface_file(slot)));
        files
    }
}

impl CachedMoves {
    /// A reader of these columns (open files).
    pub fn reader(&self) -> Result<ColumnReader> {
        let open = |path: &PathBuf| fs::File::open(path).map_err(|e| read_error(&e));
        Ok(ColumnReader {
            base_pnl: open(&self.base_pnl)?,
            files: self
                .spot_and_vol
                .iter()
                .map(|(spot, vol)| Ok((open(spot)?, open(vol)?)))
                .collect::<Result<_>>()?,
            surface: self.surface.iter().map(open).collect::<Result<_>>()?,
        })
    }
}

impl ColumnReader {
    /// The compact moves of paths `first..first + len` into `moves`, column-major (each
    /// column read in place; `buffer` is scratch for the surface rows): column i holds the
    /// i-th underlying the reader was made for, and the surface rows are whole.
    pub fn fill(
        &self,
        first: usize,
        len: usize,
        buffer: &mut Vec<f64>,
        moves: &mut HorizonMoves,
    ) -> Result<()> {
        let (n, w) = (self.files.len(), self.surface.len());
        moves.reset_columns(len, n, w);
        for (u, (spot, vol)) in self.files.iter().enumerate() {
            let column = moves.column_range(u);
            read_at(spot, first, &mut moves.log_spot[column.clone()])?;
            read_at(vol, first, &mut moves.vol_ratio[column])?;
        }
        buffer.resize(len, 0.0);
        for (slot, file) in self.surface.iter().enumerate() {
            read_at(file, first, buffer)?;
            scatter(buffer, &mut moves.surface, w, slot);
        }
        Ok(())
    }

    /// The book's USD P&L on paths `first..first + pnl.len()` into `pnl`.
    pub fn base_pnl(&self, first: usize, pnl: &mut [f64]) -> Result<()> {
        read_at(&self.base_pnl, first, pnl)
    }
}

/// Reads the numbers of paths `first..first + values.len()` of a column file into
/// `values`.
fn read_at(file: &fs::File, first: usize, values: &mut [f64]) -> Result<()> {
    let offset = first as u64 * 8;
    // SAFETY: any 8 bytes are a valid f64 and u8 needs no alignment, so the numbers'
    // memory can be read into as bytes; the slice covers exactly that memory.
    let buffer = unsafe {
        std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), values.len() * 8)
    };
    #[cfg(unix)]
    let read = std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset);
    #[cfg(not(any(unix, windows)))]
    let read = {
        use std::io::{Read, Seek, SeekFrom};
        file.try_clone().and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.read_exact(buffer))
        })
    };
    #[cfg(windows)]
    let read = {
        let mut done = 0;
        loop {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buffer[done..],
                offset + done as u64,
            ) {
                Ok(0) if done < buffer.len() => break Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) if done + n == buffer.len() => break Ok(()),
                Ok(n) => done += n,
                Err(e) => break Err(e),
            }
        }
    };
    read.map_err(|e| read_error(&e))?;
    // the files are little-endian
    if cfg!(target_endian = "big") {
        for v in values.iter_mut() {
            *v = f64::from_bits(u64::from_le(v.to_bits()));
        }
    }
    Ok(())
}

/// A failure to read the cache.
fn read_error(e: &std::io::Error) -> Error {
    Error::Resource {
        message: format!("cannot read the what-if cache: {e}; run again, or delete it"),
    }
}

/// Removes the caches of other inputs (directories named by a fingerprint) from `dir`,
/// as far as it can: a what-if reads one cache at a time.
fn remove_other_caches(dir: &Path, fingerprint: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let named_like_one = name.len() == 16 && name.chars().all(|c| c.is_ascii_hexdigit());
        let is_cache = named_like_one
            && fs::read_to_string(entry.path().join("manifest.json"))
                .is_ok_and(|text| serde_json::from_str::<Manifest>(&text).is_ok());
        if is_cache && name != fingerprint {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes `column` into entry `index` of consecutive rows of `width` numbers of `rows`.
fn scatter(column: &[f64], rows: &mut [f64], width: usize, index: usize) {
    for (row, &value) in rows.chunks_exact_mut(width).zip(column) {
        row[index] = value;
    }
}

fn write_column(path: &Path, values: impl Iterator<Item = f64>) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::output(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for v in values {
        out.write_all(&v.to_le_bytes())
            .map_err(|e| Error::output(path, e))?;
    }
    out.flush().map_err(|e| Error::output(path, e))
}
