//! Value stability: the JSON of every sample command and the first shocks of seed 0, pinned to
//! the last bit. A change of the random stream, of an estimator or of the JSON layout fails
//! here; when a change is meant, rewrite the pinned files with
//! `TAILRISK_BLESS=1 cargo test --release --test golden` and say why in the commit.
//! Moves that should change nothing (refactors) must pass unchanged.

mod common;

use std::path::Path;
use std::process::Command;

use tailrisk::input::job::Job;
use tailrisk::mc::shocks::{block_rng, ShockGenerator, BLOCK_PATHS};

/// One pinned command: its name (`tests/golden/NAME.json`) and its arguments, run from the
/// repository root with relative paths.
struct Pinned {
    name: &'static str,
    args: Vec<String>,
}

fn pinned(name: &'static str, args: &[&str]) -> Pinned {
    Pinned {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the repository root; its stdout, which must be a success.
fn stdout_of(args: &[String]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("the tailrisk binary runs");
    assert!(
        out.status.success(),
        "tailrisk {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compares `actual` with `tests/golden/FILE`, or writes it when blessing.
fn check(file: &str, actual: &[u8]) -> Option<String> {
    let path = root().join("tests/golden").join(file);
    if std::env::var_os("TAILRISK_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write the pinned file");
        return None;
    }
    let expected = std::fs::read(&path).expect("pinned file present");
    (expected != actual).then(|| {
        format!(
            "{file}: output differs from {} (first difference at byte {})",
            path.display(),
            expected
                .iter()
                .zip(actual)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(actual.len()))
        )
    })
}

/// `run` (one- and ten-step, with contributions), `whatif`, `stress`, `exposures`,
/// `backtest` and `merge` of the shipped samples, byte for byte.
#[test]
fn sample_commands_give_the_pinned_json() {
    let fund = "scenarios/fund.toml";
    let ten_day = "scenarios/fund_10d.toml";
    let history = "scenarios/data/bitstamp_btc_eth_ltc_usd_daily.csv";
    let json = ["--format", "json"];
    let commands = [
        pinned("run", &["run", fund, "--paths", "50000"]),
        pinned("run_10d", &["run", ten_day, "--paths", "20000"]),
        pinned(
            "run_contributions",
            &["run", fund, "--paths", "20000", "--contributions", "venue"],
        ),
        pinned(
            "whatif",
            &[
                "whatif",
                fund,
                "--paths",
                "20000",
                "--trades",
                "scenarios/hedge.csv",
            ],
        ),
        pinned("stress", &["stress", fund]),
        pinned("exposures", &["exposures", fund]),
        pinned(
            "backtest",
            &[
                "backtest",
                fund,
                "--history",
                history,
                "--days",
                "120",
                "--paths",
                "2000",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for command in commands {
        let mut args = command.args.clone();
        args.extend(json.iter().map(|s| s.to_string()));
        let file = format!("{}.json", command.name);
        failures.extend(check(&file, &stdout_of(&args)));
    }
    let shards = tempfile::tempdir().expect("temporary directory");
    let dir = shards.path().to_str().expect("utf-8 path").to_owned();
    for shard in ["0/3", "1/3", "2/3"] {
        let args = [
            "run", ten_day, "--paths", "20000", "--shard", shard, "--out", &dir,
        ];
        stdout_of(&args.map(str::to_owned));
    }
    let mut merge = vec!["merge".to_owned()];
    for i in 0..3 {
        merge.push(format!("{dir}/shard-{i}-of-3.json"));
    }
    merge.extend(json.iter().map(|s| s.to_string()));
    failures.extend(check("merge.json", &stdout_of(&merge)));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first shock vectors of block 0 under seed 0 with the sample fund's model (6 factors,
/// Student-t with 4 dof), as IEEE-754 bit patterns.
#[test]
fn the_random_stream_of_seed_zero_is_pinned() {
    let job = Job::load(&root().join("scenarios/fund.toml"), false).expect("sample loads");
    let generator =
        ShockGenerator::new(job.model.cholesky.as_ref(), job.model.distribution).unwrap();
    let k = generator.dimension();
    let (mut normals, mut shocks) = (vec![0.0; BLOCK_PATHS * k], vec![0.0; BLOCK_PATHS * k]);
    generator.fill(&mut block_rng(0, 0), &mut normals, &mut shocks);
    let bits: Vec<String> = shocks[..2 * k]
        .iter()
        .map(|x| format!("{:016x}", x.to_bits()))
        .collect();
    let text = format!("{}\n", bits.join("\n"));
    if let Some(failure) = check("shocks_seed0.txt", text.as_bytes()) {
        panic!("{failure}");
    }
}
