//! The reporting currency (`--currency`, `[run] currency`; issue 14 item 3): each path's P&L
//! is converted at that path's simulated price of the coin, P&L_C = (V_0 + P&L_USD)/S_h −
//! V_0/S_0. Checked against closed forms: a coin held and reported in itself never moves, a
//! USD balance reported in BTC has VaR and ES of V/S_0·(1 − e^{−X}) with X normal; a stress
//! and a venue default by hand; the flag equals the scenario key; bad currencies refused.

mod common;

use common::{json, measure, Scenario, MARKET};
use statrs::distribution::{ContinuousCDF, Normal};
use tailrisk::time::DAYS_PER_YEAR;

const SPOT_VOL: f64 = 0.6;
const BTC: f64 = 92_000.0;

const MODEL: &str = "[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\nspot_vol = 0.6\n\n\
                     [model.factors.ETH]\nspot_vol = 0.7\nvol_of_vol = 1.0\n";

const RUN: &str = "[run]\npaths = 400000\nseed = 21\nconfidence = [0.99]\n";

fn scenario(positions: &str) -> Scenario {
    Scenario::new(RUN, MODEL, MARKET, "positions.csv", positions)
}

fn run(s: &Scenario, extra: &[&str]) -> serde_json::Value {
    let out = s.tailrisk("run", &[&["--format", "json"], extra].concat());
    json(&out)
}

#[test]
fn a_coin_reported_in_itself_never_moves() {
    // spot and a balance held in the coin alike
    let s = scenario(
        "id,kind,underlying,quantity,venue\na,spot,BTC,10,coinbase\nb,cash,BTC,4,deribit\n",
    );
    let doc = run(&s, &["--currency", "BTC"]);
    assert_eq!(doc["currency"], "BTC");
    assert!((doc["base_value"].as_f64().unwrap() - 14.0).abs() < 1e-12);
    let (var, es, _, _) = measure(&doc, 0.99);
    assert!(var.abs() < 1e-9 && es.abs() < 1e-9, "VaR {var}, ES {es}");
}

#[test]
fn a_usd_balance_in_btc_matches_the_lognormal_closed_form() {
    // loss in BTC = V/S_0·(1 − e^{−X}), X = ln(S_h/S_0) ~ N(0, s²), s = σ√(1/365): the loss
    // grows with X, so VaR_a = V/S_0·(1 − e^{−s·z_a}) and
    // ES_a = V/S_0·(1 − e^{s²/2}·Φ(−z_a − s)/(1 − a)).
    let v = 1_000_000.0;
    let s = scenario("id,kind,underlying,quantity,venue\nusd,cash,USD,1000000,bank\n");
    let doc = run(&s, &["--currency", "BTC"]);
    let (var, es, var_se, es_se) = measure(&doc, 0.99);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let z = normal.inverse_cdf(0.99);
    let sd = SPOT_VOL * (1.0 / DAYS_PER_YEAR).sqrt();
    let exact_var = v / BTC * (1.0 - (-sd * z).exp());
    let exact_es = v / BTC * (1.0 - (sd * sd / 2.0).exp() * normal.cdf(-z - sd) / 0.01);
    assert!(
        (var - exact_var).abs() <= 4.0 * var_se,
        "VaR {var} against {exact_var} ± 4·{var_se}"
    );
    assert!(
        (es - exact_es).abs() <= 4.0 * es_se,
        "ES {es} against {exact_es} ± 4·{es_se}"
    );
    assert!((doc["base_value"].as_f64().unwrap() - v / BTC).abs() < 1e-9);
}

#[test]
fn stresses_and_defaults_convert_at_the_stressed_price() {
    let positions = "id,kind,underlying,quantity,venue\nusdt,cash,USDT,1000000,binance\n\
                     btc,spot,BTC,5,coinbase\n";
    let s = scenario(positions);
    let text = std::fs::read_to_string(s.scenario()).unwrap().replacen(
        "[run]\n",
        "[run]\ncurrency = \"BTC\"\n",
        1,
    ) + "\n[[stress]]\nname = \"down\"\nshocks = { \"BTC.spot\" = -0.2 }\n\
           \n[[stress]]\nname = \"binance fails\"\nshocks = { \"BTC.spot\" = -0.2 }\n\
           default_venue = \"binance\"\n";
    s.write("scenario.toml", &text);
    let doc = json(&s.tailrisk("stress", &["--format", "json"]));
    assert_eq!(doc["currency"], "BTC");
    // the USDT balance gains 1/0.8 − 1 of its BTC value; the BTC held is unchanged in BTC
    let down = doc["stress"][0]["pnl"].as_f64().unwrap();
    let by_hand = 1_000_000.0 / BTC * (1.0 / 0.8 - 1.0);
    assert!((down - by_hand).abs() < 1e-9, "{down} against {by_hand}");
    // a Binance default loses the balance's value today, in BTC
    let failed = &doc["stress"][1];
    let lost = 1_000_000.0 / BTC;
    assert!((failed["exposure_lost"].as_f64().unwrap() - lost).abs() < 1e-9);
    assert!((failed["pnl"].as_f64().unwrap() + lost).abs() < 1e-9);
}

#[test]
fn the_flag_equals_the_scenario_key_and_the_grid_stays_exact() {
    let positions = "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
                     a,spot,BTC,3,coinbase,,,\n\
                     b,option,ETH,-40,deribit,put,3000,2026-12-25\n\
                     c,option,ETH,25,deribit,call,3400,2027-03-26\n";
    let s = scenario(positions);
    let flagged = run(&s, &["--currency", "ETH", "--paths", "50000"]);
    let text = std::fs::read_to_string(s.scenario()).unwrap().replacen(
        "[run]\n",
        "[run]\ncurrency = \"ETH\"\n",
        1,
    );
    s.write("scenario.toml", &text);
    let keyed = run(&s, &["--paths", "50000"]);
    assert_eq!(flagged, keyed);
    let grid = run(&s, &["--paths", "50000", "--revaluation", "grid"]);
    let full = run(&s, &["--paths", "50000", "--revaluation", "full"]);
    assert_eq!(grid["measures"], full["measures"]);
    assert_eq!(grid["revaluation"]["mode"], "grid");
}

#[test]
fn bad_currencies_are_refused() {
    let s = scenario("id,kind,underlying,quantity,venue\na,spot,BTC,1,coinbase\n");
    let out = s.tailrisk("run", &["--currency", "XRP"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown reporting currency 'XRP'") && err.contains("BTC, ETH"),
        "{err}"
    );
    let out = s.tailrisk("run", &["--currency", "BTC", "--contributions", "position"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("USD only"));
    let text = std::fs::read_to_string(s.scenario()).unwrap().replacen(
        "[run]\n",
        "[run]\ncurrency = \"usd\"\n",
        1,
    );
    s.write("scenario.toml", &text);
    let out = s.tailrisk("run", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("run.currency") && err.contains("'usd'"),
        "{err}"
    );
}
