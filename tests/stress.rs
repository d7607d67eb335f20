//! Stress testing against hand computation: linear books, pure time decay, defaults,
//! historical replay windows and the reverse-stress design point.

mod common;

use common::{json, Scenario, MARKET, MODEL, RUN};
use statrs::distribution::{ContinuousCDF, StudentsT};
use tailrisk::book::instrument::OptionType;
use tailrisk::mc::shocks::unit_t_tail;
use tailrisk::pricing::black_scholes::bs_price;
use tailrisk::DAYS_PER_YEAR;

const LINEAR_BOOK: &str = "id,kind,underlying,quantity,multiplier,venue,counterparty
btc,spot,BTC,10,,coinbase,custodian
eth-perp,perpetual,ETH,-100,,binance,
btc-fut,future,BTC,2,5,cme,fcm
";

fn stress_json(scenario: &Scenario, extra: &[&str]) -> serde_json::Value {
    json(&scenario.tailrisk("stress", &[&["--format", "json"], extra].concat()))
}

fn with_stress(positions: &str, stress: &str) -> Scenario {
    let scenario = Scenario::with_positions(positions);
    let text = std::fs::read_to_string(scenario.scenario()).unwrap();
    scenario.write("scenario.toml", &format!("{text}\n{stress}"));
    scenario
}

fn assert_rel(what: &str, a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-10 * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn linear_book_stress_equals_hand_computed_pnl() {
    let scenario = with_stress(
        LINEAR_BOOK,
        "[[stress]]\nname = \"crash\"\nshocks = { \"BTC.spot\" = -0.3, \"ETH.spot\" = 0.1, \"BTC.vol\" = 0.5 }\n",
    );
    let doc = stress_json(&scenario, &[]);
    let s = &doc["stress"][0];
    let btc = (10.0 + 2.0 * 5.0) * 92_000.0 * -0.3;
    let eth = -100.0 * 3_100.0 * 0.1;
    assert_rel("total", s["pnl"].as_f64().unwrap(), btc + eth);
    let b = &s["breakdown"];
    assert_rel("BTC", b["underlying"]["BTC"].as_f64().unwrap(), btc);
    assert_rel("ETH", b["underlying"]["ETH"].as_f64().unwrap(), eth);
    assert_rel(
        "cme",
        b["venue"]["cme"].as_f64().unwrap(),
        10.0 * 92_000.0 * -0.3,
    );
    assert_rel(
        "custodian",
        b["counterparty"]["custodian"].as_f64().unwrap(),
        10.0 * 92_000.0 * -0.3,
    );
    assert_rel(
        "binance = its own counterparty",
        b["counterparty"]["binance"].as_f64().unwrap(),
        eth,
    );
}

#[test]
fn a_scenario_that_moves_nothing_gives_only_time_decay() {
    let positions = "id,kind,underlying,quantity,option_type,strike,expiry,implied_vol
spot,spot,BTC,3,,,,
call,option,BTC,4,call,100000,2026-12-25,0.5
put,option,ETH,-20,put,3000,2026-11-27,0.7
";
    let run = "[run]\nhorizon_days = 2\n";
    let scenario = Scenario::new(run, MODEL, MARKET, "positions.csv", positions);
    let text = std::fs::read_to_string(scenario.scenario()).unwrap();
    scenario.write(
        "scenario.toml",
        &format!("{text}\n[[stress]]\nname = \"nothing\"\n"),
    );
    let doc = stress_json(&scenario, &[]);
    let decay = |kind, s, k, days: f64, vol| {
        let price = |d: f64| bs_price(kind, s, k, d / DAYS_PER_YEAR, vol, 0.04);
        price(days - 2.0) - price(days)
    };
    let expected = 4.0 * decay(OptionType::Call, 92_000.0, 100_000.0, 35.0, 0.5)
        - 20.0 * decay(OptionType::Put, 3_100.0, 3_000.0, 7.0, 0.7);
    assert_rel(
        "time decay",
        doc["stress"][0]["pnl"].as_f64().unwrap(),
        expected,
    );
    assert!(expected < 0.0, "long premium decays");
    // the grid's centre is the same no-move point
    let all = doc["grid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["underlying"] == "all")
        .unwrap();
    assert_rel("grid centre", all["pnl"][5][2].as_f64().unwrap(), expected);
}

#[test]
fn venue_default_loses_the_positive_exposure_and_the_hedge() {
    let scenario = with_stress(
        LINEAR_BOOK,
        "[[stress]]\nname = \"coinbase gone\"\ndefault_venue = \"coinbase\"\nshocks = { \"BTC.spot\" = -0.1 }\n",
    );
    let s = &stress_json(&scenario, &[])["stress"][0];
    let lost = 10.0 * 92_000.0;
    assert_rel("exposure", s["exposure_lost"].as_f64().unwrap(), lost);
    // the CME futures still lose on the move; the coinbase spot is gone entirely
    let futures = 10.0 * 92_000.0 * -0.1;
    assert_rel("pnl", s["pnl"].as_f64().unwrap(), -lost + futures);
    assert_eq!(s["default"]["group"], "venue");
}

#[test]
fn historical_replay_applies_each_window_to_today() {
    let scenario = Scenario::with_positions(LINEAR_BOOK);
    // BTC falls 20 % from 1 to 3 Jan; ETH has a gap on 2 Jan and starts on 1 Jan
    scenario.write(
        "prices.csv",
        "date,BTC:close,ETH:close,LTC:close\n2020-01-01,100,50,1\n2020-01-02,90,,1\n2020-01-03,80,55,1\n",
    );
    let doc = stress_json(
        &scenario,
        &[
            "--history",
            scenario.path("prices.csv").to_str().unwrap(),
            "--window",
            "2",
        ],
    );
    let h = &doc["history"];
    assert_eq!(h["windows"], 1, "only 3 Jan has a price two days earlier");
    let w = &h["worst"][0];
    assert_eq!(w["start"], "2020-01-01");
    assert_eq!(w["end"], "2020-01-03");
    let expected = 20.0 * 92_000.0 * -0.2 - 100.0 * 3_100.0 * 0.1;
    assert_rel("replayed pnl", w["pnl"].as_f64().unwrap(), expected);
    assert_eq!(h["not_in_history"], serde_json::json!([]));
    let one_day = stress_json(
        &scenario,
        &["--history", scenario.path("prices.csv").to_str().unwrap()],
    );
    let worst = &one_day["history"]["worst"][0];
    // 2 → 3 Jan: BTC 90 → 80; ETH's last price at or before 2 Jan is 1 Jan's, older than one
    // window, so ETH is missing rather than stale
    assert_eq!(worst["end"], "2020-01-03");
    assert_eq!(worst["missing"], serde_json::json!(["ETH"]));
    assert_rel(
        "BTC move",
        worst["moves"]["BTC"].as_f64().unwrap(),
        80.0 / 90.0 - 1.0,
    );
}

#[test]
fn reverse_stress_of_one_linear_underlying_is_the_closed_form_quantile() {
    // one factor: loss = −q·S·(exp(σ√(h/365)·e) − 1); the boundary e* has |e*| = β
    let model = "[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\nspot_vol = 0.6\n";
    let scenario = Scenario::new(
        RUN,
        model,
        MARKET,
        "positions.csv",
        "id,kind,underlying,quantity\nb,spot,BTC,10\n",
    );
    let target: f64 = 100_000.0;
    let doc = stress_json(&scenario, &["--reverse", &target.to_string()]);
    let r = &doc["reverse"];
    let e_star = (1.0 - target / (10.0 * 92_000.0)).ln() / (0.6 * (1.0 / DAYS_PER_YEAR).sqrt());
    assert!(
        (r["mahalanobis_distance"].as_f64().unwrap() - e_star.abs()).abs() < 1e-6,
        "{r}"
    );
    assert!((r["loss"].as_f64().unwrap() - target).abs() < 1e-3 * target);
    assert_eq!(r["reached"], true);
}

#[test]
fn reverse_stress_reaches_the_loss_and_no_smaller_move_does() {
    let positions = "id,kind,underlying,quantity,option_type,strike,expiry,implied_vol
s,spot,BTC,10,,,,
e,perpetual,ETH,300,,,,
p,option,BTC,-20,put,85000,2026-12-25,0.55
c,option,ETH,-200,call,3300,2026-12-25,0.65
";
    let scenario = Scenario::with_positions(positions);
    let target = 250_000.0;
    let r = stress_json(&scenario, &["--reverse", &target.to_string()])["reverse"].clone();
    let loss = r["loss"].as_f64().unwrap();
    assert!(
        loss >= target * (1.0 - 1e-6) && loss < target * 1.001,
        "{r}"
    );
    let beta = r["mahalanobis_distance"].as_f64().unwrap();
    // The model's factors: BTC.spot, BTC.vol, ETH.spot, ETH.vol (+ SOL.spot, unused).
    // Scan a grid of directions in the whitened plane of the two spots, and random
    // directions in all factors, at 99.9 % of β: none may lose the target.
    let job = tailrisk::input::job::Job::load(&scenario.scenario(), false).unwrap();
    let book = tailrisk::stress::scenarios::StressBook::new(&job);
    let k = job.model.factor_count();
    let l = &job.model.cholesky;
    let years = 1.0 / DAYS_PER_YEAR;
    let loss_at = |w: &[f64]| {
        let e: Vec<f64> = (0..k)
            .map(|i| (0..=i).map(|j| l[(i, j)] * w[j]).sum())
            .collect();
        let mut m = tailrisk::stress::scenarios::FactorMove::none(&job.model);
        for (i, u) in job.model.underlyings.iter().enumerate() {
            m.spot[i] = (u.spot_vol * years.sqrt() * e[u.spot_factor]).exp_m1();
            if let Some(v) = u.vol_factor {
                m.vol[i] = (u.vol_of_vol * years.sqrt() * e[v]).exp_m1();
            }
        }
        -book.pnl(&m)
    };
    let mut state = 12345_u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut worst: f64 = f64::NEG_INFINITY;
    for _ in 0..20_000 {
        let mut w: Vec<f64> = (0..k).map(|_| uniform()).collect();
        let n = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        w.iter_mut().for_each(|x| *x *= 0.999 * beta / n);
        worst = worst.max(loss_at(&w));
    }
    assert!(worst < target, "a smaller move loses {worst} ≥ {target}");
    assert!(
        worst > 0.9 * target,
        "the scan comes close, so it can tell: {worst}"
    );
}

#[test]
fn unit_variance_t_tail_matches_statrs() {
    for dof in [3.0, 4.0, 8.0] {
        let t = StudentsT::new(0.0, 1.0, dof).unwrap();
        // near 0 too, where the tail is 1/2 − O(x) (a substitution-only quadrature was not)
        for x in [0.0, 1e-9, 1e-5, 1e-4, 0.01, 0.5, 1.0, 2.5, 5.0, 10.0] {
            let scale: f64 = ((dof - 2.0) / dof).sqrt();
            let exact = 1.0 - t.cdf(x / scale);
            let ours = unit_t_tail(x, dof);
            assert!(
                (ours - exact).abs() < 1e-9 + 1e-6 * exact,
                "dof {dof} x {x}: {ours} vs {exact}"
            );
        }
    }
}

#[test]
fn stress_input_errors_name_file_and_field() {
    let scenario = with_stress(
        LINEAR_BOOK,
        "[[stress]]\nname = \"bad\"\nshocks = { \"DOGE.spot\" = -0.5 }\n",
    );
    let out = scenario.tailrisk("stress", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("scenario.toml") && stderr.contains("stress 'bad' DOGE.spot"),
        "{stderr}"
    );

    let scenario = with_stress(
        LINEAR_BOOK,
        "[[stress]]\nname = \"wipe\"\nshocks = { \"BTC.spot\" = -1.5 }\n",
    );
    let stderr = String::from_utf8_lossy(&scenario.tailrisk("stress", &[]).stderr).to_string();
    assert!(stderr.contains("above -1"), "{stderr}");

    let scenario = with_stress(
        LINEAR_BOOK,
        "[[stress]]\nname = \"x\"\ndefault_venue = \"ftx\"\n",
    );
    let stderr = String::from_utf8_lossy(&scenario.tailrisk("stress", &[]).stderr).to_string();
    assert!(
        stderr.contains("default_venue") && stderr.contains("ftx"),
        "{stderr}"
    );

    let scenario = Scenario::with_positions(LINEAR_BOOK);
    scenario.write("prices.csv", "date,BTC\n2020-01-01,100\n2020-01-02,abc\n");
    let out = scenario.tailrisk(
        "stress",
        &["--history", scenario.path("prices.csv").to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr.contains("prices.csv") && stderr.contains("row 2") && stderr.contains("field 'BTC'"),
        "{stderr}"
    );

    scenario.write("lib.toml", "[[stress]]\nnam = \"typo\"\n");
    let out = scenario.tailrisk(
        "stress",
        &["--stress-file", scenario.path("lib.toml").to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lib.toml") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[test]
fn shipped_stress_library_runs_on_the_sample_book() {
    let fund = common::sample("fund.toml");
    let library = common::sample("stress/crypto_history.toml");
    let doc = json(&common::tailrisk(&[
        "stress",
        fund.to_str().unwrap(),
        "--format",
        "json",
        "--stress-file",
        library.to_str().unwrap(),
    ]));
    let names: Vec<&str> = doc["stress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for expected in [
        "March-2020 COVID crash",
        "May-2021 crash",
        "LUNA collapse",
        "FTX collapse",
        "Vol crush",
        "Venue default: Binance (FTX-style)",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for s in doc["stress"].as_array().unwrap() {
        for group in ["underlying", "venue", "counterparty"] {
            let sum: f64 = s["breakdown"][group]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!(
                (sum - s["pnl"].as_f64().unwrap()).abs()
                    < 1e-6 * s["pnl"].as_f64().unwrap().abs().max(1.0)
            );
        }
    }
}
