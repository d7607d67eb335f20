//! Implied-vol surfaces (`[market] surface`): options are marked at the surface's vol at
//! their strike and expiry (marks reproduced exactly, interpolation between them, the
//! position's own `implied_vol` first), and surfaces with static arbitrage or bad rows are
//! refused naming the underlying, expiry and strike, or the row and field.

mod common;

use common::{Scenario, MARKET, MODEL, RUN};
use tailrisk::input::job::Job;

/// A BTC surface with a put skew and a front-end premium: two expiries, five strikes each.
const SURFACE: &str = "underlying,expiry,strike,implied_vol
BTC,2026-12-25,70000,0.72
BTC,2026-12-25,80000,0.62
BTC,2026-12-25,92000,0.55
BTC,2026-12-25,100000,0.54
BTC,2026-12-25,120000,0.58
BTC,2027-03-26,70000,0.66
BTC,2027-03-26,80000,0.59
BTC,2027-03-26,92000,0.54
BTC,2027-03-26,100000,0.53
BTC,2027-03-26,120000,0.55
";

/// Options on a mark, between marks, between expiries, and one with its own vol.
const POSITIONS: &str = "id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
on-mark,option,BTC,1,deribit,put,80000,2026-12-25,
between-strikes,option,BTC,1,deribit,call,95000,2026-12-25,
between-expiries,option,BTC,1,deribit,call,92000,2027-02-26,
own-vol,option,BTC,1,deribit,call,100000,2026-12-25,0.9
eth,option,ETH,1,deribit,call,3000,2026-12-25,
";

fn scenario(surface: &str) -> Scenario {
    let s = Scenario::new(RUN, MODEL, MARKET, "positions.csv", POSITIONS);
    let text = std::fs::read_to_string(s.scenario()).unwrap().replace(
        "file = \"market.csv\"",
        "file = \"market.csv\"\nsurface = \"surface.csv\"",
    );
    s.write("scenario.toml", &text);
    s.write("surface.csv", surface);
    s
}

/// The vol each netted BTC option was marked at, by strike.
fn vols(job: &Job, underlying: &str) -> Vec<(f64, f64)> {
    let net = job
        .aggregated
        .underlyings
        .iter()
        .find(|u| u.name == underlying)
        .unwrap();
    net.options.iter().map(|o| (o.strike, o.vol)).collect()
}

#[test]
fn options_are_marked_on_the_surface() {
    let s = scenario(SURFACE);
    let job = Job::load(&s.scenario(), false).unwrap();
    let btc = vols(&job, "BTC");
    // on a mark: exactly the mark
    assert_eq!(btc[0], (80000.0, 0.62));
    // between 92,000 (0.55) and 100,000 (0.54) at the same expiry: within the marks
    assert!(btc[1].1 > 0.54 && btc[1].1 < 0.55, "{:?}", btc[1]);
    // between expiries at 92,000: total variance linear in time, so between the two vols
    // measured at the same moneyness (the forward moves little at a 4 % rate)
    assert!(btc[2].1 > 0.535 && btc[2].1 < 0.555, "{:?}", btc[2]);
    // the position's own vol wins over the surface
    assert_eq!(btc[3], (100000.0, 0.9));
    // no ETH surface: the market's ATM vol
    assert_eq!(vols(&job, "ETH")[0].1, 0.65);
}

#[test]
fn a_run_with_a_surface_succeeds_and_differs_from_flat_vols() {
    let s = scenario(SURFACE);
    let with = common::json(&s.tailrisk("run", &["--format", "json", "--paths", "20000"]));
    let flat = Scenario::new(RUN, MODEL, MARKET, "positions.csv", POSITIONS);
    let without = common::json(&flat.tailrisk("run", &["--format", "json", "--paths", "20000"]));
    assert_ne!(with["base_value"], without["base_value"]);
}

fn refused(surface: &str) -> String {
    let out = scenario(surface).tailrisk("run", &["--paths", "1000"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn calendar_arbitrage_is_refused_naming_where() {
    // the whole March smile at 25 %: below December's total variance at every strike
    let bad: String = SURFACE
        .lines()
        .map(|l| match l.strip_prefix("BTC,2027-03-26,") {
            Some(rest) => format!("BTC,2027-03-26,{},0.25\n", rest.split(',').next().unwrap()),
            None => format!("{l}\n"),
        })
        .collect();
    let msg = refused(&bad);
    assert!(msg.contains("surface.csv") && msg.contains("BTC"), "{msg}");
    assert!(
        msg.contains("calendar arbitrage") && msg.contains("2027-03-26"),
        "{msg}"
    );
}

#[test]
fn butterfly_arbitrage_is_refused_naming_where() {
    // a spike at 100,000 makes call prices concave there
    let bad = SURFACE.replace("BTC,2026-12-25,100000,0.54", "BTC,2026-12-25,100000,1.60");
    let msg = refused(&bad);
    assert!(
        msg.contains("arbitrage") && msg.contains("2026-12-25"),
        "{msg}"
    );
    assert!(msg.contains("BTC") && msg.contains("strike"), "{msg}");
}

#[test]
fn bad_rows_name_row_and_field() {
    for (bad, field) in [
        ("BTC,2026-12-25,80000,-0.5", "implied_vol"),
        ("DOGE,2026-12-25,80000,0.5", "underlying"),
        ("BTC,2020-01-01,80000,0.5", "expiry"),
        ("BTC,2026-12-25,0,0.5", "strike"),
        ("BTC,2026-12-25,80000,0.61", "strike"),
        ("BTC,someday,80000,0.61", "expiry"),
    ] {
        let msg = refused(&format!("{SURFACE}{bad}\n"));
        assert!(
            msg.contains("row 11") && msg.contains(field),
            "{bad}: {msg}"
        );
    }
    let msg = refused("underlying,expiry,strike\nBTC,2026-12-25,80000\n");
    assert!(msg.contains("implied_vol"), "{msg}");
}

/// A risk reversal (long 10 calls at 100,000, short 10 puts at 80,000, December) under a
/// −20 % spot stress, by hand. Sticky-strike keeps each option's mark vol (0.54 and 0.62);
/// sticky-moneyness reads the smile at K/0.8: the put at 100,000's 0.54, the call beyond the
/// last strike at 120,000's 0.58 (flat). The put skew makes the crash cheaper for the short
/// put and dearer for the long call, so the loss is smaller under sticky-moneyness.
#[test]
fn risk_reversal_under_sticky_strike_and_sticky_moneyness_by_hand() {
    use tailrisk::book::instrument::OptionType::{Call, Put};
    use tailrisk::pricing::black_scholes::bs_price;
    let book = "id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
call,option,BTC,10,deribit,call,100000,2026-12-25,
put,option,BTC,-10,deribit,put,80000,2026-12-25,
";
    let (s0, rate, days) = (92_000.0, 0.04, 35.0);
    let year = |d: f64| d / 365.0;
    let value = |spot: f64, d: f64, call_vol: f64, put_vol: f64| {
        10.0 * bs_price(Call, spot, 100_000.0, year(d), call_vol, rate)
            - 10.0 * bs_price(Put, spot, 80_000.0, year(d), put_vol, rate)
    };
    let today = value(s0, days, 0.54, 0.62);
    let sticky_strike = value(0.8 * s0, days - 1.0, 0.54, 0.62) - today;
    let sticky_moneyness = value(0.8 * s0, days - 1.0, 0.58, 0.54) - today;
    let mut pnl = Vec::new();
    for smile in ["sticky-strike", "sticky-moneyness"] {
        let model = format!("[model]\nsmile = \"{smile}\"\n\n[model.factors.BTC]\nspot_vol = 0.6\nvol_of_vol = 1.0\n");
        let s = Scenario::new(RUN, &model, MARKET, "positions.csv", book);
        let text = std::fs::read_to_string(s.scenario()).unwrap().replace(
            "file = \"market.csv\"",
            "file = \"market.csv\"\nsurface = \"surface.csv\"",
        ) + "\n[[stress]]\nname = \"crash\"\nshocks = { \"BTC.spot\" = -0.20 }\n";
        s.write("scenario.toml", &text);
        s.write("surface.csv", SURFACE);
        let doc = common::json(&s.tailrisk("stress", &["--format", "json"]));
        pnl.push(doc["stress"][0]["pnl"].as_f64().unwrap());
    }
    for (got, expected) in pnl.iter().zip([sticky_strike, sticky_moneyness]) {
        assert!(
            (got / expected - 1.0).abs() < 1e-9,
            "stress P&L {got} against {expected} by hand"
        );
    }
    assert!(
        pnl[1] > pnl[0] && sticky_moneyness - sticky_strike > 5_000.0,
        "{pnl:?}"
    );
}

/// Sticky-moneyness options revalued on the grid give the full revaluation's VaR and ES.
#[test]
fn sticky_moneyness_on_the_grid_equals_full_revaluation() {
    let s = scenario(SURFACE);
    let text = std::fs::read_to_string(s.scenario())
        .unwrap()
        .replace("[model]\n", "[model]\nsmile = \"sticky-moneyness\"\n");
    s.write("scenario.toml", &text);
    let run = |mode: &str| {
        common::json(&s.tailrisk(
            "run",
            &[
                "--format",
                "json",
                "--paths",
                "40000",
                "--revaluation",
                mode,
            ],
        ))
    };
    let (grid, full) = (run("grid"), run("full"));
    assert_eq!(grid["revaluation"]["mode"], "grid");
    for (g, f) in grid["measures"]
        .as_array()
        .unwrap()
        .iter()
        .zip(full["measures"].as_array().unwrap())
    {
        for key in ["var", "es", "var_stderr", "es_stderr"] {
            let (a, b) = (g[key].as_f64().unwrap(), f[key].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-9 * b.abs(), "{key}: grid {a}, full {b}");
        }
    }
}
