//! Grid revaluation with an exact tail: after the grid pass every path that can reach the
//! reported tails is revalued in full, so VaR, ES and their standard errors equal
//! `--revaluation full` at every level — on the sample books, a synthetic book, a book of
//! options expiring minutes after the horizon, and in shards merged back.

mod common;

use std::path::Path;

use common::{json, sample, shards, tailrisk, Scenario, MARKET, MODEL};

fn run(scenario: &Path, extra: &[&str]) -> serde_json::Value {
    json(&tailrisk(
        &[
            &["run", scenario.to_str().unwrap(), "--format", "json"],
            extra,
        ]
        .concat(),
    ))
}

/// Every VaR, ES and standard error of `grid` within 1e-9 relative of `full`'s.
fn assert_same_measures(grid: &serde_json::Value, full: &serde_json::Value, what: &str) {
    let (g, f) = (
        grid["measures"].as_array().unwrap(),
        full["measures"].as_array().unwrap(),
    );
    assert_eq!(g.len(), f.len());
    for (g, f) in g.iter().zip(f) {
        assert_eq!(g["confidence"], f["confidence"]);
        for key in ["var", "es", "var_stderr", "es_stderr"] {
            let (a, b) = (g[key].as_f64().unwrap(), f[key].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1e-300),
                "{what}, {key} at {}: grid {a} vs full {b}",
                f["confidence"]
            );
        }
    }
}

/// `--revaluation grid` against `full` on the same paths; returns the grid run's JSON.
fn assert_grid_equals_full(scenario: &Path, paths: &str) -> serde_json::Value {
    let grid = run(scenario, &["--paths", paths, "--revaluation", "grid"]);
    let full = run(scenario, &["--paths", paths, "--revaluation", "full"]);
    let r = &grid["revaluation"];
    assert_eq!(r["mode"], "grid");
    assert_eq!(r["exact_tail"], true);
    assert!(r["exact_tail_paths"].as_u64().unwrap() > 0);
    assert!(r["max_tail_error"].as_f64().unwrap() >= 0.0);
    assert_eq!(full["revaluation"]["mode"], "full");
    assert_eq!(full["revaluation"]["exact_tail"], true);
    assert_same_measures(&grid, &full, &scenario.display().to_string());
    // the P&L mean and standard deviation stay grid estimates, off by less than the mean's
    // Monte Carlo error
    let n = full["paths"].as_f64().unwrap();
    let error = full["pnl_stdev"].as_f64().unwrap() / n.sqrt();
    for key in ["pnl_mean", "pnl_stdev"] {
        let (a, b) = (grid[key].as_f64().unwrap(), full[key].as_f64().unwrap());
        assert!((a - b).abs() < error, "{key}: grid {a} vs full {b}");
    }
    grid
}

#[test]
fn grid_equals_full_on_the_sample_book() {
    assert_grid_equals_full(&sample("fund.toml"), "50000");
    // 19 options, most of them under pillars and skew (never on a surface): the grid's
    // tabulation, pilot and second pass over the tail's blocks cost more than it saves
    let auto = run(&sample("fund.toml"), &["--paths", "20000"]);
    assert_auto_chose(&auto, "full");
}

/// `auto` ran in `mode` and its cost estimate says that mode is the cheaper one.
fn assert_auto_chose(run: &serde_json::Value, mode: &str) {
    let r = &run["revaluation"];
    assert_eq!(r["mode"], mode, "{r}");
    let cost = &r["estimated_core_seconds"];
    let (full, grid) = (
        cost["full"].as_f64().unwrap(),
        cost["grid"].as_f64().unwrap(),
    );
    assert_eq!(grid < full, mode == "grid", "{r}");
}

#[test]
fn grid_equals_full_on_the_ten_day_book() {
    assert_grid_equals_full(&sample("fund_10d.toml"), "20000");
}

#[test]
fn grid_equals_full_on_a_synthetic_book() {
    let dir = tempfile::tempdir().unwrap();
    let out = tailrisk(&[
        "synthetic",
        dir.path().to_str().unwrap(),
        "--underlyings",
        "5",
        "--options",
        "400",
    ]);
    assert!(out.status.success());
    let scenario = dir.path().join("scenario.toml");
    assert_grid_equals_full(&scenario, "20000");
    // 400 options on 5 surfaces: from 100,000 paths the grid costs less
    assert_auto_chose(&run(&scenario, &["--paths", "100000"]), "grid");
}

/// Options on BTC and ETH expiring 5 minutes after a one-day horizon (valuation at the
/// market's as-of, 2026-11-20 08:00 UTC): near the strike their horizon value is almost a
/// kink, the worst case for a surface. Also options expiring 5 minutes before the horizon
/// and a longer-dated one.
const SHORT_EXPIRY: &str =
    "id,kind,underlying,quantity,multiplier,venue,option_type,strike,expiry,implied_vol
s1,option,BTC,-40,,deribit,call,92000,2026-11-21T08:05:00Z,0.5
s2,option,BTC,-40,,deribit,put,92000,2026-11-21T08:05:00Z,0.5
s3,option,BTC,25,,deribit,call,95000,2026-11-21T08:05:00Z,0.55
s4,option,BTC,30,,okx,put,89000,2026-11-21T08:05:00Z,0.6
s5,option,ETH,-900,,deribit,call,3100,2026-11-21T08:05:00Z,0.65
s6,option,ETH,-700,,deribit,put,3050,2026-11-21T08:05:00Z,0.7
s7,option,BTC,-15,,deribit,call,93000,2026-11-21T07:55:00Z,0.5
s8,option,BTC,20,,deribit,call,100000,2026-12-25,0.5
s9,spot,BTC,10,,coinbase,,,,
";

#[test]
fn grid_equals_full_with_options_expiring_minutes_after_the_horizon() {
    let book = Scenario::new(
        "[run]\npaths = 40000\nseed = 3\nconfidence = [0.95, 0.99, 0.999]\n",
        MODEL,
        MARKET,
        "positions.csv",
        SHORT_EXPIRY,
    );
    let grid = assert_grid_equals_full(&book.scenario(), "40000");
    assert!(
        grid["revaluation"]["max_tail_error"].as_f64().unwrap() > 0.0,
        "the grid alone is off on this book's tail"
    );
    // the same over ten days in ten steps (implied vols move along the path), expiries
    // moved to 5 minutes after the ten-day horizon
    let ten_days = Scenario::new(
        "[run]\npaths = 20000\nseed = 4\nhorizon_days = 10\nsteps = 10\n",
        MODEL,
        MARKET,
        "positions.csv",
        &SHORT_EXPIRY.replace("2026-11-21T08:0", "2026-11-30T08:0"),
    );
    assert_grid_equals_full(&ten_days.scenario(), "20000");
}

#[test]
fn merged_grid_shards_equal_the_full_run() {
    let scenario = sample("fund.toml");
    let paths = "30000";
    let dir = tempfile::tempdir().unwrap();
    let files = shards(&scenario, 3, paths, dir.path(), &["--revaluation", "grid"]);
    let mut args = vec!["merge", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let merged = tailrisk(&args);
    let single = tailrisk(&[
        "run",
        scenario.to_str().unwrap(),
        "--format",
        "json",
        "--paths",
        paths,
        "--revaluation",
        "grid",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&merged.stdout),
        String::from_utf8_lossy(&single.stdout),
        "merged grid shards are the single grid run"
    );
    let full = run(&scenario, &["--paths", paths, "--revaluation", "full"]);
    assert_same_measures(&json(&merged), &full, "merged shards");
}

/// With a term structure of vol moves (`term_power`), each option's vol moves by its own
/// power of the factor: the grid tabulates exactly that, and its tails are the full
/// revaluation's.
#[test]
fn grid_equals_full_with_a_term_structure_of_vol_moves() {
    let model = MODEL.replace("vol_of_vol = 1.0", "vol_of_vol = 1.0\nterm_power = 0.3");
    assert_ne!(model, MODEL);
    let scenario = Scenario::new(
        "[run]\nseed = 3\n",
        &model,
        MARKET,
        "positions.csv",
        common::POSITIONS,
    );
    assert_grid_equals_full(&scenario.scenario(), "40000");
}

/// The exact tail reads the moves the grid pass kept; with nothing kept it generates every
/// block again. Both give the same P&L and tail to the last bit (the ten-day book: ten
/// Student-t steps).
#[test]
fn the_kept_tail_moves_equal_regenerated_ones() {
    use tailrisk::input::job::Job;
    use tailrisk::mc::simulation::{RevaluationMode, SimulationSettings, Simulator, TailStash};
    use tailrisk::mc::threads::Threads;
    use tailrisk::risk::measures::tail_keep;

    let job = Job::load(&sample("fund_10d.toml"), false).unwrap();
    let settings = SimulationSettings {
        paths: 12_000,
        seed: 3,
        horizon_days: job.scenario.run.horizon_days,
        steps: job.scenario.run.steps,
        threads: Threads::all(),
    };
    let (simulator, check) = Simulator::new(&job.model, &job.aggregated, settings)
        .unwrap()
        .with_revaluation(&job.model, RevaluationMode::Grid, 0.95);
    assert_eq!(check.mode, tailrisk::mc::simulation::UsedRevaluation::Grid);
    let keep = tail_keep(12_000, &job.scenario.run.confidence);
    let blocks = 0..simulator.block_count();
    let (grid, stash) = simulator
        .pnl_with_tail_stash(blocks.clone(), keep, &|_| {})
        .unwrap();
    let (mut kept, mut regenerated) = (grid.clone(), grid);
    let from_stash = simulator.exact_tail(blocks.clone(), &mut kept, keep, &stash);
    let from_blocks = simulator.exact_tail(blocks, &mut regenerated, keep, &TailStash::default());
    assert_eq!(from_stash.unwrap(), from_blocks.unwrap());
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&kept), bits(&regenerated));
}
