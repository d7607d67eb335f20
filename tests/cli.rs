//! The command line as a user meets it: the shipped sample, reproducibility across thread
//! counts, CSV versus Parquet positions, netting, `--out` files, exposures and the honesty of
//! the reported standard errors.

mod common;

use std::path::Path;

use common::{json, measure, sample, tailrisk, Scenario, POSITIONS};
use polars::prelude::*;
use tailrisk::input::job::Job;
use tailrisk::mc::simulation::{SimulationSettings, Simulator};
use tailrisk::mc::threads::Threads;
use tailrisk::risk::measures::var_es;

fn run_json(scenario: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", scenario.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    json(&tailrisk(&args))
}

#[test]
fn sample_run_prints_a_readable_report() {
    let fund = sample("fund.toml");
    let output = tailrisk(&["run", fund.to_str().unwrap(), "--paths", "20000"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "base value",
        "27,095,392.15 USD",
        "VaR",
        "ES",
        "± s.e.",
        "99.00%",
        "20,000 paths",
        " s (",
    ] {
        assert!(
            text.contains(expected),
            "report lacks '{expected}':\n{text}"
        );
    }
}

#[test]
fn same_seed_is_bit_identical_on_one_and_two_threads() {
    for name in ["fund.toml", "fund_10d.toml"] {
        let fund = sample(name);
        let run = |threads: &str, seed: &str| {
            let args = ["--threads", threads, "--seed", seed, "--paths", "50000"];
            tailrisk(
                &[
                    &["run", fund.to_str().unwrap(), "--format", "json"],
                    &args[..],
                ]
                .concat(),
            )
        };
        let (one, two) = (run("1", "7"), run("2", "7"));
        assert!(one.status.success() && two.status.success());
        assert_eq!(
            one.stdout, two.stdout,
            "{name}: output differs between thread counts"
        );
        // and the seed matters, so the comparison above can fail
        let other = run("2", "8");
        assert_ne!(one.stdout, other.stdout);
    }
}

#[test]
fn json_has_the_spec_keys() {
    let doc = run_json(&sample("fund.toml"), &["--paths", "10000", "--seed", "3"]);
    assert_eq!(doc["paths"], 10000);
    assert_eq!(doc["seed"], 3);
    assert_eq!(doc["horizon_days"], 1.0);
    assert!((doc["base_value"].as_f64().unwrap() - 27_095_392.15).abs() < 0.01);
    let measures = doc["measures"].as_array().unwrap();
    assert_eq!(measures.len(), 3);
    for (m, level) in measures.iter().zip([0.95, 0.975, 0.99]) {
        assert_eq!(m["confidence"], level);
        for key in ["var", "es", "var_stderr", "es_stderr"] {
            assert!(m[key].as_f64().unwrap() > 0.0, "{key} positive: {m}");
        }
        assert!(m["es"].as_f64() >= m["var"].as_f64(), "ES ≥ VaR: {m}");
    }
}

#[test]
fn parquet_positions_give_the_same_result_as_csv() {
    let scenario = Scenario::with_positions(POSITIONS);
    common::write_parquet_from_csv(POSITIONS, &scenario.path("positions.parquet"), &[]);
    let csv = scenario.tailrisk("run", &["--format", "json"]);
    let text = std::fs::read_to_string(scenario.scenario()).unwrap();
    scenario.write(
        "scenario.toml",
        &text.replace("positions.csv", "positions.parquet"),
    );
    let parquet = scenario.tailrisk("run", &["--format", "json"]);
    assert_eq!(json(&csv), json(&parquet));
}

#[test]
fn the_same_option_on_two_venues_is_revalued_once() {
    let split = "id,kind,underlying,quantity,venue,option_type,strike,expiry
x,option,BTC,5,deribit,call,100000,2026-12-25
y,option,BTC,3,okx,call,100000,2026-12-25
z,spot,BTC,2,coinbase,,,
";
    let merged = "id,kind,underlying,quantity,venue,option_type,strike,expiry
xy,option,BTC,8,deribit,call,100000,2026-12-25
z,spot,BTC,2,coinbase,,,
";
    let a = json(&Scenario::with_positions(split).tailrisk("run", &["--format", "json"]));
    let b = json(&Scenario::with_positions(merged).tailrisk("run", &["--format", "json"]));
    assert_eq!(a["option_contracts"], 1);
    assert_eq!(a["positions"], 3);
    assert_eq!(a["measures"], b["measures"], "netting is exact");
}

#[test]
fn out_dir_holds_per_path_pnl_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let doc = run_json(
        &sample("fund.toml"),
        &["--paths", "30000", "--out", out.to_str().unwrap()],
    );
    let file = std::fs::File::open(out.join("pnl.parquet")).unwrap();
    let frame = ParquetReader::new(file).finish().unwrap();
    assert_eq!(frame.height(), 30000);
    let pnl: Vec<f64> = frame
        .column("pnl")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let recomputed = var_es(&pnl, &[0.99]);
    assert_eq!(
        recomputed[0].var,
        measure(&doc, 0.99).0,
        "VaR from the written P&L"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, doc);
    let measures = std::fs::read_to_string(out.join("measures.csv")).unwrap();
    assert!(measures.starts_with("confidence,var,es,var_stderr,es_stderr"));
    assert_eq!(measures.lines().count(), 4);
}

#[test]
fn exposures_net_by_underlying_and_add_up_across_groups() {
    let fund = sample("fund.toml");
    let doc = json(&tailrisk(&[
        "exposures",
        fund.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let rows = doc["exposures"].as_array().unwrap();
    let total = |group: &str, underlying: &str, key: &str| -> f64 {
        rows.iter()
            .filter(|r| r["group"] == group && r["underlying"] == underlying)
            .map(|r| r[key].as_f64().unwrap())
            .sum()
    };
    for underlying in ["BTC", "ETH", "SOL"] {
        for key in [
            "delta",
            "delta_usd",
            "settlement_delta",
            "gamma",
            "vega",
            "theta",
            "value",
            "basis",
            "funding",
        ] {
            let by_underlying = total("underlying", underlying, key);
            for group in ["venue", "counterparty", "book"] {
                let sum = total(group, underlying, key);
                assert!(
                    (sum - by_underlying).abs() <= 1e-9 * by_underlying.abs().max(1.0),
                    "{group} {underlying} {key}"
                );
            }
        }
    }
    // BTC: 80 coins spot and 30 on Deribit as collateral, −28 linear perpetuals, −10 CME
    // futures (−4 + 2 contracts of 5 BTC), and Deribit's coin-settled contracts: a perpetual
    // of 460,000 USD face (460,000/S_0 coins) and a March future of −552,000 USD face
    // (−552,000/F_0 coins, F_0 = S_0·e^{0.07·126/365} with the market's basis)
    let btc = rows
        .iter()
        .find(|r| r["group"] == "underlying" && r["key"] == "BTC")
        .unwrap();
    let forward = 92_000.0 * (0.07 * 126.0 / 365.0f64).exp();
    let coins = 80.0 + 30.0 - 28.0 - 10.0 + 460_000.0 / 92_000.0 - 552_000.0 / forward;
    assert!((btc["linear_position"].as_f64().unwrap() - coins).abs() < 1e-9);
    let spot = 92000.0;
    let delta = btc["delta"].as_f64().unwrap();
    assert!((btc["delta_usd"].as_f64().unwrap() - delta * spot).abs() < 1e-6);
    let value: f64 = rows
        .iter()
        .filter(|r| r["group"] == "underlying")
        .map(|r| r["value"].as_f64().unwrap())
        .sum();
    assert!((value - doc["base_value"].as_f64().unwrap()).abs() < 1e-6);
    // vega by tenor adds up to vega in every row, in the five buckets
    for r in rows {
        let buckets = r["vega_by_tenor"].as_array().unwrap();
        let labels: Vec<&str> = buckets
            .iter()
            .map(|b| b["tenor"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["0-7d", "7-30d", "30-90d", "90-180d", "180d+"]);
        let sum: f64 = buckets.iter().map(|b| b["vega"].as_f64().unwrap()).sum();
        let vega = r["vega"].as_f64().unwrap();
        assert!((sum - vega).abs() <= 1e-9 * vega.abs().max(1.0), "{r}");
    }
}

/// A calendar spread (long December, short June vega) nets to a small vega but shows both
/// legs in its tenor buckets, each the leg's Black–Scholes vega per vol point.
#[test]
fn vega_by_tenor_shows_both_legs_of_a_calendar_spread() {
    use tailrisk::book::instrument::OptionType::Call;
    use tailrisk::pricing::black_scholes::bs_greeks;
    let book = "id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
dec,option,BTC,10,deribit,call,92000,2026-12-25,0.5
jun,option,BTC,-5,deribit,call,92000,2027-06-25,0.5
";
    let scenario = common::Scenario::with_positions(book);
    let doc = json(&scenario.tailrisk("exposures", &["--format", "json"]));
    let btc = doc["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "underlying" && r["key"] == "BTC")
        .unwrap()
        .clone();
    let vega = |days: f64| bs_greeks(Call, 92000.0, 92000.0, days / 365.0, 0.5, 0.04).vega;
    let bucket = |i: usize| btc["vega_by_tenor"][i]["vega"].as_f64().unwrap();
    assert!((bucket(2) - 10.0 * vega(35.0)).abs() < 1e-9 * bucket(2).abs());
    assert!((bucket(4) + 5.0 * vega(217.0)).abs() < 1e-9 * bucket(4).abs());
    assert_eq!(bucket(0) + bucket(1) + bucket(3), 0.0);
}

/// Runs the sample book with many seeds and compares the spread of the estimates with the
/// standard errors the runs report: their ratio must be near 1 (within what 40 seeds can
/// tell, about ±11 % one sigma).
#[test]
fn reported_standard_errors_match_the_spread_over_seeds() {
    let job = Job::load(&sample("fund.toml"), false).unwrap();
    let seeds = 40;
    let mut estimates = vec![Vec::new(); 4];
    let mut reported = [0.0; 4];
    for seed in 0..seeds {
        let settings = SimulationSettings {
            paths: 20_000,
            seed,
            horizon_days: 1.0,
            steps: 1,
            threads: Threads::all(),
        };
        let pnl = Simulator::new(&job.model, &job.aggregated, settings)
            .unwrap()
            .pnl(&|_| {})
            .unwrap();
        for (i, m) in var_es(&pnl, &[0.95, 0.99]).iter().enumerate() {
            estimates[2 * i].push(m.var);
            estimates[2 * i + 1].push(m.es);
            reported[2 * i] += m.var_stderr / seeds as f64;
            reported[2 * i + 1] += m.es_stderr / seeds as f64;
        }
    }
    for (values, stderr) in estimates.iter().zip(reported) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let spread = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let ratio = spread / stderr;
        assert!(
            (0.6..1.6).contains(&ratio),
            "spread {spread} vs reported s.e. {stderr}"
        );
    }
}

#[test]
fn help_explains_the_commands_and_exit_codes() {
    let output = tailrisk(&["--help"]);
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in ["run", "exposures", "Exit codes", "positive"] {
        assert!(text.contains(expected), "--help lacks '{expected}'");
    }
    let run_help = String::from_utf8(tailrisk(&["run", "--help"]).stdout).unwrap();
    for flag in [
        "--paths",
        "--seed",
        "--threads",
        "--format",
        "--out",
        "--quiet",
        "--repair-correlation",
    ] {
        assert!(run_help.contains(flag), "run --help lacks {flag}");
    }
}

/// `tailrisk calibrate` on the shipped Bitstamp prices with `extra` flags.
fn calibrate_shipped(extra: &[&str]) -> std::process::Output {
    let history = sample("data/bitstamp_btc_eth_ltc_usd_daily.csv");
    let mut args = vec!["calibrate", "--history", history.to_str().unwrap()];
    args.extend_from_slice(extra);
    tailrisk(&args)
}

/// The shipped (synthetic) pillar vol history gives BTC and ETH the pillars 7/30/90/180 days
/// with vols of vol falling along the term structure and pillar correlations high but below
/// 1; LTC, without vol history, keeps the single default `LTC.vol`. The TOML is a valid
/// `[model]` section in the scenario file's pillar format.
#[test]
fn calibrate_reads_the_shipped_pillar_vol_history() {
    let vols = sample("data/vol_history.csv");
    let vols = vols.to_str().unwrap();
    let doc = json(&calibrate_shipped(&[
        "--vol-history",
        vols,
        "--method",
        "sample",
        "--format",
        "json",
    ]));
    let underlyings = doc["underlyings"].as_array().unwrap();
    let get = |name: &str| underlyings.iter().find(|u| u["name"] == name).unwrap();
    let factors: Vec<&str> = doc["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let index = |f: &str| factors.iter().position(|g| *g == f).unwrap();
    let corr = |a: &str, b: &str| doc["correlation"][index(a)][index(b)].as_f64().unwrap();
    for (name, front) in [("BTC", (1.6, 2.0)), ("ETH", (1.7, 2.2))] {
        let u = get(name);
        assert_eq!(u["vol_pillars"], serde_json::json!([7, 30, 90, 180]));
        assert_eq!(u["vol_from_history"], true);
        let v: Vec<f64> = u["pillar_vol_of_vol"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(v.windows(2).all(|w| w[0] > w[1]), "{name}: {v:?}");
        assert!(v[0] > front.0 && v[0] < front.1, "{name} 7d: {}", v[0]);
        assert!(v[3] > 0.5 && v[3] < 0.95, "{name} 180d: {}", v[3]);
        assert_eq!(u["vol_of_vol"].as_f64().unwrap(), v[1], "summary = 30 d");
        for (a, b) in [(7, 30), (30, 90), (90, 180), (7, 180)] {
            let rho = corr(&format!("{name}.vol.{a}d"), &format!("{name}.vol.{b}d"));
            assert!(rho > 0.55 && rho < 0.98, "{name} {a}d–{b}d: {rho}");
        }
        let spot_vol = corr(&format!("{name}.spot"), &format!("{name}.vol.30d"));
        assert!(
            spot_vol > -0.6 && spot_vol < -0.2,
            "{name} spot–30d: {spot_vol}"
        );
    }
    let ltc = get("LTC");
    assert_eq!(ltc["vol_pillars"], serde_json::json!([]));
    assert_eq!(ltc["vol_from_history"], false);
    assert_eq!(
        &factors[3..],
        [
            "BTC.vol.7d",
            "BTC.vol.30d",
            "BTC.vol.90d",
            "BTC.vol.180d",
            "ETH.vol.7d",
            "ETH.vol.30d",
            "ETH.vol.90d",
            "ETH.vol.180d",
            "LTC.vol"
        ]
    );
    assert_eq!(corr("LTC.spot", "LTC.vol"), -0.3);

    let output = calibrate_shipped(&["--vol-history", vols]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("vol_pillars = [7, 30, 90, 180]"), "{text}");
    let model: toml::Table = text.parse().expect("valid TOML");
    let btc = &model["model"]["factors"]["BTC"];
    assert_eq!(
        btc["vol_pillars"].as_array().unwrap().len(),
        btc["vol_of_vol"].as_array().unwrap().len()
    );
    assert!(model["model"]["factors"]["LTC"]["vol_of_vol"].is_float());
    let listed = model["model"]["correlation"]["factors"].as_array().unwrap();
    assert!(listed.iter().any(|f| f.as_str() == Some("BTC.vol.7d")));
    assert_eq!(
        model["model"]["correlation"]["matrix"]
            .as_array()
            .unwrap()
            .len(),
        listed.len()
    );
}

/// The same history as Parquet (tenors then read as 7.0, …) gives the same calibration, and
/// the wide layout still gives one `U.vol`: fed the 30-day pillar, exactly that pillar's
/// numbers.
#[test]
fn pillar_vol_history_reads_from_parquet_and_the_wide_layout_is_unchanged() {
    let csv = std::fs::read_to_string(sample("data/vol_history.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("vols.parquet");
    common::write_parquet_from_csv(&csv, &parquet, &[]);
    let run = |vols: &Path| {
        json(&calibrate_shipped(&[
            "--vol-history",
            vols.to_str().unwrap(),
            "--underlyings",
            "BTC,ETH",
            "--format",
            "json",
        ]))
    };
    let from_csv = run(&sample("data/vol_history.csv"));
    assert_eq!(run(&parquet), from_csv);

    let wide: String = std::iter::once("date,BTC:vol\n".to_owned())
        .chain(csv.lines().filter_map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (cells[1] == "BTC" && cells[2] == "30").then(|| format!("{},{}\n", cells[0], cells[3]))
        }))
        .collect();
    let wide_path = dir.path().join("wide.csv");
    std::fs::write(&wide_path, wide).unwrap();
    let from_wide = run(&wide_path);
    let btc = |doc: &serde_json::Value| doc["underlyings"][0].clone();
    assert_eq!(btc(&from_wide)["vol_pillars"], serde_json::json!([]));
    assert_eq!(
        btc(&from_wide)["vol_of_vol"],
        btc(&from_csv)["pillar_vol_of_vol"][1]
    );
    assert_eq!(
        from_wide["factors"],
        serde_json::json!(["BTC.spot", "ETH.spot", "BTC.vol", "ETH.vol"])
    );
    // BTC.spot–BTC.vol of the wide run = BTC.spot–BTC.vol.30d of the pillar run (index 3)
    assert_eq!(
        from_wide["correlation"][0][2],
        from_csv["correlation"][0][3]
    );
}
