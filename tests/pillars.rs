//! Vol pillars and the skew factor (`vol_pillars`, `vol_of_vol` per pillar, `skew_vol`):
//! equal pillars reproduce the one-factor model, a vega-neutral calendar spread's VaR
//! matches the small-move closed form under the pillar covariance, stresses of pillars and
//! skew are checked by hand with Black–Scholes, the exposures' skew sensitivity against a
//! central difference, the term-structure grid by hand, and bad pillar specs are refused
//! naming the key.

mod common;

use common::Scenario;
use tailrisk::book::instrument::OptionType;
use tailrisk::input::job::Job;
use tailrisk::mc::paths::PathMove;
use tailrisk::pricing::black_scholes::{bs_greeks, bs_price};
use tailrisk::pricing::revaluation::Revaluer;
use tailrisk::time::DAYS_PER_YEAR;

/// BTC only, zero rate, so forwards equal spot.
const MARKET: &str = "underlying,spot,atm_vol,rate,as_of
BTC,100000,0.50,0,2026-11-20T08:00:00Z
";

/// Expiries with exactly 30 and 90 days left after a one-day horizon.
const EXPIRY_31D: &str = "2026-12-21T08:00:00Z";
const EXPIRY_91D: &str = "2027-02-19T08:00:00Z";

fn model(factors: &str, correlation: &str) -> String {
    format!("[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\n{factors}\n{correlation}")
}

fn scenario(run: &str, model: &str, positions: &str) -> Scenario {
    Scenario::new(run, model, MARKET, "positions.csv", positions)
}

/// A calendar spread: long the 90-day ATM call, short `short_30d` of the 30-day ATM call.
fn calendar(short_30d: f64) -> String {
    format!(
        "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
         long,option,BTC,1,deribit,call,100000,{EXPIRY_91D}\n\
         short,option,BTC,{},deribit,call,100000,{EXPIRY_31D}\n",
        -short_30d
    )
}

/// Black–Scholes vega (per unit of σ) of the ATM call with `days` left, at spot 100,000.
fn vega(days: f64) -> f64 {
    bs_greeks(OptionType::Call, 1e5, 1e5, days / DAYS_PER_YEAR, 0.5, 0.0).vega * 100.0
}

const PILLARS: &str = "spot_vol = 0.0\nvol_pillars = [7, 30, 90, 180]\n\
                       vol_of_vol = [1.8, 1.3, 0.9, 0.7]";

/// Correlation of the 30- and 90-day pillars (the others are not held).
const RHO: f64 = 0.8;

fn pillar_correlation(rho: f64) -> String {
    format!(
        "[model.correlation]\nfactors = [\"BTC.vol.30d\", \"BTC.vol.90d\"]\n\
         matrix = [[1.0, {rho}], [{rho}, 1.0]]\n"
    )
}

#[test]
fn equal_pillars_moving_together_price_like_the_one_factor_model() {
    // Same spot and vol moves on both models: the pillar model with every pillar moved by
    // ln(ratio) equals the one-factor model moved by `ratio`, option by option.
    let positions = calendar(1.7);
    let one = scenario(
        "[run]\n",
        &model("spot_vol = 0.6\nvol_of_vol = 1.0", ""),
        &positions,
    );
    let pillars = scenario(
        "[run]\n",
        &model(
            "spot_vol = 0.6\nvol_pillars = [7, 30, 90, 180]\nvol_of_vol = [1, 1, 1, 1]",
            "",
        ),
        &positions,
    );
    let revaluer = |s: &Scenario| {
        let job = Job::load(&s.scenario(), false).unwrap();
        Revaluer::new(&job.aggregated, &job.model, 1.0).with_vol_dynamics(
            &job.aggregated,
            &job.model,
            1.0,
        )
    };
    let (one, pillars) = (revaluer(&one), revaluer(&pillars));
    for (x, ratio) in [(-0.2, 1.6), (0.0, 1.0), (0.05, 0.7), (0.3, 1.05)] {
        let flat = one.path_pnl(PathMove::new(&[x], &[ratio], &[]));
        let moved = pillars.path_pnl(PathMove::new(&[x], &[ratio], &[f64::ln(ratio); 4]));
        assert!(
            (flat - moved).abs() <= 1e-9 * flat.abs().max(1.0),
            "x {x}, ratio {ratio}: {flat} against {moved}"
        );
    }
}

#[test]
fn nearly_perfectly_correlated_equal_pillars_match_the_one_factor_var() {
    let run = "[run]\npaths = 200000\nseed = 5\nconfidence = [0.99]\n";
    let positions = calendar(1.7);
    let one = scenario(
        run,
        &model("spot_vol = 0.6\nvol_of_vol = 1.0", ""),
        &positions,
    );
    let every = "\"BTC.vol.7d\", \"BTC.vol.30d\", \"BTC.vol.90d\", \"BTC.vol.180d\"";
    let row = |i: usize| {
        let cells: Vec<&str> = (0..4)
            .map(|j| if i == j { "1.0" } else { "0.99999" })
            .collect();
        format!("[{}]", cells.join(", "))
    };
    let rows: Vec<String> = (0..4).map(row).collect();
    let correlation = format!(
        "[model.correlation]\nfactors = [{every}]\nmatrix = [{}]\n",
        rows.join(", ")
    );
    let pillars = scenario(
        run,
        &model(
            "spot_vol = 0.6\nvol_pillars = [7, 30, 90, 180]\nvol_of_vol = [1, 1, 1, 1]",
            &correlation,
        ),
        &positions,
    );
    let measure = |s: &Scenario| {
        common::measure(
            &common::json(&s.tailrisk("run", &["--format", "json"])),
            0.99,
        )
    };
    let (var_one, es_one, se_one, es_se_one) = measure(&one);
    let (var_p, es_p, se_p, es_se_p) = measure(&pillars);
    let var_tol = 4.0 * se_one.hypot(se_p);
    let es_tol = 4.0 * es_se_one.hypot(es_se_p);
    assert!(
        (var_one - var_p).abs() <= var_tol,
        "VaR {var_one} against {var_p} ± {var_tol}"
    );
    assert!(
        (es_one - es_p).abs() <= es_tol,
        "ES {es_one} against {es_p} ± {es_tol}"
    );
}

#[test]
fn vega_neutral_calendar_var_matches_the_pillar_covariance_closed_form() {
    // Spot fixed (spot_vol 0) over a 0.01-day horizon: the P&L is the time decay plus, for
    // small moves, Σ vega_i·σ·L_i with L_30 ~ N(0, 1.3²·h/365), L_90 ~ N(0, 0.9²·h/365),
    // corr 0.8. The options have exactly 30 and 90 days left at the horizon.
    let horizon = 0.01;
    let positions = "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
                     long,option,BTC,1,deribit,call,100000,2027-02-18T08:14:24Z\n\
                     short,option,BTC,SHORT,deribit,call,100000,2026-12-20T08:14:24Z\n";
    let (v30, v90) = (vega(30.0), vega(90.0));
    let short = v90 / v30;
    let positions = positions.replace("SHORT", &format!("{}", -short));
    let run =
        format!("[run]\npaths = 400000\nseed = 9\nconfidence = [0.99]\nhorizon_days = {horizon}\n");
    let s = scenario(&run, &model(PILLARS, &pillar_correlation(RHO)), &positions);
    let doc = common::json(&s.tailrisk("run", &["--format", "json"]));
    let (var, _, var_se, _) = common::measure(&doc, 0.99);

    let root_h = (horizon / DAYS_PER_YEAR).sqrt();
    let (a, b) = (-short * v30 * 0.5 * 1.3 * root_h, v90 * 0.5 * 0.9 * root_h);
    let sd = (a * a + b * b + 2.0 * RHO * a * b).sqrt();
    let price = |days: f64| bs_price(OptionType::Call, 1e5, 1e5, days / DAYS_PER_YEAR, 0.5, 0.0);
    let decay =
        (price(90.0) - price(90.0 + horizon)) - short * (price(30.0) - price(30.0 + horizon));
    let z = 2.326_347_874;
    let closed_form = -decay + z * sd;
    // The closed form is first order in the log-vol moves L: a leg's vol moves by e^L − 1 =
    // L(1 + L/2 + …), so at the 99 % quantile the neglected terms are at most
    // z·1.3·√(h/365)/2 of the larger leg's move (0.8 % here).
    let second_order = 0.5 * z * 1.3 * root_h * (a.abs().max(b.abs()) * z);
    let tolerance = 4.0 * var_se + second_order;
    assert!(
        (var - closed_form).abs() <= tolerance,
        "VaR {var} against the closed form {closed_form} ± {tolerance}"
    );

    // The one-factor model sees the spread as (nearly) riskless.
    let flat = scenario(
        &run,
        &model("spot_vol = 0.0\nvol_of_vol = 1.1", ""),
        &positions,
    );
    let (flat_var, _, _, _) = common::measure(
        &common::json(&flat.tailrisk("run", &["--format", "json"])),
        0.99,
    );
    assert!(
        flat_var < 0.2 * var,
        "one-factor VaR {flat_var} against pillars {var}"
    );
}

/// `got` within `tolerance` of `want`, relative.
fn assert_relative(got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance * want.abs(),
        "{got} against {want} (relative tolerance {tolerance})"
    );
}

/// The stress P&L of `shocks` (a TOML inline table's body) on `positions`.
fn stress_pnl(factors: &str, positions: &str, shocks: &str) -> f64 {
    let s = scenario("[run]\n", &model(factors, ""), positions);
    let text = std::fs::read_to_string(s.scenario()).unwrap()
        + &format!("\n[[stress]]\nname = \"s\"\nshocks = {{ {shocks} }}\n");
    s.write("scenario.toml", &text);
    let out = s.tailrisk("stress", &["--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json(&out)["stress"][0]["pnl"].as_f64().unwrap()
}

/// Value change of one call over the one-day horizon, its vol × `vol_factor`.
fn call_change(strike: f64, days: f64, vol_factor: f64) -> f64 {
    let tau = |d: f64| d / DAYS_PER_YEAR;
    bs_price(
        OptionType::Call,
        1e5,
        strike,
        tau(days - 1.0),
        0.5 * vol_factor,
        0.0,
    ) - bs_price(OptionType::Call, 1e5, strike, tau(days), 0.5, 0.0)
}

#[test]
fn a_pillar_stress_moves_each_option_by_its_interpolated_tenor() {
    // 30-day pillar +40 %: the 30-day option's vol × 1.4, a 60-day option (halfway to the
    // 90-day pillar) × 1.4^0.5, the 90-day option not at all.
    let positions = format!(
        "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
         a,option,BTC,1,deribit,call,100000,{EXPIRY_31D}\n\
         b,option,BTC,1,deribit,call,100000,2027-01-20T08:00:00Z\n\
         c,option,BTC,1,deribit,call,100000,{EXPIRY_91D}\n"
    );
    let pnl = stress_pnl(PILLARS, &positions, "\"BTC.vol.30d\" = 0.40");
    let by_hand = call_change(1e5, 31.0, 1.4)
        + call_change(1e5, 61.0, 1.4f64.sqrt())
        + call_change(1e5, 91.0, 1.0);
    assert_relative(pnl, by_hand, 1e-6);
}

#[test]
fn a_skew_stress_tilts_a_risk_reversal_by_hand() {
    // Long the 110,000 call, short the 90,000 put, 30 days left: the slope falls by 0.2
    // (steeper put skew). ln vol moves by −0.2·ln(K/F): the put's vol rises, the call's falls.
    let positions = format!(
        "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
         call,option,BTC,1,deribit,call,110000,{EXPIRY_31D}\n\
         put,option,BTC,-1,deribit,put,90000,{EXPIRY_31D}\n"
    );
    let factors = "spot_vol = 0.6\nvol_of_vol = 1.0\nskew_vol = 0.8";
    let pnl = stress_pnl(factors, &positions, "\"BTC.skew\" = -0.2");
    let tau = |d: f64| d / DAYS_PER_YEAR;
    let moved = |k: f64| 0.5 * (-0.2 * (k / 1e5_f64).ln()).exp();
    let change = |kind, k: f64| {
        bs_price(kind, 1e5, k, tau(30.0), moved(k), 0.0)
            - bs_price(kind, 1e5, k, tau(31.0), 0.5, 0.0)
    };
    let by_hand = change(OptionType::Call, 110000.0) - change(OptionType::Put, 90000.0);
    assert!(
        by_hand < 0.0,
        "a long risk reversal loses when the put skew steepens"
    );
    assert_relative(pnl, by_hand, 1e-6);
}

#[test]
fn the_exposures_skew_sensitivity_is_the_stress_central_difference() {
    let positions = format!(
        "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
         call,option,BTC,3,deribit,call,115000,{EXPIRY_91D}\n\
         put,option,BTC,-2,deribit,put,85000,{EXPIRY_31D}\n"
    );
    let factors = "spot_vol = 0.6\nvol_of_vol = 1.0\nskew_vol = 0.8";
    let s = scenario(
        "[run]\nhorizon_days = 0.0001\n",
        &model(factors, ""),
        &positions,
    );
    let doc = common::json(&s.tailrisk("exposures", &["--format", "json"]));
    let skew = doc["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "underlying")
        .unwrap()["skew"]
        .as_f64()
        .unwrap();
    let base = std::fs::read_to_string(s.scenario()).unwrap();
    let stressed = |shift: f64| {
        let text =
            format!("{base}\n[[stress]]\nname = \"s\"\nshocks = {{ \"BTC.skew\" = {shift} }}\n");
        s.write("scenario.toml", &text);
        common::json(&s.tailrisk("stress", &["--format", "json"]))["stress"][0]["pnl"]
            .as_f64()
            .unwrap()
    };
    let central = (stressed(0.01) - stressed(-0.01)) / 2.0;
    assert!(skew > 0.0, "long call wing, short put wing: {skew}");
    assert_relative(skew, central, 2e-3);
}

#[test]
fn the_term_structure_grid_scales_vol_moves_by_tenor() {
    // A 7-day option (8 days to expiry, one-day horizon) in the +50 % vol column with p = 0.3:
    // vol × 1.5^((30/7)^0.3), spot unchanged.
    let positions = "id,kind,underlying,quantity,venue,option_type,strike,expiry\n\
                     a,option,BTC,1,deribit,call,100000,2026-11-28T08:00:00Z\n";
    let s = scenario(
        "[run]\n",
        &model("spot_vol = 0.6\nvol_of_vol = 1.0", ""),
        positions,
    );
    let doc = common::json(&s.tailrisk("stress", &["--format", "json", "--term-power", "0.3"]));
    let grid = &doc["term_structure_grid"];
    assert_eq!(grid["power"], 0.3);
    let btc = &grid["grids"][0];
    let row = btc["spot_moves"]
        .as_array()
        .unwrap()
        .iter()
        .position(|x| x == 0.0)
        .unwrap();
    let col = btc["vol_moves"]
        .as_array()
        .unwrap()
        .iter()
        .position(|x| x == 0.5)
        .unwrap();
    let pnl = btc["pnl"][row][col].as_f64().unwrap();
    let by_hand = call_change(1e5, 8.0, 1.5f64.powf((30.0f64 / 7.0).powf(0.3)));
    assert_relative(pnl, by_hand, 1e-6);
    // without --term-power the key is absent and the plain grid moves the vol by 1.5
    let plain = common::json(&s.tailrisk("stress", &["--format", "json"]));
    assert!(plain.get("term_structure_grid").is_none());
    let flat = plain["grid"][0]["pnl"][row][col].as_f64().unwrap();
    assert_relative(flat, call_change(1e5, 8.0, 1.5), 1e-6);
}

#[test]
fn grid_revaluation_of_a_pillar_book_equals_full_revaluation() {
    // Pillars without skew: one surface per expiry, used, and the exact tail makes VaR, ES
    // and their errors those of full revaluation. With a skew factor: revalued in full. The
    // book includes a short call expiring five minutes after the one-day horizon (flat below
    // the first pillar, skew loading at its one-day floor).
    let run = "[run]\npaths = 20000\nseed = 3\n";
    let positions = format!(
        "{}c,option,BTC,-2,deribit,put,90000,2027-01-20T08:00:00Z\n\
         d,option,BTC,-3,deribit,call,100000,2026-11-21T08:05:00Z\n",
        calendar(1.5)
    );
    let skewed = PILLARS.to_owned() + "\nskew_vol = 0.8";
    for (factors, used) in [(PILLARS, "grid"), (skewed.as_str(), "full")] {
        let s = scenario(run, &model(factors, &pillar_correlation(RHO)), &positions);
        let run_in = |mode: &str| {
            common::json(&s.tailrisk("run", &["--format", "json", "--revaluation", mode]))
        };
        let (grid, full) = (run_in("grid"), run_in("full"));
        assert_eq!(grid["revaluation"]["mode"], used, "{factors}");
        assert_eq!(grid["measures"], full["measures"], "{factors}");
        if used == "grid" {
            let error = grid["revaluation"]["relative_error"].as_f64().unwrap();
            assert!(error < 1e-4, "per-expiry surfaces off by {error} of VaR");
        }
    }
}

#[test]
fn bad_pillar_specs_are_refused_naming_the_key() {
    let cases = [
        (
            "spot_vol = 0.6\nvol_of_vol = [1.0, 0.8]",
            "vol_of_vol",
            "needs vol_pillars",
        ),
        (
            "spot_vol = 0.6\nvol_pillars = [7, 30]\nvol_of_vol = 1.0",
            "vol_of_vol",
            "one vol of vol per pillar",
        ),
        (
            "spot_vol = 0.6\nvol_pillars = [7, 30]\nvol_of_vol = [1.0]",
            "vol_of_vol",
            "1 values for 2",
        ),
        (
            "spot_vol = 0.6\nvol_pillars = [30, 7]\nvol_of_vol = [1.0, 1.0]",
            "vol_pillars",
            "strictly increasing",
        ),
        (
            "spot_vol = 0.6\nvol_pillars = [0, 7]\nvol_of_vol = [1.0, 1.0]",
            "vol_pillars",
            "above 0",
        ),
        (
            "spot_vol = 0.6\nvol_pillars = [7]\nvol_of_vol = [-1.0]",
            "vol_of_vol",
            "non-negative",
        ),
        (
            "spot_vol = 0.6\nvol_pillars = [7]\nvol_of_vol = [1.0]\nterm_power = 0.3",
            "term_power",
            "cannot be combined",
        ),
        (
            "spot_vol = 0.6\nskew_vol = -0.5",
            "skew_vol",
            "non-negative",
        ),
    ];
    for (factors, key, says) in cases {
        let s = scenario("[run]\n", &model(factors, ""), &calendar(1.0));
        let out = s.tailrisk("run", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{factors}: {err}");
        assert!(
            err.contains(&format!("model.factors.BTC.{key}")),
            "{factors}: {err}"
        );
        assert!(err.contains(says), "{factors}: {err}");
    }
}

#[test]
fn bad_pillar_and_skew_stresses_are_refused_naming_the_scenario() {
    let factors = "spot_vol = 0.6\nvol_pillars = [7, 30]\nvol_of_vol = [1.0, 0.8]";
    for (shock, says) in [
        ("\"BTC.vol.45d\" = 0.2", "not a vol pillar of BTC"),
        ("\"BTC.skew\" = -0.1", "no skew factor for BTC"),
        ("\"BTC.vol.7d\" = -1.5", "above -1"),
    ] {
        let s = scenario("[run]\n", &model(factors, ""), &calendar(1.0));
        let text = std::fs::read_to_string(s.scenario()).unwrap()
            + &format!("\n[[stress]]\nname = \"bad\"\nshocks = {{ {shock} }}\n");
        s.write("scenario.toml", &text);
        let out = s.tailrisk("stress", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{shock}: {err}");
        assert!(
            err.contains("stress 'bad'") && err.contains(says),
            "{shock}: {err}"
        );
    }
}

#[test]
fn a_calibrated_pillar_model_runs_as_calibrated() {
    // calibrate --vol-history (the pillar format) prints a [model] section that a scenario
    // can use as it is: its pillar factors are the model's, and a calendar spread runs on it.
    let out = tempfile::tempdir().unwrap();
    let model_file = out.path().join("model.toml");
    let calibrated = common::tailrisk(&[
        "calibrate",
        "--history",
        common::sample("data/bitstamp_btc_eth_ltc_usd_daily.csv")
            .to_str()
            .unwrap(),
        "--vol-history",
        common::sample("data/vol_history.csv").to_str().unwrap(),
        "--underlyings",
        "BTC",
        "--method",
        "sample",
        "--out",
        model_file.to_str().unwrap(),
    ]);
    assert!(
        calibrated.status.success(),
        "{}",
        String::from_utf8_lossy(&calibrated.stderr)
    );
    let model = std::fs::read_to_string(&model_file).unwrap();
    let s = scenario("[run]\npaths = 20000\n", &model, &calendar(1.7));
    let job = Job::load(&s.scenario(), false).unwrap();
    let names = &job.model.factor_names;
    assert_eq!(
        names,
        &[
            "BTC.spot",
            "BTC.vol.7d",
            "BTC.vol.30d",
            "BTC.vol.90d",
            "BTC.vol.180d"
        ]
    );
    let vols: Vec<f64> = job.model.underlyings[0]
        .pillars
        .iter()
        .map(|p| p.vol_of_vol)
        .collect();
    assert!(
        vols.windows(2).all(|w| w[0] > w[1]),
        "front moves most: {vols:?}"
    );
    let run = s.tailrisk("run", &["--format", "json"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (var, _, _, _) = common::measure(&common::json(&run), 0.99);
    assert!(var > 0.0);
}
