//! Synthetic books for benchmarks and scale tests: `n` underlyings with a one-factor
//! correlation structure and many distinct options, written as an ordinary scenario folder
//! (scenario TOML, market CSV, positions CSV) so every tool reads it like a user's book.
//!
//! Everything is drawn from a ChaCha8 stream of `seed`, so the same arguments write the same
//! files byte for byte.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The size and randomness of a synthetic book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Number of underlyings (named U01, U02, …).
    pub underlyings: usize,
    /// Number of option positions; strikes are continuous, so nearly all are distinct.
    pub options: usize,
    /// Monte Carlo paths written into `[run] paths`.
    pub paths: u64,
    /// Seed of the ChaCha8 stream every random choice is drawn from, also written as `[run] seed`:
    /// the same spec writes the same files byte for byte.
    pub seed: u64,
}

/// Loadings of the one-factor correlation: spot factors load `SPOT_LOADING` on a market
/// factor, vol factors `VOL_ON_MARKET` on it and `VOL_LOADING` on a common vol factor, so
/// corr(spot, spot) = 0.64, corr(vol, vol) = 0.52, corr(spot, vol) = −0.32; positive
/// definite by construction (every factor keeps idiosyncratic variance).
const SPOT_LOADING: f64 = 0.8;
const VOL_ON_MARKET: f64 = -0.4;
const VOL_LOADING: f64 = 0.6;

/// Option expiries of the synthetic book (Friday 08:00 UTC), after the valuation time.
const EXPIRIES: [&str; 8] = [
    "2026-11-27",
    "2026-12-04",
    "2026-12-25",
    "2027-01-29",
    "2027-02-26",
    "2027-03-26",
    "2027-06-25",
    "2027-09-24",
];
const AS_OF: &str = "2026-11-20T08:00:00Z";

/// Writes `scenario.toml`, `market.csv` and `positions.csv` into `dir` (created if missing)
/// and returns the scenario file's path.
pub fn write_synthetic_scenario(dir: &Path, spec: &SyntheticSpec) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let names: Vec<String> = (1..=spec.underlyings).map(|i| format!("U{i:02}")).collect();
    let spots: Vec<f64> = names
        .iter()
        .map(|_| (10.0 * 10f64.powf(rng.random_range(0.0..3.0))).round())
        .collect();
    write(dir, "market.csv", &market_csv(&names, &spots, &mut rng))?;
    write(
        dir,
        "positions.csv",
        &positions_csv(&names, &spots, spec.options, &mut rng),
    )?;
    let scenario = dir.join("scenario.toml");
    write(dir, "scenario.toml", &scenario_toml(&names, spec, &mut rng))?;
    Ok(scenario)
}

fn market_csv(names: &[String], spots: &[f64], rng: &mut ChaCha8Rng) -> String {
    let mut text = String::from("underlying,spot,atm_vol,rate,as_of\n");
    for (name, spot) in names.iter().zip(spots) {
        let atm_vol: f64 = rng.random_range(0.4..1.0);
        let _ = writeln!(text, "{name},{spot},{atm_vol:.4},0.04,{AS_OF}");
    }
    text
}

fn positions_csv(names: &[String], spots: &[f64], options: usize, rng: &mut ChaCha8Rng) -> String {
    let venues = ["deribit", "okx", "binance", "cme"];
    let mut text = String::from(
        "id,kind,underlying,quantity,venue,book,option_type,strike,expiry,implied_vol\n",
    );
    for (name, spot) in names.iter().zip(spots) {
        let units = (100_000.0 / spot).round();
        let _ = writeln!(
            text,
            "{name}-spot,spot,{name},{units},coinbase,treasury,,,,"
        );
        let _ = writeln!(
            text,
            "{name}-perp,perpetual,{name},{},binance,basis,,,,",
            -units / 2.0
        );
    }
    for i in 0..options {
        let u = i % names.len();
        let strike = (spots[u] * rng.random_range(0.5..1.6) * 100.0).round() / 100.0;
        let kind = if rng.random_bool(0.5) { "call" } else { "put" };
        let expiry = EXPIRIES[rng.random_range(0..EXPIRIES.len())];
        let size = (10_000.0 / spots[u]).max(1.0).round();
        let quantity = rng.random_range(-size..=size).round();
        let vol: f64 = rng.random_range(0.4..1.1);
        let venue = venues[rng.random_range(0..venues.len())];
        let _ = writeln!(
            text,
            "opt{i:06},option,{},{quantity},{venue},vol,{kind},{strike},{expiry},{vol:.4}",
            names[u]
        );
    }
    text
}

fn scenario_toml(names: &[String], spec: &SyntheticSpec, rng: &mut ChaCha8Rng) -> String {
    let mut text = format!(
        "# Synthetic book: {} underlyings, {} options (tailrisk synthetic).\n\n[run]\npaths = {}\nseed = {}\n\n[model]\ndistribution = \"student-t\"\ndof = 4\n",
        spec.underlyings, spec.options, spec.paths, spec.seed
    );
    for name in names {
        let spot_vol: f64 = rng.random_range(0.4..1.2);
        let vol_of_vol: f64 = rng.random_range(0.8..1.6);
        let _ = write!(
            text,
            "\n[model.factors.{name}]\nspot_vol = {spot_vol:.4}\nvol_of_vol = {vol_of_vol:.4}\n"
        );
    }
    let factors: Vec<String> = names
        .iter()
        .map(|n| format!("{n}.spot"))
        .chain(names.iter().map(|n| format!("{n}.vol")))
        .collect();
    let quoted: Vec<String> = factors.iter().map(|f| format!("\"{f}\"")).collect();
    let _ = write!(
        text,
        "\n[model.correlation]\nfactors = [{}]\nmatrix = [\n",
        quoted.join(", ")
    );
    let n = names.len();
    for i in 0..2 * n {
        let row: Vec<String> = (0..2 * n)
            .map(|j| format!("{:.4}", one_factor_correlation(i, j, n)))
            .collect();
        let _ = writeln!(text, "  [{}],", row.join(", "));
    }
    text.push_str(
        "]\n\n[market]\nfile = \"market.csv\"\n\n[portfolio]\nfile = \"positions.csv\"\n",
    );
    text
}

/// Correlation of factors i and j: the first n are spots, the next n vols.
fn one_factor_correlation(i: usize, j: usize, n: usize) -> f64 {
    if i == j {
        return 1.0;
    }
    let loadings = |k: usize| {
        if k < n {
            (SPOT_LOADING, 0.0)
        } else {
            (VOL_ON_MARKET, VOL_LOADING)
        }
    };
    let (a, b) = (loadings(i), loadings(j));
    a.0 * b.0 + a.1 * b.1
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| Error::output(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::job::Job;

    #[test]
    fn synthetic_book_loads_with_distinct_options() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SyntheticSpec {
            underlyings: 5,
            options: 500,
            paths: 1000,
            seed: 1,
        };
        let scenario = write_synthetic_scenario(dir.path(), &spec).unwrap();
        let job = Job::load(&scenario, false).unwrap();
        assert_eq!(job.book.positions.len(), 500 + 2 * 5);
        assert_eq!(job.aggregated.option_count(), 500);
        assert_eq!(job.model.factor_names.len(), 10);
    }

    #[test]
    fn same_seed_writes_the_same_files() {
        let spec = SyntheticSpec {
            underlyings: 3,
            options: 50,
            paths: 10,
            seed: 4,
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_synthetic_scenario(a.path(), &spec).unwrap();
        write_synthetic_scenario(b.path(), &spec).unwrap();
        for name in ["scenario.toml", "market.csv", "positions.csv"] {
            let read = |d: &Path| std::fs::read(d.join(name)).unwrap();
            assert_eq!(read(a.path()), read(b.path()), "{name}");
        }
    }
}
