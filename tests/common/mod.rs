//! Helpers shared by the integration tests: scenario folders in a temporary directory and
//! runs of the real `tailrisk` binary.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The sample market file's contents (BTC, ETH, SOL as of 2026-11-20 08:00 UTC).
pub const MARKET: &str = "underlying,spot,atm_vol,rate,as_of
BTC,92000,0.50,0.04,2026-11-20T08:00:00Z
ETH,3100,0.65,0.04,2026-11-20T08:00:00Z
SOL,140,0.85,0.04,2026-11-20T08:00:00Z
";

/// A small valid positions file: spot, perpetual, future and two options.
pub const POSITIONS: &str =
    "id,kind,underlying,quantity,multiplier,venue,option_type,strike,expiry,implied_vol
a,spot,BTC,10,,coinbase,,,,
b,perpetual,ETH,-100,,binance,,,,
c,future,BTC,-1,5,cme,,,,
d,option,BTC,5,,deribit,call,100000,2026-12-25,0.5
e,option,ETH,-50,,deribit,put,3000,2026-12-25,
";

/// A valid model section for BTC, ETH and SOL with a positive definite correlation.
pub const MODEL: &str = r#"[model]
distribution = "student-t"
dof = 4

[model.factors.BTC]
spot_vol = 0.55
vol_of_vol = 1.0

[model.factors.ETH]
spot_vol = 0.70
vol_of_vol = 1.2

[model.factors.SOL]
spot_vol = 0.90

[model.correlation]
factors = ["BTC.spot", "ETH.spot", "BTC.vol"]
matrix = [[1.0, 0.8, -0.3], [0.8, 1.0, -0.2], [-0.3, -0.2, 1.0]]
"#;

/// The default `[run]` section of test scenarios: small and fast.
pub const RUN: &str = "[run]\npaths = 20000\nseed = 11\n";

/// A scenario folder in a temporary directory.
pub struct Scenario {
    pub dir: TempDir,
}

impl Scenario {
    /// A folder with `scenario.toml` = run + model + market/portfolio sections pointing to
    /// `market.csv` and `positions` (a file name in the folder), and those files' contents.
    pub fn new(
        run: &str,
        model: &str,
        market: &str,
        positions_name: &str,
        positions: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let scenario = Scenario { dir };
        scenario.write(
            "scenario.toml",
            &format!(
                "{run}\n{model}\n[market]\nfile = \"market.csv\"\n\n[portfolio]\nfile = \"{positions_name}\"\n"
            ),
        );
        scenario.write("market.csv", market);
        if !positions.is_empty() {
            scenario.write(positions_name, positions);
        }
        scenario
    }

    /// The standard valid scenario with the given positions file contents.
    pub fn with_positions(positions: &str) -> Self {
        Scenario::new(RUN, MODEL, MARKET, "positions.csv", positions)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn scenario(&self) -> PathBuf {
        self.path("scenario.toml")
    }

    pub fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents).expect("write test file");
    }

    /// Runs `tailrisk <command> scenario.toml <extra...>`.
    pub fn tailrisk(&self, command: &str, extra: &[&str]) -> Output {
        let scenario = self.scenario();
        let mut args = vec![command, scenario.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        tailrisk(&args)
    }
}

/// Runs the binary with the given arguments.
pub fn tailrisk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .args(args)
        .output()
        .expect("the tailrisk binary runs")
}

/// Parses the stdout of a successful `--format json` run.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "tailrisk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// The shipped sample scenario.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// The measure at `confidence` of a run's JSON: (var, es, var_stderr, es_stderr).
pub fn measure(doc: &serde_json::Value, confidence: f64) -> (f64, f64, f64, f64) {
    let m = doc["measures"]
        .as_array()
        .expect("measures array")
        .iter()
        .find(|m| (m["confidence"].as_f64().unwrap() - confidence).abs() < 1e-12)
        .expect("confidence level present");
    let f = |k: &str| m[k].as_f64().expect("number");
    (f("var"), f("es"), f("var_stderr"), f("es_stderr"))
}

/// Writes the columns `keep` (all if empty) of CSV text as a Parquet file, numbers as f64 and
/// everything else as strings (as a user's export would have them).
pub fn write_parquet_from_csv(csv: &str, path: &Path, keep: &[&str]) {
    use polars::prelude::*;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut columns = Vec::new();
    for (i, name) in header.iter().enumerate() {
        if !keep.is_empty() && !keep.contains(name) {
            continue;
        }
        let cells: Vec<&str> = rows.iter().map(|r| r[i]).collect();
        let numbers: Option<Vec<Option<f64>>> = cells
            .iter()
            .map(|c| {
                if c.is_empty() {
                    Some(None)
                } else {
                    c.parse().ok().map(Some)
                }
            })
            .collect();
        let column = match numbers {
            Some(values) if cells.iter().any(|c| !c.is_empty()) => {
                Column::new((*name).into(), values)
            }
            _ => Column::new(
                (*name).into(),
                cells
                    .iter()
                    .map(|c| (!c.is_empty()).then_some(*c))
                    .collect::<Vec<Option<&str>>>(),
            ),
        };
        columns.push(column);
    }
    let mut frame = DataFrame::new(rows.len(), columns).expect("frame");
    let file = std::fs::File::create(path).expect("create parquet");
    ParquetWriter::new(file)
        .finish(&mut frame)
        .expect("write parquet");
}

/// Runs shards 0..`count` of `scenario` with `paths` paths and `extra` flags into `dir`;
/// the shards' JSON files, for `tailrisk merge`.
pub fn shards(scenario: &Path, count: u64, paths: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    (0..count)
        .map(|i| {
            let shard = format!("{i}/{count}");
            let mut args = vec![
                "run",
                scenario.to_str().expect("utf-8 path"),
                "--paths",
                paths,
                "--shard",
                &shard,
                "--out",
                dir.to_str().expect("utf-8 path"),
            ];
            args.extend_from_slice(extra);
            let out = tailrisk(&args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir.join(format!("shard-{i}-of-{count}.json"))
                .display()
                .to_string()
        })
        .collect()
}
