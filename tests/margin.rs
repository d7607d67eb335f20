//! Venue margin along the paths (issue 15): the liquidation probability of one long
//! perpetual against the first-passage probability of Brownian motion with the
//! Broadie–Glasserman–Kou correction for discrete monitoring; a portfolio margin computed by
//! hand from its grid; buffers monotone, reproducible and sufficient on the same paths; no P&L
//! from a venue after its liquidation; bad `[[venue]]` entries refused naming the key.

mod common;

use common::{json, Scenario};
use statrs::distribution::{ContinuousCDF, Normal};
use tailrisk::time::DAYS_PER_YEAR;

const MARKET: &str = "underlying,spot,atm_vol,rate,as_of
BTC,92000,0.50,0.0,2026-11-20T08:00:00Z
";

const MODEL: &str = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n";

const S0: f64 = 92_000.0;

fn phi(x: f64) -> f64 {
    Normal::new(0.0, 1.0).unwrap().cdf(x)
}

/// Long 10 BTC perpetuals on Binance against `collateral` USDT, linear margin.
fn perpetual(run: &str, venue: &str) -> Scenario {
    let s = Scenario::new(
        run,
        MODEL,
        MARKET,
        "positions.csv",
        "id,kind,underlying,quantity,venue\np,perpetual,BTC,10,binance\n",
    );
    let text = std::fs::read_to_string(s.scenario()).unwrap() + venue;
    s.write("scenario.toml", &text);
    s
}

fn margin(s: &Scenario, extra: &[&str]) -> serde_json::Value {
    json(&s.tailrisk("margin", &[&["--format", "json"], extra].concat()))
}

const VENUE: &str = "\n[[venue]]\nname = \"binance\"\ncollateral = { USDT = 150000 }\n\
                     initial_margin = 0.10\nmaintenance_margin = 0.05\nliquidation_fee = 0.01\n";

const TEN_DAYS_HOURLY: &str = "[run]\npaths = 40000\nseed = 1\nhorizon_days = 10\nsteps = 240\n\
                               confidence = [0.99]\n";

#[test]
fn liquidation_probability_is_the_discretely_monitored_first_passage() {
    // equity C + q(S_t − S_0) against m·q·S_t: the venue is called or liquidated when S_t
    // first falls below b = (q·S_0 − C)/(q(1 − m)); ln S is a driftless Brownian motion, so
    // P = 2Φ(ln(b/S_0)/(σ√T)), checked hourly: barrier shifted by e^{−0.5826·σ√Δt} (BGK)
    let doc = margin(&perpetual(TEN_DAYS_HOURLY, VENUE), &[]);
    let v = &doc["venues"][0];
    let (sigma, t) = (0.6, 10.0 / DAYS_PER_YEAR);
    let dt = t / 240.0;
    let shift = 0.5826 * sigma * dt.sqrt();
    for (rate, key) in [(0.05, "p_liquidation"), (0.10, "p_margin_call")] {
        let barrier = (10.0 * S0 - 150_000.0) / (10.0 * (1.0 - rate));
        let exact = 2.0 * phi(((barrier / S0).ln() - shift) / (sigma * t.sqrt()));
        let p = v[key].as_f64().unwrap();
        let se = v[format!("{key}_stderr").as_str()].as_f64().unwrap();
        assert!(
            (p - exact).abs() <= 4.0 * se,
            "{key} {p} against {exact} ± 4·{se}"
        );
        // without the correction the continuous barrier is off by far more than the error
        let continuous = 2.0 * phi((barrier / S0).ln() / (sigma * t.sqrt()));
        assert!((continuous - exact).abs() > 4.0 * se, "{key}");
    }
    assert!((v["equity"].as_f64().unwrap() - 150_000.0).abs() < 1e-9);
    assert!((v["maintenance_margin"].as_f64().unwrap() - 0.05 * 10.0 * S0).abs() < 1e-9);
}

#[test]
fn after_a_liquidation_the_venue_earns_nothing() {
    // no collateral against a 50 % maintenance rate: the venue is below maintenance today, so
    // it is liquidated at hour 0 on every path and the fund's P&L with liquidations is only
    // the close-out fee, 1 % of 10·S_0, whatever the paths do afterwards; without liquidation
    // the 2-day VaR is 10·S_0·(1 − e^{−σ√(2/365)·z_a})
    let venue = "\n[[venue]]\nname = \"binance\"\ninitial_margin = 0.5\nmaintenance_margin = 0.5\n\
                 liquidation_fee = 0.01\n";
    let run = "[run]\npaths = 100000\nseed = 4\nhorizon_days = 2\nsteps = 2\nconfidence = [0.99]\n";
    let doc = margin(&perpetual(run, venue), &[]);
    let v = &doc["venues"][0];
    assert_eq!(v["p_liquidation"], 1.0);
    assert_eq!(v["hours_to_liquidation"]["value"], 0.0);
    assert_eq!(
        v["utilisation"],
        serde_json::Value::Null,
        "no equity: infinite"
    );
    let with = &doc["fund"]["measures_with_liquidation"][0];
    let fee = 0.01 * 10.0 * S0;
    for key in ["var", "es"] {
        let got = with[key].as_f64().unwrap();
        assert!(
            (got - fee).abs() < 1e-6,
            "{key} {got} against the fee {fee}"
        );
    }
    let z = Normal::new(0.0, 1.0).unwrap().inverse_cdf(0.99);
    let without = &doc["fund"]["measures"][0];
    let exact = 10.0 * S0 * (1.0 - (-0.6 * (2.0 / DAYS_PER_YEAR).sqrt() * z).exp());
    let (var, se) = (
        without["var"].as_f64().unwrap(),
        without["var_stderr"].as_f64().unwrap(),
    );
    assert!(
        (var - exact).abs() <= 4.0 * se,
        "{var} against {exact} ± 4·{se}"
    );
}

#[test]
fn buffers_are_monotone_reproducible_and_sufficient_on_the_same_paths() {
    let run = "[run]\npaths = 20000\nseed = 2\nhorizon_days = 5\nsteps = 40\nconfidence = [0.99]\n";
    let s = perpetual(run, VENUE);
    let loose = margin(&s, &["--target", "0.05"]);
    let tight = margin(&s, &["--target", "0.01"]);
    let buffer = |d: &serde_json::Value| d["venues"][0]["buffer"].as_f64().unwrap();
    assert!(buffer(&tight) > buffer(&loose) && buffer(&loose) > 0.0);
    assert_eq!(tight, margin(&s, &["--target", "0.01", "--threads", "1"]));
    // the buffer added as collateral leaves at most 1 % of the same paths liquidated
    let with_buffer = VENUE.replace(
        "USDT = 150000",
        &format!("USDT = {}", 150_000.0 + buffer(&tight) + 1e-6),
    );
    let covered = margin(&perpetual(run, &with_buffer), &["--target", "0.01"]);
    let p = covered["venues"][0]["p_liquidation"].as_f64().unwrap();
    assert!(p <= 0.01 && p > 0.0, "{p}");
    assert!(buffer(&covered) < 1e-6);
}

#[test]
fn portfolio_margin_is_the_worst_grid_loss_plus_the_short_option_charge() {
    // short 10 calls 100,000 and long 5 puts 85,000, 35 days, vol 50 %, r = 0, on a
    // portfolio-margined venue with the default grid: spot −16 % … +16 % in 9 steps × 30-day
    // vol +38 % / 0 / −38 % (× (30/35)^0.3 in the exponent), extended moves on vol up at 20 %,
    // plus 0.01 BTC per net short option contract; initial = 1.2 × maintenance
    let positions = "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
                     c,option,BTC,-10,deribit,call,100000,2026-12-25\n\
                     p,option,BTC,5,deribit,put,85000,2026-12-25\n";
    let s = Scenario::new(TEN_DAYS_HOURLY, MODEL, MARKET, "positions.csv", positions);
    let venue =
        "\n[[venue]]\nname = \"deribit\"\nmargin = \"portfolio\"\ncollateral = { BTC = 5 }\n";
    let text = std::fs::read_to_string(s.scenario()).unwrap() + venue;
    s.write("scenario.toml", &text);
    let doc = margin(&s, &["--paths", "2000", "--steps", "2"]);
    let v = &doc["venues"][0];
    let tau = 35.0 / DAYS_PER_YEAR;
    let bs = |call: bool, spot: f64, k: f64, vol: f64| {
        let d1 = ((spot / k).ln() + vol * vol / 2.0 * tau) / (vol * tau.sqrt());
        let d2 = d1 - vol * tau.sqrt();
        if call {
            spot * phi(d1) - k * phi(d2)
        } else {
            k * phi(-d2) - spot * phi(-d1)
        }
    };
    let value = |spot: f64, vol: f64| {
        -10.0 * bs(true, spot, 100_000.0, vol) + 5.0 * bs(false, spot, 85_000.0, vol)
    };
    let base = value(S0, 0.5);
    let power = (30.0f64 / 35.0).powf(0.3);
    let mut worst: f64 = 0.0;
    for i in 0..9 {
        let moved = -0.16 + 0.04 * f64::from(i);
        for v in [0.38, 0.0, -0.38] {
            let vol = 0.5 * (1.0f64 + v).powf(power);
            worst = worst.max(base - value(S0 * (1.0 + moved), vol));
        }
    }
    for moved in [-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0] {
        let vol = 0.5 * 1.38f64.powf(power);
        worst = worst.max(0.2 * (base - value(S0 * (1.0 + moved), vol)));
    }
    let maintenance = worst + 10.0 * 0.01 * S0;
    let got = v["maintenance_margin"].as_f64().unwrap();
    assert!(
        (got - maintenance).abs() < 1e-6 * maintenance,
        "{got} against {maintenance}"
    );
    assert!((v["initial_margin"].as_f64().unwrap() - 1.2 * maintenance).abs() < 1e-6 * maintenance);
    // equity: 5 BTC of collateral plus the options' value today
    assert!((v["equity"].as_f64().unwrap() - (5.0 * S0 + base)).abs() < 1e-6 * S0);
}

#[test]
fn bad_venues_are_refused_naming_the_key() {
    let cases = [
        (
            "margin = \"cross\"\n",
            "venue[0].margin",
            "expected 'linear', 'portfolio' or 'none'",
        ),
        (
            "initial_margin = 0.05\nmaintenance_margin = 0.1\n",
            "venue[0].initial_margin",
            "maintenance_margin ≤ initial_margin",
        ),
        (
            "",
            "venue[0].initial_margin",
            "needs initial_margin and maintenance_margin",
        ),
        (
            "tiers = [{ up_to = 5e6, initial_margin = 0.1, maintenance_margin = 0.05 }, \
             { up_to = 1e6, initial_margin = 0.2, maintenance_margin = 0.1 }]\n",
            "venue[0].tiers[1]",
            "up_to must increase",
        ),
        (
            "initial_margin = 0.1\nmaintenance_margin = 0.05\nhaircut = { BTC = 1.5 }\n",
            "venue[0].haircut.BTC",
            "fraction in [0, 1)",
        ),
        (
            "initial_margin = 0.1\nmaintenance_margin = 0.05\ncollateral = { XRP = 5 }\n",
            "venue[0].collateral.XRP",
            "neither USD",
        ),
        (
            "initial_margin = 0.1\nmaintenance_margin = 0.05\ndefault_probability = nan\n",
            "venue[0].default_probability",
            "non-negative rate",
        ),
        (
            "margin = \"portfolio\"\nportfolio = { price_steps = 1 }\n",
            "venue[0].portfolio.price_steps",
            "an odd number of price moves",
        ),
    ];
    for (body, key, message) in cases {
        let venue = format!("\n[[venue]]\nname = \"binance\"\n{body}");
        let out = perpetual(TEN_DAYS_HOURLY, &venue).tailrisk("margin", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{key}: {err}");
        assert!(err.contains(key) && err.contains(message), "{key}: {err}");
    }
    let twice = format!("{VENUE}{VENUE}");
    let out = perpetual(TEN_DAYS_HOURLY, &twice).tailrisk("margin", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("venue 'binance' is listed twice"));
    let none = perpetual(TEN_DAYS_HOURLY, "").tailrisk("margin", &[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no [[venue]] entries"));
}

#[test]
fn an_independent_venue_failure_loses_pd_times_lgd_times_exposure() {
    // 1,000,000 USDT on a venue failing at 0.5 a year, 60 % lost: over a year the expected
    // loss is (1 − e^{−0.5})·0.6·1,000,000, the loss is that exposure × LGD or nothing, and the
    // fund's only tail is the failure
    let run =
        "[run]\npaths = 40000\nseed = 8\nhorizon_days = 365\nsteps = 1\nconfidence = [0.99]\n";
    let s = Scenario::new(
        run,
        MODEL,
        MARKET,
        "positions.csv",
        "id,kind,underlying,quantity,venue\nc,cash,USDT,1000000,ftx\n",
    );
    let venue = "\n[[venue]]\nname = \"ftx\"\ninitial_margin = 0.1\nmaintenance_margin = 0.05\n\
                 default_probability = 0.5\nloss_given_default = 0.6\n";
    let text = std::fs::read_to_string(s.scenario()).unwrap() + venue;
    s.write("scenario.toml", &text);
    let doc = margin(&s, &[]);
    let v = &doc["venues"][0];
    let p = 1.0 - (-0.5f64).exp();
    let (pd, pd_se) = (
        v["p_default"]["value"].as_f64().unwrap(),
        v["p_default"]["stderr"].as_f64().unwrap(),
    );
    assert!(
        (pd - p).abs() <= 4.0 * pd_se,
        "{pd} against {p} ± 4·{pd_se}"
    );
    let loss = &v["expected_default_loss"];
    let (mean, se) = (
        loss["value"].as_f64().unwrap(),
        loss["stderr"].as_f64().unwrap(),
    );
    let exact = p * 0.6 * 1_000_000.0;
    assert!(
        (mean - exact).abs() <= 4.0 * se,
        "{mean} against {exact} ± 4·{se}"
    );
    let fund = &doc["fund"];
    assert_eq!(fund["counterparty_es"][0].as_f64(), Some(600_000.0));
    assert!((fund["counterparty_es_share"][0].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(
        fund["measures_with_defaults"][0]["var"].as_f64(),
        Some(600_000.0)
    );
    // a run does not draw the failure factor: a BTC book's numbers are the same to the bit
    // with and without the failing venue
    s.write(
        "positions.csv",
        "id,kind,underlying,quantity,venue\nc,cash,USDT,1000000,ftx\nb,spot,BTC,3,ftx\n",
    );
    let with_venue = json(&s.tailrisk("run", &["--format", "json"]));
    s.write("scenario.toml", &text.replace(venue, ""));
    let without = json(&s.tailrisk("run", &["--format", "json"]));
    assert_eq!(with_venue["measures"], without["measures"]);
    assert!(common::measure(&with_venue, 0.99).0 > 0.0);
}

#[test]
fn a_failure_correlated_with_the_market_comes_in_crashes() {
    // 10 BTC on a venue failing at 0.5 a year: independent of BTC the failure loses
    // E[10·S_h] ≈ 10·S_0·e^{σ²/2} on average; correlated +0.9 with BTC.spot (a failure is a
    // low draw of its factor) it comes when BTC has fallen, so it loses much less per failure
    // while the fund's tail holds both at once
    let run =
        "[run]\npaths = 40000\nseed = 8\nhorizon_days = 365\nsteps = 1\nconfidence = [0.99]\n";
    let venue = "\n[[venue]]\nname = \"ftx\"\nmargin = \"none\"\ndefault_probability = 0.5\n";
    let book = "id,kind,underlying,quantity,venue\nb,spot,BTC,10,ftx\n";
    let loss_per_failure = |correlation: &str| {
        let s = Scenario::new(run, MODEL, MARKET, "positions.csv", book);
        let text = std::fs::read_to_string(s.scenario()).unwrap() + correlation + venue;
        s.write("scenario.toml", &text);
        let doc = margin(&s, &[]);
        let v = &doc["venues"][0];
        v["expected_default_loss"]["value"].as_f64().unwrap()
            / v["p_default"]["value"].as_f64().unwrap()
    };
    let independent = loss_per_failure("");
    let exact = 10.0 * S0 * (0.36f64 / 2.0).exp();
    assert!(
        (independent - exact).abs() < 0.03 * exact,
        "{independent} against {exact}"
    );
    let wrong_way = loss_per_failure(
        "\n[model.correlation]\nfactors = [\"BTC.spot\", \"ftx.default\"]\nmatrix = [[1.0, 0.9], [0.9, 1.0]]\n",
    );
    assert!(
        wrong_way < 0.7 * independent,
        "{wrong_way} vs {independent}"
    );
}
