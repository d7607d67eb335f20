//! `tailrisk hedge` end to end: a cross-hedge of SOL with a BTC perpetual, its trades file
//! fed back to `whatif`, target mode judged on fresh paths, bounds, lots and budget, and
//! bad candidates.

mod common;

use common::{json, Scenario, MARKET};

/// Normal one-day model of BTC and SOL with correlation 0.7.
const MODEL: &str = r#"[model]
distribution = "normal"

[model.factors.BTC]
spot_vol = 0.55

[model.factors.ETH]
spot_vol = 0.70

[model.factors.SOL]
spot_vol = 0.90

[model.correlation]
factors = ["BTC.spot", "SOL.spot"]
matrix = [[1.0, 0.7], [0.7, 1.0]]
"#;

const RUN: &str = "[run]\npaths = 40000\nseed = 5\nconfidence = [0.975]\n";

const SOL_BOOK: &str = "id,kind,underlying,quantity\nsol,spot,SOL,10000\n";

const BTC_PERP: &str = "id,kind,underlying,cost,min_quantity,max_quantity,lot\n\
btc-perp,perpetual,BTC,5,-1000,1000,0.01\n";

fn scenario(book: &str) -> Scenario {
    let s = Scenario::new(RUN, MODEL, MARKET, "positions.csv", book);
    s.write("candidates.csv", BTC_PERP);
    s
}

fn hedge(s: &Scenario, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out = run_hedge(s, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

/// `tailrisk hedge` among the scenario's candidates.csv with `extra` flags.
fn run_hedge(s: &Scenario, extra: &[&str]) -> std::process::Output {
    let candidates = s.path("candidates.csv");
    let mut args = vec!["--instruments", candidates.to_str().unwrap()];
    args.extend_from_slice(extra);
    s.tailrisk("hedge", &args)
}

/// The quantity a hedge proposal trades of candidate `id` (0 when it does not trade it).
fn traded(doc: &serde_json::Value, id: &str) -> f64 {
    doc["trades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .map_or(0.0, |t| t["quantity"].as_f64().unwrap())
}

/// −ρ·σ_SOL·V_SOL/(σ_BTC·S_BTC) BTC: the minimum-variance hedge of 10,000 SOL.
fn minimum_variance_hedge() -> f64 {
    -0.7 * 0.90 * 10_000.0 * 140.0 / (0.55 * 92_000.0)
}

#[test]
fn cross_hedge_is_near_minimum_variance_and_whatif_reproduces_it() {
    let s = scenario(SOL_BOOK);
    let out = s.path("out");
    let doc = hedge(&s, &["--out", out.to_str().unwrap()]);
    let trades = doc["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 1);
    let q = trades[0]["quantity"].as_f64().unwrap();
    let lots = q / 0.01;
    assert!(
        (lots - lots.round()).abs() < 1e-6,
        "{q} is not a multiple of the lot"
    );
    // One-day lognormal moves are nearly Gaussian, but the ES curve is flat near its minimum:
    // the skew of long SOL and the 5 USD cost per unit pull the ES hedge ~6 % short of the
    // minimum-variance one (tests/hedge_solver.rs checks the Gaussian case exactly; the
    // brute-force test below checks this optimum on its own paths).
    let mv = minimum_variance_hedge();
    assert!(
        q / mv > 0.85 && q / mv < 1.0,
        "hedge {q} vs minimum variance {mv}"
    );
    for key in ["before", "after", "in_sample", "marginal_es", "change"] {
        assert!(!doc[key].is_null(), "JSON lacks {key}");
    }
    // whatif on the trades file, on the fresh paths, shows after − cost.
    let check_seed = doc["check_seed"].as_u64().unwrap().to_string();
    let trades_file = out.join("trades.csv");
    let w = s.tailrisk(
        "whatif",
        &[
            "--trades",
            trades_file.to_str().unwrap(),
            "--seed",
            &check_seed,
            "--format",
            "json",
        ],
    );
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let w = json(&w);
    let whatif_es = w["after"]["measures"][0]["es"].as_f64().unwrap();
    let cost = doc["cost"].as_f64().unwrap();
    let after = doc["after"]["es"].as_f64().unwrap();
    assert!(
        (whatif_es + cost - after).abs() < 1e-6 * after,
        "whatif {whatif_es} + cost {cost} vs hedge {after}"
    );
    // The marginal ES of the traded perpetual is its cost per unit at the optimum, within
    // its standard error.
    let m = &doc["marginal_es"][0];
    let (marginal, se) = (
        m["marginal_es"].as_f64().unwrap(),
        m["stderr"].as_f64().unwrap(),
    );
    assert!(
        (marginal.abs() - 5.0).abs() < 4.0 * se + 1.0,
        "marginal {marginal} ± {se}"
    );
}

#[test]
fn in_sample_optimum_beats_a_brute_force_search_on_the_same_paths() {
    let s = scenario(SOL_BOOK);
    let doc = hedge(&s, &[]);
    let optimal = doc["in_sample"]["es_optimal"].as_f64().unwrap();
    let q = doc["trades"][0]["unrounded_quantity"].as_f64().unwrap();
    // ES of book + x BTC perpetuals on the optimisation paths (seed 5), by whatif, plus cost.
    let es_at = |x: f64| {
        s.write(
            "probe.csv",
            &format!("id,kind,underlying,quantity\nprobe,perpetual,BTC,{x}\n"),
        );
        let probe = s.path("probe.csv");
        let w = s.tailrisk(
            "whatif",
            &["--trades", probe.to_str().unwrap(), "--format", "json"],
        );
        json(&w)["after"]["measures"][0]["es"].as_f64().unwrap() + 5.0 * x.abs()
    };
    for step in [-0.05, -0.01, -0.002, 0.002, 0.01, 0.05] {
        let x = q * (1.0 + step);
        assert!(
            optimal <= es_at(x) + 1e-6 * optimal,
            "ES at {x} beats the optimum {optimal}"
        );
    }
    assert!((es_at(q) - optimal).abs() < 1e-6 * optimal);
}

#[test]
fn a_book_already_hedged_gets_no_trades() {
    let s = scenario(SOL_BOOK);
    let q = hedge(&s, &[])["trades"][0]["quantity"].as_f64().unwrap();
    let hedged = scenario(&format!("{SOL_BOOK}btc,perpetual,BTC,{q}\n"));
    let doc = hedge(&hedged, &[]);
    assert_eq!(doc["trades"].as_array().unwrap().len(), 0, "{doc}");
}

#[test]
fn target_mode_reaches_its_target_on_fresh_paths_within_the_error() {
    let s = scenario(SOL_BOOK);
    let least = hedge(&s, &[]);
    let before = least["before"]["es"].as_f64().unwrap();
    let best = least["after"]["es"].as_f64().unwrap();
    let target = 0.5 * (before + best);
    let doc = hedge(&s, &["--target-es", &target.to_string()]);
    let after = doc["after"]["es"].as_f64().unwrap();
    let se = doc["after"]["es_stderr"].as_f64().unwrap();
    assert!(
        (after - target).abs() < 4.0 * se,
        "after {after} ± {se} vs target {target}"
    );
    let in_sample = doc["in_sample"]["es_optimal"].as_f64().unwrap();
    assert!(
        (in_sample - target).abs() < 1e-4 * target,
        "in sample {in_sample} vs {target}"
    );
    let cheaper = doc["cost"].as_f64().unwrap();
    assert!(cheaper < least["cost"].as_f64().unwrap());
}

#[test]
fn bounds_budget_and_lots_hold() {
    let s = scenario(SOL_BOOK);
    s.write(
        "candidates.csv",
        "id,kind,underlying,cost,min_quantity,max_quantity,lot,option_type,strike,expiry\n\
         btc-perp,perpetual,BTC,5,-3,1000,0.01,,,\n\
         sol-put,option,SOL,2,0,50000,10,put,120,2026-12-25\n",
    );
    let free = hedge(&s, &[]);
    let btc = traded(&free, "btc-perp");
    assert!((-3.0..=1000.0).contains(&btc), "{btc}");
    let puts = traded(&free, "sol-put");
    assert!(
        puts > 0.0 && (puts / 10.0 - (puts / 10.0).round()).abs() < 1e-9,
        "{puts}"
    );
    let budget = 20_000.0;
    let doc = hedge(&s, &["--budget", "20000"]);
    let spend = doc["spend"].as_f64().unwrap();
    assert!(spend <= budget + 1e-6, "spend {spend}");
    assert!(spend > 0.95 * budget, "a binding budget is spent: {spend}");
    // With fewer puts the short BTC cross-hedge wants more than 3: the bound holds it.
    assert_eq!(traded(&doc, "btc-perp"), -3.0, "{doc}");
    let capped = traded(&doc, "sol-put");
    assert!(
        capped > 0.0 && capped < puts,
        "{capped} puts within the budget, {puts} without"
    );
    assert!(
        doc["after"]["es"].as_f64().unwrap() > free["after"]["es"].as_f64().unwrap(),
        "the budget costs ES"
    );
    // A zero budget leaves only the trade that spends nothing: none.
    let none = hedge(&s, &["--budget", "0"]);
    assert_eq!(none["trades"].as_array().unwrap().len(), 0, "{none}");
}

/// A budget too small for the put, which costs 2 USD a unit plus premium and moves the ES
/// far less per dollar than the perpetual at 5 USD a BTC: the whole budget goes to the
/// short perpetual, B/5 BTC. The interior point used to stop here with "did not converge"
/// for budgets of 10 and 14 USD (its iterates borrowed budget from a put a hair below its
/// lower bound).
#[test]
fn a_small_binding_budget_goes_to_the_perpetual() {
    let s = scenario(SOL_BOOK);
    s.write(
        "candidates.csv",
        "id,kind,underlying,cost,min_quantity,max_quantity,lot,option_type,strike,expiry\n\
         btc-perp,perpetual,BTC,5,-3,1000,0.01,,,\n\
         sol-put,option,SOL,2,0,50000,10,put,120,2026-12-25\n",
    );
    for budget in [2.0, 5.0, 10.0, 14.0] {
        let doc = hedge(&s, &["--budget", &budget.to_string()]);
        let trades = doc["trades"].as_array().unwrap();
        assert_eq!(trades.len(), 1, "budget {budget}: {doc}");
        assert_eq!(trades[0]["id"], "btc-perp");
        let q = trades[0]["unrounded_quantity"].as_f64().unwrap();
        assert!(
            (q + budget / 5.0).abs() < 1e-6,
            "budget {budget}: {q} BTC, not {}",
            -budget / 5.0
        );
    }
}

/// Budgets and bounds that used to stall the interior point or were misjudged: a forced
/// purchase of puts under a budget that pays for it; a short-only future under budgets
/// from half a contract's fee up (all spent on it, B/5 contracts); a budget of zero with
/// calls sold for premium (the premium funds the rest); a forced short the budget cannot
/// pay for (infeasible, exit 2).
#[test]
fn hostile_budgets_and_bounds_are_solved_or_refused() {
    let s = scenario(SOL_BOOK);
    let header = "id,kind,underlying,cost,min_quantity,max_quantity,lot,multiplier,option_type,strike,expiry\n";
    let put = "sol-put,option,SOL,2,0,50000,10,,put,120,2026-12-25\n";
    s.write(
        "candidates.csv",
        &format!("{header}btc-perp,perpetual,BTC,5,-3,1000,0.01,,,,\nsol-put,option,SOL,2,100,50000,10,,put,120,2026-12-25\n"),
    );
    let doc = hedge(&s, &["--budget", "1000"]);
    assert!(doc["spend"].as_f64().unwrap() <= 1000.005, "{doc}");
    assert!(traded(&doc, "sol-put") >= 100.0, "{doc}");

    s.write(
        "candidates.csv",
        &format!("{header}btc-fut,future,BTC,5,-1000,0,,5,,,2026-12-25\n{put}"),
    );
    for budget in [0.5, 5.0, 14.0] {
        let doc = hedge(&s, &["--budget", &budget.to_string()]);
        let contracts = doc["trades"][0]["quantity"].as_f64().unwrap();
        assert!(
            (contracts + budget / 5.0).abs() < 1e-5,
            "budget {budget}: {contracts} contracts"
        );
    }

    s.write(
        "candidates.csv",
        &format!(
            "{header}btc-perp,perpetual,BTC,5,-3,1000,0.01,,,,\n{put}\
             sol-call,option,SOL,0.5,-20000,0,10,,call,160,2026-12-25\n"
        ),
    );
    let doc = hedge(&s, &["--budget", "0"]);
    assert!(doc["spend"].as_f64().unwrap() <= 0.005, "{doc}");
    assert!(traded(&doc, "sol-call") < 0.0, "calls sold: {doc}");
    assert!(
        traded(&doc, "sol-put") > 0.0,
        "puts bought with the premium: {doc}"
    );

    s.write(
        "candidates.csv",
        &format!("{header}btc-perp,perpetual,BTC,5,-1000,-10,0.01,,,,\n"),
    );
    let out = run_hedge(&s, &["--budget", "10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("admit no trades"), "{err}");
}

/// A coarse lot (a CME-style future of 5 BTC a contract, the cheapest to trade) beside a fine
/// one (the perpetual, 0.01 BTC): rounding the future to the nearest contract alone leaves
/// up to 2.5 BTC of the cross-hedge undone; settling the future's lot first and re-solving
/// lets the perpetual take up the rest. The proposal must beat nearest rounding on the
/// optimisation paths (priced by `whatif`) and lose little to the unrounded optimum.
#[test]
fn a_coarse_lot_is_settled_and_the_fine_candidates_make_up_the_rest() {
    let s = scenario(SOL_BOOK);
    s.write(
        "candidates.csv",
        "id,kind,underlying,cost,lot,multiplier,expiry\n\
         btc-fut,future,BTC,5,1,5,2026-12-25\n\
         btc-perp,perpetual,BTC,5,0.01,,\n",
    );
    let doc = hedge(&s, &[]);
    let contracts = traded(&doc, "btc-fut");
    assert!(traded(&doc, "btc-perp") != 0.0, "{doc}");
    // ES on the optimisation paths (seed 5) of whole contracts alone around the proposal,
    // costs included, by whatif: nearest rounding of the optimum is one of them.
    let futures_alone = |k: f64| {
        s.write(
            "nearest.csv",
            &format!(
                "id,kind,underlying,quantity,multiplier,expiry\n\
                 n,future,BTC,{k},5,2026-12-25\n"
            ),
        );
        let trades = s.path("nearest.csv");
        let w = s.tailrisk(
            "whatif",
            &["--trades", trades.to_str().unwrap(), "--format", "json"],
        );
        assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
        json(&w)["after"]["measures"][0]["es"].as_f64().unwrap() + 5.0 * k.abs()
    };
    let nearest_es = [contracts - 1.0, contracts, contracts + 1.0]
        .into_iter()
        .map(futures_alone)
        .fold(f64::INFINITY, f64::min);
    let optimal = doc["in_sample"]["es_optimal"].as_f64().unwrap();
    let settled = doc["in_sample"]["es_after"].as_f64().unwrap();
    println!(
        "optimal {optimal} settled {settled} whole contracts alone {nearest_es} ({contracts})"
    );
    assert!(
        settled - optimal < 0.1 * (nearest_es - optimal),
        "settling loses {} to the optimum, whole contracts alone {}",
        settled - optimal,
        nearest_es - optimal
    );
}

/// A short BTC straddle (two-sided tail) with the same call and put as candidates: buying
/// both back to zero is the unique least-ES hedge (any residual option position has a loss
/// tail, and costs more), so the proposal is exactly +10 calls and +10 puts, and the ES after,
/// in sample and on fresh paths, is exactly the 20 USD of costs. Checked on a one-day normal
/// model with the options expiring an hour after the horizon, and on ten daily steps of
/// Student-t shocks with vol of vol where they expire inside the horizon.
#[test]
fn a_short_straddle_is_bought_back_exactly_on_hard_books() {
    let one_day = (RUN, MODEL, "2026-11-21T09:00:00Z");
    let ten_steps = (
        "[run]\npaths = 20000\nseed = 3\nhorizon_days = 10\nsteps = 10\nconfidence = [0.975]\n",
        "[model]\ndistribution = \"student-t\"\ndof = 4\n\n[model.factors.BTC]\nspot_vol = 0.55\nvol_of_vol = 1.0\n",
        "2026-11-27T08:00:00Z",
    );
    for (run, model, expiry) in [one_day, ten_steps] {
        let book = format!(
            "id,kind,underlying,quantity,option_type,strike,expiry\n\
             c,option,BTC,-10,call,92000,{expiry}\n\
             p,option,BTC,-10,put,92000,{expiry}\n"
        );
        let s = Scenario::new(run, model, MARKET, "positions.csv", &book);
        s.write(
            "candidates.csv",
            &format!(
                "id,kind,underlying,cost,min_quantity,max_quantity,lot,option_type,strike,expiry\n\
                 buy-c,option,BTC,1,-50,50,0.1,call,92000,{expiry}\n\
                 buy-p,option,BTC,1,-50,50,0.1,put,92000,{expiry}\n"
            ),
        );
        let doc = hedge(&s, &[]);
        let trades = doc["trades"].as_array().unwrap();
        assert_eq!(trades.len(), 2, "{expiry}: {doc}");
        for t in trades {
            let q = t["unrounded_quantity"].as_f64().unwrap();
            assert!((q - 10.0).abs() < 1e-6, "{expiry}: {t}");
        }
        let before = doc["before"]["es"].as_f64().unwrap();
        assert!(
            before > 1_000.0,
            "{expiry}: the straddle has risk: {before}"
        );
        for es in [&doc["in_sample"]["es_after"], &doc["after"]["es"]] {
            let es = es.as_f64().unwrap();
            assert!(
                (es - 20.0).abs() < 1e-6 * before,
                "{expiry}: ES {es}, not the costs"
            );
        }
    }
}

/// Too few tail paths to fit a hedge to is a usage error naming the paths needed, and a
/// target the book already meets says so.
#[test]
fn too_few_paths_are_refused_and_a_met_target_says_so() {
    let s = scenario(SOL_BOOK);
    let out = run_hedge(&s, &["--paths", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--paths 800"), "{err}");
    let out = run_hedge(&s, &["--target-es", "1e9"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no trades: the book's ES is already at or below the target"),
        "{text}"
    );
}

#[test]
fn bad_candidates_are_refused_with_row_and_field() {
    let s = scenario(SOL_BOOK);
    for (rows, field) in [
        (
            "id,kind,underlying,min_quantity,max_quantity\nx,perpetual,BTC,5,1\n",
            "min_quantity",
        ),
        ("id,kind,underlying\nx,perpetual,DOGE\n", "underlying"),
        ("id,kind,underlying,lot\nx,perpetual,BTC,0\n", "lot"),
        (
            "id,kind,underlying,min_quantity,max_quantity,lot\nx,perpetual,BTC,0.3,0.7,1\n",
            "lot",
        ),
        ("id,kind,underlying,bid,ask\nx,perpetual,BTC,10,5\n", "bid"),
        ("id,kind,underlying\nsol,perpetual,BTC\n", "id"),
        ("id,kind,underlying\nx,cash,BTC\n", "kind"),
    ] {
        s.write("candidates.csv", rows);
        let out = run_hedge(&s, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{rows}: {err}");
        assert!(
            err.contains(field) && err.contains("row 1"),
            "{rows}: {err}"
        );
    }
    s.write("candidates.csv", BTC_PERP);
    let out = run_hedge(&s, &["--neutralize", "delta"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no perpetual on SOL"), "{err}");
}

#[test]
fn the_committee_report_shows_the_same_proposed_hedge() {
    let s = scenario(SOL_BOOK);
    let q = hedge(&s, &[])["trades"][0]["quantity"].as_f64().unwrap();
    let candidates = s.path("candidates.csv");
    let page = s.path("report.html");
    let out = s.tailrisk(
        "report",
        &[
            "--out",
            page.to_str().unwrap(),
            "--hedge-instruments",
            candidates.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(page).unwrap();
    let section = &html[html.find("<h2>Proposed hedge</h2>").expect("hedge section")..];
    assert!(section.contains("btc-perp"), "{section}");
    assert!(
        section.contains(&format!("{q:.4}")),
        "quantity {q} missing: {section}"
    );
}

#[test]
fn neutralising_refuses_a_budget_and_quantities_outside_the_bounds() {
    let s = scenario(SOL_BOOK);
    s.write(
        "candidates.csv",
        "id,kind,underlying,min_quantity,max_quantity\nsol-perp,perpetual,SOL,-100,100\n",
    );
    let out = run_hedge(&s, &["--neutralize", "delta"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("outside its bounds"), "{err}");
    let out = run_hedge(&s, &["--neutralize", "delta", "--budget", "10"]);
    assert_eq!(out.status.code(), Some(2));
    s.write(
        "candidates.csv",
        "id,kind,underlying\nsol-perp,perpetual,SOL\n",
    );
    let doc = hedge(&s, &["--neutralize", "delta"]);
    assert_eq!(
        doc["trades"][0]["quantity"].as_f64().unwrap(),
        -10_000.0,
        "{doc}"
    );
}
