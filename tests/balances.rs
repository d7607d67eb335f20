//! Cash balances (`kind = cash`, issue 14 item 1): a coin balance is exactly a spot position;
//! USD and USD-stablecoin balances without a risk factor count in the book's value at their
//! peg (or the market file's quote), never move, show in exposures, are lost when their venue
//! defaults, and bad balances are refused naming row and field.

mod common;

use common::{json, Scenario, MARKET, MODEL, RUN};

const HEADER: &str = "id,kind,underlying,quantity,multiplier,venue,option_type,strike,expiry\n";

/// A small book: BTC spot or balance, an ETH option, and `extra` rows.
fn book(btc_kind: &str, extra: &str) -> String {
    format!(
        "{HEADER}a,{btc_kind},BTC,10,,coinbase,,,\n\
         b,option,ETH,-50,,deribit,put,3000,2026-12-25\n{extra}"
    )
}

fn run(positions: &str, market: &str) -> serde_json::Value {
    let s = Scenario::new(RUN, MODEL, market, "positions.csv", positions);
    let out = s.tailrisk("run", &["--format", "json"]);
    json(&out)
}

#[test]
fn a_coin_balance_is_a_spot_position() {
    let spot = run(&book("spot", ""), MARKET);
    let cash = run(&book("cash", ""), MARKET);
    assert_eq!(spot, cash, "same JSON to the last bit");
}

#[test]
fn pegged_balances_add_value_and_no_risk() {
    let without = run(&book("spot", ""), MARKET);
    let extra = "usd,cash,USD,250000,,bank,,,\n\
                 usdt,cash,USDT,1000000,,binance,,,\n\
                 usdc,cash,USDC,400000,,okx,,,\n";
    let with = run(&book("spot", extra), MARKET);
    let base = |d: &serde_json::Value| d["base_value"].as_f64().unwrap();
    assert_eq!(base(&with) - base(&without), 1_650_000.0);
    assert_eq!(
        with["measures"], without["measures"],
        "pegged balances never move"
    );
    assert_eq!(with["positions"], 5);

    // a stablecoin the market file quotes is held at that price
    let quoted = format!("{MARKET}USDC,0.97,0.05,0,2026-11-20T08:00:00Z\n");
    let with_quote = run(&book("spot", extra), &quoted);
    assert!((base(&with_quote) - base(&without) - 1_638_000.0).abs() < 1e-6);
}

#[test]
fn balances_show_in_exposures_and_are_lost_with_their_venue() {
    let extra = "usdt,cash,USDT,1000000,,binance,,,\nbtc-collateral,cash,BTC,2,,binance,,,\n";
    let positions = book("spot", extra);
    let s = Scenario::new(RUN, MODEL, MARKET, "positions.csv", &positions);
    let doc = json(&s.tailrisk("exposures", &["--format", "json"]));
    let row = |group: &str, key: &str, underlying: &str| {
        doc["exposures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == group && r["key"] == key && r["underlying"] == underlying)
            .cloned()
            .unwrap_or_else(|| panic!("no {group} {key} {underlying} row"))
    };
    let usdt = row("venue", "binance", "USDT");
    assert_eq!(usdt["value"], 1_000_000.0);
    assert_eq!(usdt["delta"], 0.0);
    assert_eq!(usdt["delta_usd"], 0.0);
    let btc = row("venue", "binance", "BTC");
    assert_eq!(btc["delta"], 2.0);
    assert_eq!(btc["value"], 2.0 * 92_000.0);

    // a Binance default loses the stablecoin and the coin collateral held there
    let text = std::fs::read_to_string(s.scenario()).unwrap()
        + "\n[[stress]]\nname = \"binance fails\"\nshocks = { \"BTC.spot\" = -0.2 }\n\
           default_venue = \"binance\"\n";
    s.write("scenario.toml", &text);
    let stress = json(&s.tailrisk("stress", &["--format", "json"]));
    let lost = stress["stress"][0]["exposure_lost"].as_f64().unwrap();
    assert_eq!(lost, 1_000_000.0 + 2.0 * 92_000.0);
    // and the collateral's market move is replaced by its loss: −(1,000,000 + 184,000)
    let binance = stress["stress"][0]["breakdown"]["venue"]["binance"]
        .as_f64()
        .unwrap();
    assert_eq!(binance, -lost);
}

#[test]
fn bad_balances_are_refused_naming_row_and_field() {
    for (row, field, says) in [
        (
            "x,cash,XRP,100,,binance,,,\n",
            "underlying",
            "unknown underlying 'XRP'",
        ),
        (
            "x,cash,USDT,100,10,binance,,,\n",
            "multiplier",
            "leave the multiplier empty",
        ),
        (
            "x,cash,usdt,100,,binance,,,\n",
            "underlying",
            "unknown underlying 'usdt'",
        ),
    ] {
        let s = Scenario::new(RUN, MODEL, MARKET, "positions.csv", &book("spot", row));
        let out = s.tailrisk("run", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{row}: {err}");
        assert!(
            err.contains("row 3") && err.contains(&format!("'{field}'")) && err.contains(says),
            "{row}: {err}"
        );
    }
}
