//! `whatif --cache DIR`: the first call writes the base run, later calls revalue only the
//! trades, and every call prints what an uncached `whatif` prints, to the last bit; a cache
//! built from other inputs, or damaged, is rebuilt; a cache that cannot be written is an
//! error naming it.

mod common;

use std::path::Path;
use std::process::Output;

use common::{sample, tailrisk};

/// `tailrisk whatif` of the sample fund with `extra`, JSON on stdout.
fn whatif(extra: &[&str]) -> Output {
    let fund = sample("fund.toml");
    let mut args = vec!["whatif", fund.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    tailrisk(&args)
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Whether the call wrote the cache (it says so on stderr).
fn wrote_cache(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("writing the what-if cache")
}

/// The one cache directory in `dir` (older inputs' caches are removed when one is written).
fn only_cache(dir: &Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

fn with_cache<'a>(edit: &[&'a str], dir: &'a Path) -> Vec<&'a str> {
    let mut args = edit.to_vec();
    args.extend(["--cache", dir.to_str().unwrap()]);
    args
}

#[test]
fn cached_whatifs_equal_uncached_ones_to_the_last_bit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let hedge = sample("hedge.csv");
    let trades = ["--paths", "8000", "--trades", hedge.to_str().unwrap()];
    let remove = [
        "--paths",
        "8000",
        "--remove",
        "eth-perp-okx,btc-27nov26-95000-c",
    ];
    // a stablecoin balance alone: no underlying's moves, only its de-peg
    let stablecoin = ["--paths", "8000", "--remove", "usdt-binance"];
    let in_btc = [
        "--paths",
        "8000",
        "--trades",
        hedge.to_str().unwrap(),
        "--currency",
        "BTC",
    ];
    let mut first = true;
    for edit in [
        &trades[..],
        &remove[..],
        &stablecoin[..],
        &in_btc[..],
        &trades[..],
    ] {
        let uncached = stdout(&whatif(edit));
        let out = whatif(&with_cache(edit, &cache));
        assert_eq!(
            wrote_cache(&out),
            first,
            "only the first call writes the cache"
        );
        assert_eq!(stdout(&out), uncached, "{edit:?}");
        first = false;
    }
    // the same scenario named by another path is the same inputs
    let fund = sample("fund.toml");
    let other_name = fund.parent().unwrap().join("../scenarios/fund.toml");
    let mut args = vec!["whatif", other_name.to_str().unwrap(), "--format", "json"];
    args.extend(with_cache(&trades, &cache));
    let out = tailrisk(&args);
    assert!(
        !wrote_cache(&out),
        "another path to the same scenario reuses the cache"
    );
    assert_eq!(stdout(&out), stdout(&whatif(&trades)));
    // other paths or seed: other inputs, so the cache is written again, and still agrees
    for edit in [["--paths", "6000"], ["--seed", "9"]] {
        let mut args = edit.to_vec();
        args.extend(&trades[2..]);
        let out = whatif(&with_cache(&args, &cache));
        assert!(wrote_cache(&out), "{edit:?} rewrites the cache");
        assert_eq!(stdout(&out), stdout(&whatif(&args)), "{edit:?}");
        only_cache(&cache);
    }
}

#[test]
fn a_damaged_cache_is_rebuilt_and_an_unwritable_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let hedge = sample("hedge.csv");
    let edit = ["--paths", "4000", "--trades", hedge.to_str().unwrap()];
    let uncached = stdout(&whatif(&edit));
    assert!(wrote_cache(&whatif(&with_cache(&edit, &cache))));
    // a column cut short; a manifest that is not JSON; a first P&L this build does not
    // reproduce (a cache written by a build with other numerics)
    let column = only_cache(&cache).join("log_spot.0.f64");
    let bytes = std::fs::read(&column).unwrap();
    std::fs::write(&column, &bytes[..bytes.len() / 2]).unwrap();
    let out = whatif(&with_cache(&edit, &cache));
    assert!(wrote_cache(&out));
    assert_eq!(stdout(&out), uncached);
    std::fs::write(only_cache(&cache).join("manifest.json"), "{ not json").unwrap();
    let out = whatif(&with_cache(&edit, &cache));
    assert!(wrote_cache(&out));
    assert_eq!(stdout(&out), uncached);
    let base = only_cache(&cache).join("base_pnl.f64");
    let mut bytes = std::fs::read(&base).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&base, &bytes).unwrap();
    let out = whatif(&with_cache(&edit, &cache));
    assert!(wrote_cache(&out));
    assert_eq!(stdout(&out), uncached);
    assert!(!wrote_cache(&whatif(&with_cache(&edit, &cache))));

    // a file where the directory should be
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = whatif(&with_cache(&edit, &file));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a-file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A short BTC straddle expiring five minutes after the ten-day sample's horizon and an ETH
/// call expiring inside it.
const STRADDLES: &str =
    "id,kind,underlying,quantity,multiplier,venue,option_type,strike,expiry,implied_vol
st-c,option,BTC,-40,,deribit,call,92000,2026-11-30T08:05:00Z,0.5
st-p,option,BTC,-40,,deribit,put,92000,2026-11-30T08:05:00Z,0.5
in-c,option,ETH,-500,,deribit,call,3100,2026-11-25T08:00:00Z,0.65
";

/// A hard book: the ten-day sample (ten Student-t steps) selling a BTC straddle that
/// expires five minutes after the horizon and one that expires inside it (two-sided
/// tails, a near-kink at the horizon): cached and uncached agree to the last bit.
#[test]
fn a_short_straddle_at_the_horizon_of_a_ten_step_book_agrees_cached() {
    let dir = tempfile::tempdir().unwrap();
    let trades = dir.path().join("straddle.csv");
    std::fs::write(&trades, STRADDLES).unwrap();
    let cache = dir.path().join("cache");
    let ten_day = sample("fund_10d.toml");
    let run = |extra: &[&str]| {
        let mut args = vec!["whatif", ten_day.to_str().unwrap(), "--format", "json"];
        args.extend(["--paths", "6000", "--trades", trades.to_str().unwrap()]);
        args.extend_from_slice(extra);
        tailrisk(&args)
    };
    let uncached = stdout(&run(&[]));
    let dir_arg = ["--cache", cache.to_str().unwrap()];
    assert!(wrote_cache(&run(&dir_arg)));
    let cached = run(&dir_arg);
    assert!(!wrote_cache(&cached));
    assert_eq!(stdout(&cached), uncached);
}

/// The service's what-if on a base run kept in memory equals `what_if` to the last bit on
/// the same hard book (ten Student-t steps, the straddle at the horizon, a removal), in USD
/// and reported in BTC (each path converted at its own BTC price); the P&L, VaR / ES and
/// contributions read off those paths equal a full-revaluation `run`'s.
#[test]
fn a_what_if_on_paths_kept_in_memory_equals_the_simulated_one() {
    use tailrisk::book::grouping::Grouping;
    use tailrisk::book::positions::Book;
    use tailrisk::input::job::Job;
    use tailrisk::mc::simulation::RevaluationMode;
    use tailrisk::mc::simulation::SimulationSettings;
    use tailrisk::mc::threads::Threads;
    use tailrisk::risk::measures::var_es;
    use tailrisk::risk::run::RunRequest;
    use tailrisk::risk::whatif::{what_if, what_if_on, BaseRun};

    let dir = tempfile::tempdir().unwrap();
    let trades = dir.path().join("straddle.csv");
    std::fs::write(&trades, STRADDLES).unwrap();
    let remove = vec!["btc-spot-binance".to_owned()];
    for currency in ["USD", "BTC"] {
        let job = Job::load(&sample("fund_10d.toml"), false)
            .unwrap()
            .in_currency(currency)
            .unwrap();
        let run = &job.scenario.run;
        let settings = SimulationSettings {
            paths: 6000,
            seed: run.seed,
            horizon_days: run.horizon_days,
            steps: run.steps,
            threads: Threads::all(),
        };
        let simulated = what_if(&job, Some(&trades), &remove, settings, None).unwrap();
        let base = BaseRun::simulate(&job, settings)
            .unwrap()
            .serving_requests();
        let book = Book::load(&trades, &job.market, job.valuation_time).unwrap();
        let in_memory = what_if_on(&job, &base, Some(book), &remove).unwrap();
        assert_eq!(in_memory, simulated, "{currency}");
        // the trades move ES: the comparison is not of two zeros
        assert!(
            simulated.change.iter().all(|c| c.es.abs() > 0.0),
            "{currency}"
        );
        // the service reads its figures off the same kept paths: those of a full `run`
        let usd = currency == "USD";
        let request = RunRequest {
            settings,
            revaluation: RevaluationMode::Full,
            importance_sampling: false,
            contributions: None,
        };
        let full = tailrisk::risk::run::run(&job, &request, &|_| ()).unwrap();
        let pnl = base.book_pnl_reported(&job).unwrap();
        assert_eq!(pnl, full.pnl, "{currency}");
        assert_eq!(var_es(&pnl, &run.confidence), full.report.measures);
        if usd {
            // by book (4 entities) and by position (50: incrementals in several batches)
            for group in [Grouping::Book, Grouping::Position] {
                let request = RunRequest {
                    contributions: Some((group, 0.99)),
                    ..request
                };
                let full = tailrisk::risk::run::run(&job, &request, &|_| ()).unwrap();
                let (rows, additivity) = base.contributions(&job, group, 0.99).unwrap();
                assert!(rows.len() >= 4, "{group:?}");
                assert_eq!(Some(rows), full.report.contributions, "{group:?}");
                assert_eq!(Some(additivity), full.report.contribution_additivity);
            }
        }
    }
}
