//! Futures basis (issue 14 item 5), perpetual funding (item 6) and stablecoin de-pegs (item 4),
//! against closed forms and values by hand: a cash-and-carry book's VaR from exactly 0 to its
//! closed form as the basis moves, convergence at expiry, the roll-down of today's basis;
//! funding accrued by hand (linear and coin-settled, moved rate) and the exact Gaussian law of
//! funding accrued over several steps; a de-peg's expected loss and VaR from its probability
//! and Pareto tail, under normal and Student-t shocks; bad carry input refused.

mod common;

use common::{json, measure, Scenario};
use statrs::distribution::{ContinuousCDF, Normal};
use tailrisk::time::DAYS_PER_YEAR;

const MARKET: &str = "underlying,spot,atm_vol,rate,as_of
BTC,92000,0.50,0.03,2026-11-20T08:00:00Z
";

const BTC: f64 = 92_000.0;

fn z(a: f64) -> f64 {
    Normal::new(0.0, 1.0).unwrap().inverse_cdf(a)
}

fn scenario(run: &str, model: &str, market: &str, positions: &str) -> Scenario {
    Scenario::new(run, model, market, "positions.csv", positions)
}

fn run_json(s: &Scenario) -> serde_json::Value {
    json(&s.tailrisk("run", &["--format", "json"]))
}

fn stress_pnls(s: &Scenario, stresses: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(s.scenario()).unwrap() + stresses;
    s.write("scenario.toml", &text);
    let doc = json(&s.tailrisk("stress", &["--format", "json"]));
    doc["stress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pnl"].as_f64().unwrap())
        .collect()
}

/// Long 10 BTC, short 10 BTC of a future expiring on `expiry`.
fn cash_and_carry(expiry: &str) -> String {
    format!(
        "id,kind,underlying,quantity,venue,expiry\nspot,spot,BTC,10,coinbase,\n\
         fut,future,BTC,-10,okx,{expiry}\n"
    )
}

const RUN: &str = "[run]\npaths = 200000\nseed = 3\nconfidence = [0.99]\n";

#[test]
fn cash_and_carry_var_rises_from_zero_to_the_basis_closed_form() {
    // 2026-11-20 08:00 to 2027-02-19 08:00: 91 days, 90 left at the 1-day horizon
    let book = cash_and_carry("2027-02-19");
    let spot_only = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n";
    let flat = run_json(&scenario(RUN, spot_only, MARKET, &book));
    let (var, es, ..) = measure(&flat, 0.99);
    assert_eq!((var, es), (0.0, 0.0), "no basis risk: the hedge is perfect");
    // with basis vol b: P&L = −10·S_h·(e^{Δy·τ_h} − 1), Δy ~ N(0, b²/365); with a tiny spot vol
    // the loss is monotone in Δy, so VaR_a = 10·S_0·(e^{b·√(1/365)·z_a·τ_h} − 1) exactly
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 1e-9\n\
                 basis_vol = 0.05\n";
    let doc = run_json(&scenario(RUN, model, MARKET, &book));
    let (var, _, var_se, _) = measure(&doc, 0.99);
    let tau_left = 90.0 / DAYS_PER_YEAR;
    let exact =
        10.0 * BTC * ((0.05 * (1.0 / DAYS_PER_YEAR).sqrt() * z(0.99) * tau_left).exp() - 1.0);
    assert!(
        (var - exact).abs() <= 4.0 * var_se,
        "VaR {var} against {exact} ± 4·{var_se}"
    );
    // and with a real spot vol the spot risk still cancels: the Gaussian closed form holds to
    // the MC error and the (1 + s²)^½ ≈ 1.0005 of the spot's scaling of the basis P&L
    let model = model.replace("spot_vol = 1e-9", "spot_vol = 0.6");
    let doc = run_json(&scenario(RUN, &model, MARKET, &book));
    let (var, _, var_se, _) = measure(&doc, 0.99);
    assert!(
        (var - exact).abs() <= 4.0 * var_se + 1e-3 * exact,
        "VaR {var} against {exact}"
    );
}

#[test]
fn a_future_converges_to_spot_at_expiry() {
    // expiring 12 hours after the valuation time, inside the 1-day horizon: F_h = S_h whatever
    // the basis did, so the cash-and-carry book cannot lose
    let book = cash_and_carry("2026-11-20T20:00:00Z");
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n\
                 basis_vol = 0.5\n";
    let doc = run_json(&scenario(RUN, model, MARKET, &book));
    let (var, ..) = measure(&doc, 0.99);
    assert!(var.abs() < 1e-6, "{var}");
}

#[test]
fn todays_basis_rolls_down_and_stresses_move_it() {
    // market basis y = 8 %/year: F_0 = S_0·e^{y·τ_0}; nothing moving, the short future earns
    // the roll-down 10·S_0·(e^{y·τ_0} − e^{y·τ_h}); a basis stress of +0.05 costs
    // 10·S_h·e^{y·τ_h}·(e^{0.05·τ_h} − 1) on top
    let market = "underlying,spot,atm_vol,rate,basis,as_of\n\
                  BTC,92000,0.50,0.03,0.08,2026-11-20T08:00:00Z\n";
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n\
                 basis_vol = 0.05\n";
    let s = scenario(RUN, model, market, &cash_and_carry("2027-02-19"));
    let pnl = stress_pnls(
        &s,
        "\n[[stress]]\nname = \"flat\"\nshocks = { \"BTC.spot\" = 0.0 }\n\
         \n[[stress]]\nname = \"blow-out\"\nshocks = { \"BTC.spot\" = -0.3, \"BTC.basis\" = 0.05 }\n",
    );
    let (t0, th) = (91.0 / DAYS_PER_YEAR, 90.0 / DAYS_PER_YEAR);
    let roll = 10.0 * BTC * ((0.08 * t0).exp() - (0.08 * th).exp());
    assert!((pnl[0] - roll).abs() < 1e-6, "{} against {roll}", pnl[0]);
    let spot = 0.7 * BTC;
    let blow_out =
        10.0 * (spot - BTC) - 10.0 * (spot * (0.13 * th).exp() - BTC * (0.08 * t0).exp());
    assert!(
        (pnl[1] - blow_out).abs() < 1e-6,
        "{} against {blow_out}",
        pnl[1]
    );
}

#[test]
fn an_inverse_future_under_a_basis_by_hand() {
    // long 100,000 USD face expiring in 91 days at a market basis of 8 %/year: coin P&L
    // f·(1/F_0 − 1/F_h), F_0 = S_0·e^{0.08·τ_0}, F_h = S_h·e^{(0.08 + Δy)·τ_h}, worth S_h
    // times that in USD
    let market = "underlying,spot,atm_vol,rate,basis,as_of\n\
                  BTC,92000,0.50,0.03,0.08,2026-11-20T08:00:00Z\n";
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n\
                 basis_vol = 0.05\n";
    let positions = "id,kind,underlying,quantity,multiplier,settlement,venue,expiry\n\
                     f,future,BTC,1000,100,inverse,deribit,2027-02-19\n";
    let s = scenario(RUN, model, market, positions);
    let pnl = stress_pnls(
        &s,
        "\n[[stress]]\nname = \"down, basis up\"\nshocks = { \"BTC.spot\" = -0.2, \"BTC.basis\" = 0.03 }\n",
    );
    let (t0, th) = (91.0 / DAYS_PER_YEAR, 90.0 / DAYS_PER_YEAR);
    let spot = 0.8 * BTC;
    let f0 = BTC * (0.08 * t0).exp();
    let fh = spot * (0.11 * th).exp();
    let by_hand = 100_000.0 * (1.0 / f0 - 1.0 / fh) * spot;
    assert!(
        (pnl[0] - by_hand).abs() < 1e-6,
        "{} against {by_hand}",
        pnl[0]
    );
    // its basis exposure: face·τ·e^{−y·τ} per unit of y, per point 0.01
    let doc = json(&s.tailrisk("exposures", &["--format", "json"]));
    let row = doc["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "underlying")
        .unwrap()
        .clone();
    let exact = 100_000.0 * t0 * (-0.08 * t0).exp() * 0.01;
    assert!((row["basis"].as_f64().unwrap() - exact).abs() < 1e-9);
}

#[test]
fn funding_accrues_by_hand_for_linear_and_inverse_perpetuals() {
    // 10-day horizon, funding 20 %/year paid by longs at the horizon's rate and price:
    // linear long 5 BTC pays 5·S_h·r·h/365; a short inverse perpetual of 50 000 USD face
    // receives 50 000·r·h/365 USD (its coin funding face/S_h·r·h/365 worth S_h)
    let run = "[run]\npaths = 1000\nseed = 3\nhorizon_days = 10\n";
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n\
                 funding_rate = 0.2\nfunding_vol = 0.4\n";
    let positions = "id,kind,underlying,quantity,multiplier,settlement,venue\n\
                     lin,perpetual,BTC,5,,,binance\ninv,perpetual,BTC,-5000,10,inverse,deribit\n";
    let s = scenario(run, model, MARKET, positions);
    let pnl = stress_pnls(
        &s,
        "\n[[stress]]\nname = \"flat\"\nshocks = { \"BTC.spot\" = 0.0 }\n\
         \n[[stress]]\nname = \"squeeze\"\nshocks = { \"BTC.spot\" = 0.1, \"BTC.funding\" = 0.5 }\n",
    );
    let years = 10.0 / DAYS_PER_YEAR;
    for (i, (moved, rate)) in [(0.0, 0.2), (0.1, 0.7)].into_iter().enumerate() {
        let spot = BTC * (1.0 + moved);
        let linear = 5.0 * (spot - BTC) - 5.0 * spot * rate * years;
        let inverse = -50_000.0 * (spot / BTC - 1.0) + 50_000.0 * rate * years;
        let by_hand = linear + inverse;
        assert!(
            (pnl[i] - by_hand).abs() < 1e-6,
            "stress {i}: {} against {by_hand}",
            pnl[i]
        );
    }
}

#[test]
fn funding_over_several_steps_has_its_exact_gaussian_law() {
    // spot fixed, rate r_k = μ + σ_f·√Δt·(e_1 + … + e_k) at the end of step k, accrual
    // A = Σ r_k·Δt: A ~ N(μ·h, σ_f²·Δt³·n(n+1)(2n+1)/6); a long perpetual of u coins loses
    // u·S_0·A, so VaR_a = u·S_0·(μ·h + z_a·sd) exactly
    let (mu, vol, n, days) = (0.1, 0.8, 4.0, 20.0);
    let run = format!("{RUN}horizon_days = {days}\nsteps = {n}\n");
    let model = format!(
        "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.0\n\
         funding_rate = {mu}\nfunding_vol = {vol}\n"
    );
    // a long linear perpetual of 100 coins and, as a second book, the same as a coin-settled
    // one of 100·S_0 USD face: with the spot fixed both pay the same USD funding
    let positions = "id,kind,underlying,quantity,venue\np,perpetual,BTC,100,binance\n";
    let inverse = "id,kind,underlying,quantity,multiplier,settlement,venue\n\
                   p,perpetual,BTC,92000,100,inverse,deribit\n";
    let coin = run_json(&scenario(&run, &model, MARKET, inverse));
    let doc = run_json(&scenario(&run, &model, MARKET, positions));
    let (a, b) = (measure(&doc, 0.99).0, measure(&coin, 0.99).0);
    assert!((a - b).abs() < 1e-6 * a, "linear {a}, inverse {b}");
    let (var, _, var_se, _) = measure(&doc, 0.99);
    let dt = days / n / DAYS_PER_YEAR;
    let sd = vol * (dt.powi(3) * n * (n + 1.0) * (2.0 * n + 1.0) / 6.0).sqrt();
    let exact = 100.0 * BTC * (mu * days / DAYS_PER_YEAR + z(0.99) * sd);
    assert!(
        (var - exact).abs() <= 4.0 * var_se,
        "VaR {var} against {exact} ± 4·{var_se}"
    );
    let mean = doc["pnl_mean"].as_f64().unwrap();
    let sd_pnl = 100.0 * BTC * sd;
    let expected = -100.0 * BTC * mu * days / DAYS_PER_YEAR;
    assert!((mean - expected).abs() < 4.0 * sd_pnl / 200_000f64.sqrt());
}

/// A USDC balance of 1 000 000 on Binance with a de-peg of rate `lambda`, smallest loss 5 %
/// and tail index 2, over a year.
fn depeg_scenario(distribution: &str, lambda: f64) -> Scenario {
    let run = "[run]\npaths = 400000\nseed = 9\nhorizon_days = 365\nconfidence = [0.99]\n";
    let model = format!(
        "[model]\n{distribution}\n[model.factors.BTC]\nspot_vol = 0.6\n\n\
         [model.depeg.USDC]\nprobability = {lambda}\nloss = 0.05\ntail_index = 2\n"
    );
    scenario(
        run,
        &model,
        MARKET,
        "id,kind,underlying,quantity,venue\nusdc,cash,USDC,1000000,binance\n",
    )
}

#[test]
fn a_depeg_loses_probability_times_mean_loss_and_its_pareto_quantile() {
    // p = 1 − e^{−λ}; E[L] = m + (m − m^α)/(α − 1); P(L > l) = (m/l)^α for m ≤ l ≤ 1, so the
    // loss beyond probability 1 − a is l = m·(p/(1 − a))^{1/α}, exactly (the copula maps the
    // de-peg shock to a uniform under either distribution)
    let (lambda, m, alpha, balance) = (0.5f64, 0.05f64, 2.0f64, 1_000_000.0);
    let p = 1.0 - (-lambda).exp();
    let mean_loss = m + (m - m.powf(alpha)) / (alpha - 1.0);
    for distribution in [
        "distribution = \"normal\"",
        "distribution = \"student-t\"\ndof = 4",
    ] {
        let doc = run_json(&depeg_scenario(distribution, lambda));
        let mean = -doc["pnl_mean"].as_f64().unwrap();
        let sd = doc["pnl_stdev"].as_f64().unwrap();
        let expected = p * mean_loss * balance;
        let se = sd / 400_000f64.sqrt();
        assert!(
            (mean - expected).abs() <= 4.0 * se,
            "{distribution}: mean loss {mean} against {expected} ± 4·{se}"
        );
        let (var, _, var_se, _) = measure(&doc, 0.99);
        let exact = balance * m * (p / 0.01).powf(1.0 / alpha);
        assert!(
            (var - exact).abs() <= 4.0 * var_se,
            "{distribution}: VaR {var} against {exact} ± 4·{var_se}"
        );
    }
}

#[test]
fn a_multi_step_depeg_keeps_its_law_and_comes_with_crashes_when_correlated() {
    // four steps: the de-peg shock is the steps' sum over 2, still standard normal, so the
    // expected loss is unchanged; with USDC.peg correlated 0.9 with BTC.spot the de-peg paths
    // are the crash paths, and a book of USDC and BTC loses more in its tail
    let (lambda, m) = (0.5f64, 0.05f64);
    let expected = (1.0 - (-lambda).exp()) * (m + (m - m * m)) * 1_000_000.0;
    let s = depeg_scenario("distribution = \"normal\"", lambda);
    let text = std::fs::read_to_string(s.scenario()).unwrap().replacen(
        "horizon_days = 365\n",
        "horizon_days = 365\nsteps = 4\n",
        1,
    );
    s.write("scenario.toml", &text);
    let doc = run_json(&s);
    let (mean, sd) = (
        -doc["pnl_mean"].as_f64().unwrap(),
        doc["pnl_stdev"].as_f64().unwrap(),
    );
    assert!(
        (mean - expected).abs() <= 4.0 * sd / 400_000f64.sqrt(),
        "{mean} against {expected}"
    );
    let book =
        "id,kind,underlying,quantity,venue\nusdc,cash,USDC,1000000,binance\nb,spot,BTC,10,x\n";
    s.write("positions.csv", book);
    let independent = measure(&run_json(&s), 0.99).0;
    s.write(
        "scenario.toml",
        &(text
            + "\n[model.correlation]\nfactors = [\"BTC.spot\", \"USDC.peg\"]\n\
                   matrix = [[1.0, 0.9], [0.9, 1.0]]\n"),
    );
    let together = measure(&run_json(&s), 0.99).0;
    assert!(together > independent * 1.05, "{together} vs {independent}");
}

#[test]
fn a_depeg_stress_costs_its_move_and_a_zero_rate_never_moves() {
    let s = depeg_scenario("distribution = \"normal\"", 0.0);
    let doc = run_json(&s);
    let (var, ..) = measure(&doc, 0.99);
    assert_eq!(var, 0.0);
    let pnl = stress_pnls(
        &s,
        "\n[[stress]]\nname = \"USDC March 2023\"\nshocks = { \"USDC.peg\" = -0.12 }\n",
    );
    assert!((pnl[0] + 120_000.0).abs() < 1e-6, "{}", pnl[0]);
}

#[test]
fn bad_carry_input_is_refused_naming_the_key() {
    let positions = "id,kind,underlying,quantity,venue\nf,future,BTC,1,okx\nu,cash,USDC,5,okx\n";
    // a future 8,000 years away under a basis
    let far = "id,kind,underlying,quantity,venue,expiry\nf,future,BTC,1,okx,9999-01-01\n";
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\nbasis_vol = 0.1\n";
    let out = scenario(RUN, model, MARKET, far).tailrisk("run", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("field 'expiry'") && err.contains("more than 50 years"),
        "{err}"
    );
    let cases = [
        (
            "[model.factors.BTC]\nspot_vol = 0.6\nbasis_vol = 0.05\n",
            "",
            "needs its expiry",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\nfunding_vol = -0.1\n",
            "",
            "model.factors.BTC.funding_vol",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\n[model.depeg.BTC]\nprobability = 0.1\nloss = 0.1\n",
            "",
            "'BTC' is not a USD stablecoin",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\n[model.depeg.USDC]\nprobability = 0.1\nloss = 0.1\n\
             tail_index = 1\n",
            "",
            "model.depeg.USDC.tail_index",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\n",
            "\n[[stress]]\nname = \"x\"\nshocks = { \"BTC.funding\" = 0.1 }\n",
            "no funding factor for BTC",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\n",
            "\n[[stress]]\nname = \"x\"\nshocks = { \"USDC.peg\" = 0.1 }\n",
            "a de-peg is a relative fall",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\n[model.factors.USDC]\nspot_vol = 0.01\n\
             [model.depeg.USDC]\nprobability = 0.1\nloss = 0.1\n",
            "",
            "give it a de-peg or a spot factor, not both",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\nfunding_rate = 1e300\n",
            "",
            "model.factors.BTC.funding_rate",
        ),
        (
            "[model.factors.BTC]\nspot_vol = 0.6\nfunding_rate = 0.1\n",
            "\n[[stress]]\nname = \"x\"\nshocks = { \"BTC.funding\" = 1e6 }\n",
            "beyond ±10",
        ),
    ];
    for (factors, stress, message) in cases {
        let model = format!("[model]\ndistribution = \"normal\"\n{factors}");
        let s = scenario(RUN, &model, MARKET, positions);
        let text = std::fs::read_to_string(s.scenario()).unwrap() + stress;
        s.write("scenario.toml", &text);
        let command = if stress.is_empty() { "run" } else { "stress" };
        let out = s.tailrisk(command, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{message}: {err}");
        assert!(err.contains(message), "{message}: {err}");
    }
}

#[test]
fn an_absurd_market_basis_or_rate_is_refused() {
    let model = "[model]\ndistribution = \"normal\"\n[model.factors.BTC]\nspot_vol = 0.6\n";
    for (column, value) in [("basis", "50"), ("rate", "1e308")] {
        let market = format!(
            "underlying,spot,atm_vol,{column},as_of\nBTC,92000,0.5,{value},2026-11-20T08:00:00Z\n"
        );
        let s = scenario(
            RUN,
            model,
            &market,
            "id,kind,underlying,quantity\na,spot,BTC,1\n",
        );
        let out = s.tailrisk("run", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(
            err.contains("market.csv")
                && err.contains("row 1")
                && err.contains(&format!("field '{column}'"))
                && err.contains("beyond ±10"),
            "{err}"
        );
    }
}
