//! No panic on any input: thousands of seeded random mutations of the sample scenario,
//! market, positions, series and price-history files, and random correlation matrices.
//!
//! The bulk runs in process (load the job, simulate a few paths, stress, contributions,
//! backtest, calibration under `catch_unwind` with a per-case time limit); a few hundred
//! cases spawn the binary with tiny path counts. The only assertions: no panic, no hang, and
//! an error is always an input (exit code 3) or model (4) error. A failure prints the seed
//! and case number, so it can be replayed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tailrisk::backtest::statistics::{backtest, load_series};
use tailrisk::book::exposures::exposures;
use tailrisk::book::grouping::Grouping;
use tailrisk::input::job::Job;
use tailrisk::input::scenario::load_stress_file;
use tailrisk::mc::simulation::{RevaluationMode, SimulationSettings, Simulator};
use tailrisk::mc::threads::Threads;
use tailrisk::model::calibration::{calibrate, load_returns, ReturnSeries, VolHistory, Weighting};
use tailrisk::risk::contributions::contributions_of;
use tailrisk::risk::measures::var_es;
use tailrisk::stress::replay::{replay, PriceHistory};
use tailrisk::stress::scenarios::{stress_grids, StressBook, GRID_SPOT_MOVES, GRID_VOL_MOVES};

/// Seed of the whole run, kept to reproduce; `TAILRISK_FUZZ_SEED` explores others.
const SEED: u64 = 20_260_101;
/// In-process cases; `TAILRISK_FUZZ_CASES` runs more (the binary cases scale with it).
const IN_PROCESS_CASES: usize = 6000;
/// Cases that spawn the binary.
const BINARY_CASES: usize = 500;

/// A setting from the environment, else its default.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed of this run.
fn seed() -> u64 {
    setting("TAILRISK_FUZZ_SEED", SEED)
}
/// Paths per in-process simulation.
const PATHS: u64 = 64;
/// Longest a single case may take before it counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// Values that break parsers and validators: empty, not numbers, non-finite, huge, tiny,
/// negative, unicode, dates out of range, quotes and separators.
const CELLS: &[&str] = &[
    "",
    " ",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "-0",
    "1e308",
    "-1e308",
    "1e-320",
    "1e400",
    "abc",
    "ü",
    "🚀",
    "\"",
    "\"\"",
    "99999999999999999999999",
    "18446744073709551616",
    "2026-13-45",
    "2026-11-20",
    "1970-01-01",
    "9999-12-31T23:59:59Z",
    "2026-11-20T08:00:00Z",
    "call",
    "put",
    "option",
    "spot",
    "perp",
    "BTC",
    "XRP",
    "1,2",
    "0x10",
    "+5",
    ".5",
    "1e",
    "--1",
    "0.5",
    "3",
    "100000",
];

/// TOML values of every type, in and out of range.
const TOML_VALUES: &[&str] = &[
    "\"many\"",
    "\"\"",
    "\"🚀\"",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1",
    "2",
    "2.0000001",
    "0.5",
    "1e308",
    "-1e308",
    "5e-324",
    "18446744073709551615",
    "4294967296",
    "9223372036854775807",
    "[]",
    "[1, \"a\"]",
    "[0.99, 1.5]",
    "[0.0]",
    "{}",
    "true",
    "1979-05-27T07:32:00Z",
    "\"student-t\"",
    "\"normal\"",
    "[[1.0, 0.5], []]",
];

/// Correlation factor names: the sample's, unknown, duplicated, empty and unicode.
const FACTORS: &[&str] = &[
    "BTC.spot",
    "ETH.spot",
    "SOL.spot",
    "BTC.vol.7d",
    "ETH.vol.30d",
    "SOL.vol",
    "BTC.skew",
    "BTC.vol.90d",
    "XRP.spot",
    "BTC",
    "",
    "ü.vol",
    "BTC.vol",
    "BTC.vol.45d",
];

/// How many of [`FACTORS`], from the first, are factors of the sample model.
const MODEL_FACTORS: usize = 8;

/// The sample files and derived inputs every case starts from.
struct Inputs {
    scenario: String,
    market: String,
    positions: String,
    series: String,
    history: String,
    stress: String,
    /// The sample implied-vol surface.
    surface: String,
    /// The sample positions as a Parquet file.
    parquet: Vec<u8>,
}

impl Inputs {
    fn sample() -> Inputs {
        let read = |name: &str| std::fs::read_to_string(common::sample(name)).unwrap();
        let scenario = read("fund.toml").replace("paths = 200000", "paths = 64");
        let history: String = read("data/bitstamp_btc_eth_ltc_usd_daily.csv")
            .lines()
            .take(1 + 200 + 1000)
            .skip(1000) // a stretch where BTC, ETH and LTC all trade
            .collect::<Vec<_>>()
            .join("\n");
        let header = read("data/bitstamp_btc_eth_ltc_usd_daily.csv")
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let mut series = String::from("date,pnl,var,es\n");
        for i in 0..120 {
            let loss = if i % 37 == 5 { 150.0 } else { (i % 11) as f64 };
            series.push_str(&format!("2020-01-{i:03},{},100,130\n", -loss));
        }
        let dir = tempfile::tempdir().unwrap();
        let parquet = dir.path().join("positions.parquet");
        common::write_parquet_from_csv(&read("positions.csv"), &parquet, &[]);
        Inputs {
            parquet: std::fs::read(&parquet).unwrap(),
            scenario,
            market: read("market.csv"),
            positions: read("positions.csv"),
            series,
            history: format!("{header}\n{history}\n"),
            stress: read("stress/crypto_history.toml"),
            surface: read("surface.csv"),
        }
    }
}

/// Which file a case mutates.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Scenario,
    Correlation,
    Market,
    Positions,
    Series,
    History,
    Stress,
    /// The positions as Parquet, its bytes truncated or flipped.
    Parquet,
    /// The implied-vol surface.
    Surface,
}

const TARGETS: [Target; 9] = [
    Target::Scenario,
    Target::Surface,
    Target::Correlation,
    Target::Market,
    Target::Positions,
    Target::Series,
    Target::History,
    Target::Stress,
    Target::Parquet,
];

/// A random char boundary of `text` (0 and its length included).
fn boundary(rng: &mut ChaCha8Rng, text: &str) -> usize {
    let mut at = rng.random_range(0..=text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One byte-level or line-level mutation of any text file.
fn mutate_bytes(rng: &mut ChaCha8Rng, text: &str) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let pick = |rng: &mut ChaCha8Rng, n: usize| rng.random_range(0..n.max(1));
    match rng.random_range(0..9) {
        0 => {
            let mut bytes = text.as_bytes().to_vec();
            bytes.truncate(rng.random_range(0..=bytes.len()));
            return bytes;
        }
        1 => {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                if !bytes.is_empty() {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.random_range(0..8);
                }
            }
            return bytes;
        }
        2 => {
            let at = boundary(rng, text);
            let token = CELLS.choose(rng).unwrap();
            return format!("{}{token}{}", &text[..at], &text[at..]).into_bytes();
        }
        3 => return Vec::new(),
        4 if !lines.is_empty() => {
            let i = pick(rng, lines.len());
            lines.remove(i);
        }
        5 if !lines.is_empty() => {
            let i = pick(rng, lines.len());
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        6 if lines.len() > 1 => {
            let (i, j) = (pick(rng, lines.len()), pick(rng, lines.len()));
            lines.swap(i, j);
        }
        7 => lines.truncate(pick(rng, lines.len() + 1)),
        _ => {
            let at = boundary(rng, text);
            return format!("{}\u{0}\u{feff}é\r\n{}", &text[..at], &text[at..]).into_bytes();
        }
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// One cell-level mutation of a CSV table: a weird value, a missing or extra field, a
/// renamed or missing column, a duplicated row.
fn mutate_csv(rng: &mut ChaCha8Rng, text: &str) -> Vec<u8> {
    if rng.random_bool(0.25) {
        return mutate_bytes(rng, text);
    }
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    for _ in 0..rng.random_range(1..4) {
        let r = rng.random_range(0..rows.len());
        if rows[r].is_empty() {
            continue;
        }
        let c = rng.random_range(0..rows[r].len());
        match rng.random_range(0..7) {
            0..=2 => rows[r][c] = (*CELLS.choose(rng).unwrap()).to_owned(),
            3 => {
                rows[r].remove(c);
            }
            4 => rows[r].push((*CELLS.choose(rng).unwrap()).to_owned()),
            5 => {
                let row = rows[r].clone();
                rows.insert(r, row);
            }
            _ => {
                // a column renamed or removed everywhere
                let c = c % rows[0].len();
                if rng.random_bool(0.5) {
                    rows[0][c] = (*CELLS.choose(rng).unwrap()).to_owned();
                } else {
                    for row in rows.iter_mut() {
                        if c < row.len() {
                            row.remove(c);
                        }
                    }
                }
            }
        }
        if rows.is_empty() || rows[0].is_empty() {
            break;
        }
    }
    rows.iter()
        .map(|r| r.join(","))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// Truncated or flipped bytes of a binary file (a few flips land in the page data, others
/// in the footer's metadata).
fn mutate_parquet(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    if rng.random_bool(0.2) {
        bytes.truncate(rng.random_range(0..=bytes.len()));
        return bytes;
    }
    for _ in 0..rng.random_range(1..6) {
        let i = if rng.random_bool(0.5) {
            // near the end: footer and metadata
            bytes.len() - 1 - rng.random_range(0..bytes.len().min(600))
        } else {
            rng.random_range(0..bytes.len())
        };
        bytes[i] = if rng.random_bool(0.5) {
            bytes[i] ^ (1 << rng.random_range(0..8))
        } else {
            rng.random()
        };
    }
    bytes
}

/// One mutation of a TOML file: a value replaced by a value of another type or range, a
/// key or section dropped or duplicated, or a byte-level change.
fn mutate_toml(rng: &mut ChaCha8Rng, text: &str) -> Vec<u8> {
    if rng.random_bool(0.3) {
        return mutate_bytes(rng, text);
    }
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..rng.random_range(1..3) {
        let with_values: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(" = ") && !lines[i].trim_start().starts_with('#'))
            .collect();
        let Some(&i) = with_values.choose(rng) else {
            break;
        };
        let key = lines[i].split(" = ").next().unwrap().to_owned();
        match rng.random_range(0..5) {
            0..=2 => lines[i] = format!("{key} = {}", TOML_VALUES.choose(rng).unwrap()),
            3 => {
                lines.remove(i);
            }
            _ => {
                let line = lines[i].clone();
                lines.insert(i, line.replace(&key, &format!("{key}x")));
            }
        }
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// A random correlation entry: valid, out of range, or not finite.
fn entry(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..12) {
        0 => "nan".to_owned(),
        1 => "inf".to_owned(),
        2 => "1e308".to_owned(),
        3 => "1.0".to_owned(),
        4 => format!("{}", rng.random_range(-2.0..2.0)),
        _ => format!("{}", rng.random_range(-1.0..1.0)),
    }
}

/// A random `[model.correlation]`: any size, ragged rows, asymmetric, beyond ±1, NaN or not
/// positive definite; unknown and repeated factor names.
fn random_correlation(rng: &mut ChaCha8Rng) -> String {
    let k = rng.random_range(0..=MODEL_FACTORS + 1);
    let names: Vec<String> = if rng.random_bool(0.8) {
        FACTORS[..MODEL_FACTORS]
            .choose_multiple(rng, k.min(MODEL_FACTORS))
            .map(|s| format!("\"{s}\""))
            .collect()
    } else {
        (0..k)
            .map(|_| format!("\"{}\"", FACTORS.choose(rng).unwrap()))
            .collect()
    };
    let k = names.len();
    let symmetric = rng.random_bool(0.6);
    let unit_diagonal = rng.random_bool(0.8);
    let mut m: Vec<Vec<String>> = Vec::with_capacity(k);
    for i in 0..k {
        let row = (0..k)
            .map(|j| {
                if i == j && unit_diagonal {
                    "1.0".to_owned()
                } else if symmetric && j < i {
                    m[j][i].clone()
                } else {
                    entry(rng)
                }
            })
            .collect();
        m.push(row);
    }
    if rng.random_bool(0.2) && k > 0 {
        let r = rng.random_range(0..k);
        let keep = rng.random_range(0..=k + 1);
        m[r].resize(keep, "0.1".to_owned());
    }
    if rng.random_bool(0.1) {
        m.pop();
    }
    let rows: Vec<String> = m.iter().map(|r| format!("[{}]", r.join(", "))).collect();
    format!(
        "[model.correlation]\nfactors = [{}]\nmatrix = [{}]\n",
        names.join(", "),
        rows.join(", ")
    )
}

/// The scenario with its correlation section replaced.
fn with_correlation(scenario: &str, section: &str) -> String {
    let start = scenario.find("[model.correlation]").unwrap();
    let end = scenario.find("[market]").unwrap();
    format!("{}{section}\n{}", &scenario[..start], &scenario[end..])
}

/// A folder holding one case: every input file, one of them mutated.
struct Case {
    dir: tempfile::TempDir,
    target: Target,
    repair: bool,
}

impl Case {
    fn new(rng: &mut ChaCha8Rng, inputs: &Inputs) -> Case {
        let target = *TARGETS.choose(rng).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("scenario.toml", inputs.scenario.clone().into_bytes()),
            ("market.csv", inputs.market.clone().into_bytes()),
            ("positions.csv", inputs.positions.clone().into_bytes()),
            ("series.csv", inputs.series.clone().into_bytes()),
            ("history.csv", inputs.history.clone().into_bytes()),
            ("stress.toml", inputs.stress.clone().into_bytes()),
            ("positions.parquet", inputs.parquet.clone()),
            ("surface.csv", inputs.surface.clone().into_bytes()),
        ];
        let mutated = match target {
            Target::Scenario => (0, mutate_toml(rng, &inputs.scenario)),
            Target::Correlation => {
                let text = with_correlation(&inputs.scenario, &random_correlation(rng));
                (0, text.into_bytes())
            }
            Target::Market => (1, mutate_csv(rng, &inputs.market)),
            Target::Positions => (2, mutate_csv(rng, &inputs.positions)),
            Target::Series => (3, mutate_csv(rng, &inputs.series)),
            Target::History => (4, mutate_csv(rng, &inputs.history)),
            Target::Stress => (5, mutate_toml(rng, &inputs.stress)),
            Target::Surface => (7, mutate_csv(rng, &inputs.surface)),
            Target::Parquet => {
                files[0].1 = inputs
                    .scenario
                    .replace("positions.csv", "positions.parquet")
                    .into_bytes();
                (6, mutate_parquet(rng, &inputs.parquet))
            }
        };
        files[mutated.0].1 = mutated.1;
        for (name, bytes) in &files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        Case {
            dir,
            target,
            repair: rng.random_bool(0.5),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn describe(&self) -> String {
        let target = match self.target {
            Target::Scenario | Target::Correlation => "scenario.toml",
            Target::Market => "market.csv",
            Target::Positions => "positions.csv",
            Target::Series => "series.csv",
            Target::History => "history.csv",
            Target::Stress => "stress.toml",
            Target::Parquet => "positions.parquet",
            Target::Surface => "surface.csv",
        };
        let bytes = std::fs::read(self.path(target)).unwrap_or_default();
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) if self.target != Target::Parquet => text.to_owned(),
            _ => format!("{} bytes: {:?}", bytes.len(), bytes),
        };
        format!(
            "{:?} (repair {}): {target} =\n{text}",
            self.target, self.repair
        )
    }
}

/// The library on one case: everything a command would do, with few paths.
fn in_process(case: &Case) -> tailrisk::Result<()> {
    match case.target {
        Target::Series => {
            let series = load_series(&case.path("series.csv"))?;
            let path = case.path("series.csv");
            backtest(&series, 0.99, None, &path)?;
            backtest(&series, 0.95, Some(0.1), &path)?;
            return Ok(());
        }
        Target::History => {
            let history = PriceHistory::load_levels(&case.path("history.csv"), None, ":close")?;
            let returns = history
                .series
                .iter()
                .map(|(u, l)| (u.clone(), ReturnSeries::from_levels(l)))
                .collect();
            for weighting in [Weighting::Sample, Weighting::Ewma { lambda: 0.94 }] {
                let c = calibrate(&returns, &VolHistory::default(), weighting, None, None);
                let _ = c.to_toml("fuzz");
            }
        }
        _ => {}
    }
    let job = Job::load(&case.path("scenario.toml"), case.repair)?;
    let run = &job.scenario.run;
    let settings = SimulationSettings {
        paths: PATHS,
        seed: run.seed,
        horizon_days: run.horizon_days,
        steps: run.steps,
        threads: Threads::exactly(1),
    };
    let lowest = run.confidence.iter().copied().fold(f64::NAN, f64::min);
    let (simulator, _) = Simulator::new(&job.model, &job.aggregated, settings)?.with_revaluation(
        &job.model,
        RevaluationMode::Full,
        lowest,
    );
    let pnl = simulator.pnl(&|_| {})?;
    let measures = var_es(&pnl, &run.confidence);
    assert_eq!(measures.len(), run.confidence.len());
    let _ = exposures(&job.book, &job.aggregated);
    let _ = contributions_of(
        &job,
        &simulator,
        &pnl,
        Grouping::Underlying,
        run.confidence[0],
    );
    let book = StressBook::new(&job);
    for spec in &job.scenario.stress {
        book.run_spec(spec, &job.scenario.path)?;
    }
    if case.target == Target::Stress {
        let file = case.path("stress.toml");
        for spec in load_stress_file(&file)? {
            book.run_spec(&spec, &file)?;
        }
    }
    let _ = stress_grids(&book, &GRID_SPOT_MOVES, &GRID_VOL_MOVES);
    if case.target == Target::History {
        let history = PriceHistory::load(&case.path("history.csv"), &book.underlying_names())?;
        let _ = replay(&book, &history, 1, 5);
    }
    Ok(())
}

/// Runs `work` on its own thread: `Err` with the panic message, or a hang after the limit.
fn guarded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (send, receive) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = send.send(outcome);
    });
    match receive.recv_timeout(CASE_LIMIT) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            Ok(value)
        }
        Ok(Err(panic)) => {
            let _ = handle.join();
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(format!("panicked: {message}"))
        }
        Err(_) => Err(format!("no answer within {CASE_LIMIT:?}: a hang")),
    }
}

#[test]
fn thousands_of_mutated_inputs_never_panic_in_process() {
    let inputs = Inputs::sample();
    let (seed, cases) = (seed(), setting("TAILRISK_FUZZ_CASES", IN_PROCESS_CASES));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let mut outcomes = [0usize; 3]; // ok, input error, model error
    for number in 0..cases {
        let case = std::sync::Arc::new(Case::new(&mut rng, &inputs));
        let worker = std::sync::Arc::clone(&case);
        let result =
            guarded(move || in_process(&worker).map_err(|e| (e.exit_code(), e.to_string())));
        match result {
            Ok(Ok(())) => outcomes[0] += 1,
            Ok(Err((3, _))) => outcomes[1] += 1,
            Ok(Err((4, _))) => outcomes[2] += 1,
            Ok(Err((code, message))) => panic!(
                "seed {seed}, case {number}: error with exit code {code} ({message}) for {}",
                case.describe()
            ),
            Err(failure) => panic!(
                "seed {seed}, case {number}: {failure} for {}",
                case.describe()
            ),
        }
    }
    eprintln!(
        "{cases} cases in {:.1} s: {} ok, {} input errors, {} model errors",
        started.elapsed().as_secs_f64(),
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );
    // the mutations reach past the first check: some cases still run, most are refused
    assert!(outcomes[0] > cases / 20, "{outcomes:?}");
    assert!(outcomes[1] > cases / 4, "{outcomes:?}");
}

/// Spawns the binary in `dir` and waits at most [`CASE_LIMIT`]: (exit code, stderr).
/// stderr goes to a file, so a long message cannot fill a pipe and stall the child.
fn spawn(args: &[&str], dir: &std::path::Path) -> Result<(Option<i32>, String), String> {
    let log = dir.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::fs::read(&log).unwrap_or_default();
            return Ok((status.code(), String::from_utf8_lossy(&stderr).into_owned()));
        }
        if started.elapsed() > CASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no exit within {CASE_LIMIT:?}: a hang"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn mutated_inputs_give_exit_codes_0_3_or_4_from_the_binary() {
    let inputs = Inputs::sample();
    let seed = seed();
    let cases = setting("TAILRISK_FUZZ_CASES", IN_PROCESS_CASES) * BINARY_CASES / IN_PROCESS_CASES;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb1);
    for number in 0..cases {
        let case = Case::new(&mut rng, &inputs);
        let scenario = case.path("scenario.toml");
        let scenario = scenario.to_str().unwrap();
        let file = |name: &str| case.path(name).to_str().unwrap().to_owned();
        let (series, history, stress) =
            (file("series.csv"), file("history.csv"), file("stress.toml"));
        let repair = if case.repair {
            "--repair-correlation"
        } else {
            "--quiet"
        };
        let args: Vec<&str> = match case.target {
            Target::Series => vec!["backtest", "--series", &series, "--format", "json"],
            Target::History if rng.random_bool(0.2) => vec![
                "backtest",
                scenario,
                "--history",
                &history,
                "--paths",
                "100",
                "--threads",
                "1",
                "--no-alternatives",
            ],
            Target::History => vec!["stress", scenario, "--history", &history, repair],
            Target::Stress => vec!["stress", scenario, "--stress-file", &stress, repair],
            _ => match rng.random_range(0..4) {
                0 => vec!["exposures", scenario, repair],
                1 => vec!["stress", scenario, repair],
                2 => vec![
                    "whatif",
                    scenario,
                    "--remove",
                    "btc-spot-binance",
                    "--paths",
                    "100",
                    "--threads",
                    "1",
                    repair,
                ],
                _ => vec![
                    "run",
                    scenario,
                    "--paths",
                    "100",
                    "--threads",
                    "1",
                    "--format",
                    "json",
                    repair,
                ],
            },
        };
        match spawn(&args, case.dir.path()) {
            Ok((Some(0 | 3 | 4), stderr)) if !stderr.contains("panicked") => {}
            Ok((code, stderr)) => panic!(
                "seed {seed}, binary case {number}: `tailrisk {}` exited with {code:?}: {stderr}\nfor {}",
                args.join(" "),
                case.describe()
            ),
            Err(failure) => panic!(
                "seed {seed}, binary case {number}: `tailrisk {}`: {failure}\nfor {}",
                args.join(" "),
                case.describe()
            ),
        }
    }
}

/// Mutated pillar vol histories (the first 400 rows of the shipped synthetic file) through
/// the loader and the calibration: always a result or an input error, never a panic or hang.
#[test]
fn mutated_pillar_vol_histories_never_panic() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = common::sample("data");
    let prices = data.join("bitstamp_btc_eth_ltc_usd_daily.csv");
    let text = std::fs::read_to_string(data.join("vol_history.csv")).expect("shipped vols");
    let vols: String = text.lines().take(401).map(|l| format!("{l}\n")).collect();
    let (seed, cases) = (
        seed(),
        setting("TAILRISK_FUZZ_CASES", IN_PROCESS_CASES) / 10,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7011);
    let mut outcomes = [0usize; 2]; // ok, input error
    for number in 0..cases {
        let path = dir.path().join(format!("vols-{number}.csv"));
        let bytes = mutate_csv(&mut rng, &vols);
        std::fs::write(&path, &bytes).expect("write case");
        let (prices, file) = (prices.clone(), path.clone());
        let result = guarded(move || {
            let returns = load_returns(&prices, Some(&file), &[])?;
            let c = calibrate(
                &returns.spots,
                &returns.vols,
                Weighting::Ewma { lambda: 0.94 },
                Some(250),
                None,
            );
            let _ = c.to_toml("fuzz");
            Ok::<_, tailrisk::Error>(())
        });
        match result {
            Ok(Ok(())) => outcomes[0] += 1,
            Ok(Err(e)) if e.exit_code() == 3 => outcomes[1] += 1,
            Ok(Err(e)) => panic!("seed {seed}, case {number}: {e}"),
            Err(failure) => panic!(
                "seed {seed}, case {number}: {failure} for\n{}",
                String::from_utf8_lossy(&bytes)
            ),
        }
        let _ = std::fs::remove_file(&path);
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
