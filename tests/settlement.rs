//! Coin-settled ("inverse") contracts (issue 14 item 2) and exposures in coin and USD (item 7),
//! against values computed by hand or published: the inverse option's coin price and coin
//! put–call parity, Deribit's delta, inverse futures' P&L by hand in USD and in coin, the coin
//! P&L's closed-form VaR, and bad settlement input refused with its row and field.

mod common;

use common::{json, measure, Scenario};
use statrs::distribution::{ContinuousCDF, Normal};
use tailrisk::book::instrument::OptionType;
use tailrisk::pricing::black_scholes::bs_greeks;
use tailrisk::time::DAYS_PER_YEAR;

const MARKET: &str = "underlying,spot,atm_vol,rate,as_of
BTC,92000,0.50,0.03,2026-11-20T08:00:00Z
ETH,3100,0.65,0.03,2026-11-20T08:00:00Z
";

const MODEL: &str = "[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\nspot_vol = 0.6\n\n\
                     [model.factors.ETH]\nspot_vol = 0.7\n";

const RUN: &str = "[run]\npaths = 200000\nseed = 5\nconfidence = [0.99]\n";

const BTC: f64 = 92_000.0;

fn scenario(positions: &str) -> Scenario {
    Scenario::new(RUN, MODEL, MARKET, "positions.csv", positions)
}

fn with_stresses(s: &Scenario, stresses: &str) {
    let text = std::fs::read_to_string(s.scenario()).unwrap() + stresses;
    s.write("scenario.toml", &text);
}

/// Black–Scholes with carry b = r from statrs' normal CDF (independent of the crate's).
fn reference_price(call: bool, s: f64, k: f64, tau: f64, vol: f64, r: f64) -> (f64, f64) {
    let n = Normal::new(0.0, 1.0).unwrap();
    let d1 = ((s / k).ln() + (r + vol * vol / 2.0) * tau) / (vol * tau.sqrt());
    let d2 = d1 - vol * tau.sqrt();
    let dk = k * (-r * tau).exp();
    if call {
        (s * n.cdf(d1) - dk * n.cdf(d2), n.cdf(d1))
    } else {
        (dk * n.cdf(-d2) - s * n.cdf(-d1), n.cdf(d1) - 1.0)
    }
}

#[test]
fn inverse_option_prices_obey_coin_parity_and_deribit_delta() {
    // Hull, Options, Futures and Other Derivatives, example 15.6: S = 42, K = 40, r = 10 %,
    // σ = 20 %, T = 0.5: call 4.76, put 0.81 (USD); in coin they are divided by S.
    let (s, k, tau, vol, r) = (42.0, 40.0, 0.5, 0.2, 0.1);
    let call = bs_greeks(OptionType::Call, s, k, tau, vol, r).in_coin(s);
    let put = bs_greeks(OptionType::Put, s, k, tau, vol, r).in_coin(s);
    assert!((call.price * s - 4.76).abs() < 5e-3, "{}", call.price * s);
    assert!((put.price * s - 0.81).abs() < 5e-3, "{}", put.price * s);
    // coin put–call parity: C − P = 1 − K·e^{−rτ}/S
    let parity = 1.0 - k * (-r * tau).exp() / s;
    assert!((call.price - put.price - parity).abs() < 1e-14);
    // a crypto option: the coin price is the USD price over spot, and Deribit's delta is the
    // sensitivity of the coin value, S·∂(V/S)/∂S = Δ − V/S (central difference)
    for (kind, call) in [(OptionType::Call, true), (OptionType::Put, false)] {
        let (s, k, tau, vol, r) = (BTC, 100_000.0, 35.0 / DAYS_PER_YEAR, 0.55, 0.03);
        let coin = bs_greeks(kind, s, k, tau, vol, r).in_coin(s);
        let (usd, delta) = reference_price(call, s, k, tau, vol, r);
        assert!((coin.price - usd / s).abs() < 1e-12);
        assert!((coin.delta - (delta - usd / s)).abs() < 1e-10);
        let h = 1.0;
        let coin_value = |spot: f64| reference_price(call, spot, k, tau, vol, r).0 / spot;
        let numeric = s * (coin_value(s + h) - coin_value(s - h)) / (2.0 * h);
        assert!(
            (coin.delta - numeric).abs() < 1e-7,
            "{} {numeric}",
            coin.delta
        );
    }
}

#[test]
fn inverse_futures_pay_face_times_inverse_price_change_in_usd_and_in_coin() {
    // short 1 000 Deribit perpetuals of 10 USD face and long 20 000 USD face of a coin-margined
    // future: coin P&L q·face·(1/F_0 − 1/F_h), worth S_h times that in USD
    let positions = "id,kind,underlying,quantity,multiplier,settlement,venue\n\
                     perp,perpetual,BTC,-1000,10,inverse,deribit\n\
                     fut,future,BTC,200,100,inverse,binance\n";
    let s = scenario(positions);
    with_stresses(
        &s,
        "\n[[stress]]\nname = \"down\"\nshocks = { \"BTC.spot\" = -0.2 }\n\
         \n[[stress]]\nname = \"up\"\nshocks = { \"BTC.spot\" = 0.25 }\n",
    );
    let face = -10_000.0 + 20_000.0;
    for (currency, in_coin) in [("USD", false), ("BTC", true)] {
        let doc = json(&s.tailrisk("stress", &["--format", "json", "--currency", currency]));
        for (i, moved) in [-0.2, 0.25].into_iter().enumerate() {
            let spot = BTC * (1.0 + moved);
            let coin = face * (1.0 / BTC - 1.0 / spot);
            let by_hand = if in_coin { coin } else { coin * spot };
            let pnl = doc["stress"][i]["pnl"].as_f64().unwrap();
            assert!(
                (pnl - by_hand).abs() < 1e-9 * by_hand.abs().max(1.0),
                "{currency} {moved}: {pnl} against {by_hand}"
            );
            let perp = doc["stress"][i]["breakdown"]["venue"]["deribit"]
                .as_f64()
                .unwrap();
            let perp_by_hand =
                -10_000.0 * (1.0 / BTC - 1.0 / spot) * if in_coin { 1.0 } else { spot };
            assert!((perp - perp_by_hand).abs() < 1e-9 * perp_by_hand.abs());
        }
    }
}

#[test]
fn in_usd_an_inverse_future_is_a_linear_future_of_face_over_spot_coins() {
    // USD P&L face·(S_h/S_0 − 1) = (face/S_0)·(S_h − S_0): the same numbers path by path
    let inverse = scenario(
        "id,kind,underlying,quantity,multiplier,settlement,venue\n\
         p,perpetual,BTC,9200,100,inverse,okx\n",
    );
    let linear = scenario("id,kind,underlying,quantity,venue\np,perpetual,BTC,10,okx\n");
    let a = json(&inverse.tailrisk("run", &["--format", "json"]));
    let b = json(&linear.tailrisk("run", &["--format", "json"]));
    let (va, ea, _, _) = measure(&a, 0.99);
    let (vb, eb, _, _) = measure(&b, 0.99);
    assert!((va - vb).abs() < 1e-9 * vb && (ea - eb).abs() < 1e-9 * eb);
    assert_eq!(
        a["base_value"].as_f64(),
        Some(0.0),
        "margined: worth 0 today"
    );
}

#[test]
fn an_inverse_future_reported_in_coin_has_the_closed_form_var() {
    // long face F: coin P&L F·(1/S_0 − 1/S_h); the loss F/S_0·(e^{−X} − 1) grows as X falls,
    // so VaR_a = F/S_0·(e^{s·z_a} − 1) with s = σ√(1/365) exactly
    let s = scenario(
        "id,kind,underlying,quantity,multiplier,settlement,venue\n\
         f,future,BTC,50000,10,inverse,deribit\n",
    );
    let doc = json(&s.tailrisk("run", &["--format", "json", "--currency", "BTC"]));
    let (var, _, var_se, _) = measure(&doc, 0.99);
    let z = Normal::new(0.0, 1.0).unwrap().inverse_cdf(0.99);
    let sd = 0.6 * (1.0 / DAYS_PER_YEAR).sqrt();
    let exact = 500_000.0 / BTC * ((sd * z).exp() - 1.0);
    assert!(
        (var - exact).abs() <= 4.0 * var_se,
        "VaR {var} against {exact} ± 4·{var_se}"
    );
}

#[test]
fn an_inverse_option_is_worth_its_usd_price_and_coin_collateral_adds_the_risk() {
    // a coin-settled option's value is coin held: in USD it is worth the USD option, path by
    // path; the wrong-way risk of selling puts against BTC is in the BTC collateral
    let book = |settlement: &str, collateral: &str| {
        format!(
            "id,kind,underlying,quantity,settlement,venue,option_type,strike,expiry\n\
             put,option,BTC,-20,{settlement},deribit,put,85000,2026-12-25\n\
             collateral,cash,{collateral},,deribit,,,\n"
        )
    };
    let run = |positions: String| {
        json(&scenario(&positions).tailrisk("run", &["--format", "json", "--paths", "50000"]))
    };
    let (coin, usd) = ("BTC,4", "USDT,368000");
    let inverse = run(book("inverse", coin));
    let linear = run(book("linear", coin));
    assert_eq!(inverse["measures"], linear["measures"]);
    let stable = run(book("inverse", usd));
    let coin_only = run("id,kind,underlying,quantity,venue\nc,cash,BTC,4,deribit\n".to_owned());
    let (with_coin, ..) = measure(&inverse, 0.99);
    let (with_usdt, ..) = measure(&stable, 0.99);
    let (coin_alone, ..) = measure(&coin_only, 0.99);
    // the short put and the coin both lose as BTC falls (no vol factor here): comonotone, so
    // the collateral's VaR adds in full
    assert!(
        (with_coin - (with_usdt + coin_alone)).abs() < 1e-6 * with_coin,
        "BTC collateral VaR {with_coin}, USDT collateral {with_usdt} + coin alone {coin_alone}"
    );
}

#[test]
fn exposures_show_coin_and_usd_deltas_funding_and_basis() {
    let positions =
        "id,kind,underlying,quantity,multiplier,settlement,venue,option_type,strike,expiry\n\
                     call,option,BTC,3,,inverse,deribit,call,100000,2026-12-25\n\
                     perp,perpetual,BTC,-1000,10,inverse,deribit,,,\n\
                     lin,perpetual,ETH,20,,,binance,,,\n\
                     fut,future,ETH,-5,,,okx,,,2027-03-26\n";
    let s = scenario(positions);
    let doc = json(&s.tailrisk("exposures", &["--format", "json"]));
    let row = |key: &str, underlying: &str| {
        doc["exposures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == "venue" && r["key"] == key && r["underlying"] == underlying)
            .unwrap()
            .clone()
    };
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
    // 2026-11-20 08:00 to 2026-12-25 08:00: 35 days
    let tau = 35.0 / DAYS_PER_YEAR;
    let (usd, delta) = reference_price(true, BTC, 100_000.0, tau, 0.5, 0.03);
    let deribit = row("deribit", "BTC");
    let perp_delta = -10_000.0 / BTC;
    let expected_delta = 3.0 * delta + perp_delta;
    assert!((f(&deribit, "delta") - expected_delta).abs() < 1e-9);
    assert!((f(&deribit, "delta_usd") - expected_delta * BTC).abs() < 1e-5);
    let expected_settlement = 3.0 * (delta - usd / BTC) + perp_delta;
    assert!((f(&deribit, "settlement_delta") - expected_settlement).abs() < 1e-9);
    // a day's funding for +1 %/year: the short inverse perpetual receives it on its face
    assert!((f(&deribit, "funding") - 10_000.0 * 0.01 / DAYS_PER_YEAR).abs() < 1e-9);
    let binance = row("binance", "ETH");
    assert!((f(&binance, "funding") + 20.0 * 3100.0 * 0.01 / DAYS_PER_YEAR).abs() < 1e-9);
    assert_eq!(f(&binance, "settlement_delta"), f(&binance, "delta"));
    // 2026-11-20 08:00 to 2027-03-26 08:00: 126 days; F = S without a market basis
    let okx = row("okx", "ETH");
    let by_hand = -5.0 * 3100.0 * (126.0 / DAYS_PER_YEAR) * 0.01;
    assert!(
        (f(&okx, "basis") - by_hand).abs() < 1e-9,
        "{}",
        f(&okx, "basis")
    );
    let text = String::from_utf8(s.tailrisk("exposures", &[]).stdout).unwrap();
    assert!(text.contains("settlement_delta"), "{text}");
}

#[test]
fn bad_settlement_input_is_refused_with_row_and_field() {
    let cases = [
        (
            "id,kind,underlying,quantity,settlement\na,spot,BTC,1,inverse\n",
            "field 'settlement'",
            "only futures, perpetuals and options can be inverse",
        ),
        (
            "id,kind,underlying,quantity,settlement\na,perpetual,BTC,1,quanto\n",
            "field 'settlement'",
            "expected linear or inverse, found 'quanto'",
        ),
        (
            "id,kind,underlying,quantity,expiry\na,future,BTC,1,2026-11-01\n",
            "field 'expiry'",
            "expired",
        ),
    ];
    for (positions, field, message) in cases {
        let out = scenario(positions).tailrisk("run", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(
            err.contains("positions.csv") && err.contains("row 1") && err.contains(field),
            "{err}"
        );
        assert!(err.contains(message), "{err}");
    }
}
