//! Contributions and what-if runs against closed forms and exact identities: Euler
//! components of a Gaussian linear book, their additivity, a tiny trade against the
//! marginal VaR, a zero-size trade against nothing at all.
//!
//! Bit equality is asserted only where it is a design guarantee (thread counts, zero-size
//! trades, the same P&L under another grouping); figures reached along different summation
//! orders are compared to rounding (relative 1e-12).

mod common;

use common::{json, sample, tailrisk, Scenario, POSITIONS};
use faer::Mat;
use statrs::distribution::{ContinuousCDF, Normal};
use tailrisk::input::scenario::Distribution;
use tailrisk::mc::shocks::{block_rng, ShockGenerator, BLOCK_PATHS};
use tailrisk::model::correlation::cholesky_lower;
use tailrisk::risk::contributions::{contributions, Entity, EntityLosses, TailPlan};

const TOLERANCE_IN_STDERRS: f64 = 4.0;

fn assert_close(what: &str, estimate: f64, exact: f64, stderr: f64) {
    assert!(
        (estimate - exact).abs() <= TOLERANCE_IN_STDERRS * stderr,
        "{what}: estimate {estimate} vs exact {exact}, s.e. {stderr}"
    );
}

/// Three positions whose losses are −x_i·e_i with e correlated N(0, C).
struct GaussianBook {
    generator: ShockGenerator,
    blocks: u64,
    seed: u64,
}

const C: [[f64; 3]; 3] = [[1.0, 0.6, -0.2], [0.6, 1.0, 0.3], [-0.2, 0.3, 1.0]];
const SIZES: [f64; 3] = [3.0, -1.5, 2.0];

impl GaussianBook {
    fn new(blocks: u64, seed: u64) -> Self {
        let c = Mat::from_fn(3, 3, |i, j| C[i][j]);
        let l = cholesky_lower(c.as_ref()).unwrap();
        GaussianBook {
            generator: ShockGenerator::new(l.as_ref(), Distribution::Normal).unwrap(),
            blocks,
            seed,
        }
    }

    fn pnl(&self) -> Vec<f64> {
        let mut pnl = Vec::new();
        for b in 0..self.blocks {
            self.visit_block(b, &|_| true, &mut |_, l| {
                pnl.push(-l.iter().zip(SIZES).map(|(x, s)| x * s).sum::<f64>())
            });
        }
        pnl
    }
}

impl EntityLosses for GaussianBook {
    fn entity_count(&self) -> usize {
        3
    }

    fn visit_block(
        &self,
        block: u64,
        wanted: &dyn Fn(u64) -> bool,
        visit: &mut dyn FnMut(u64, &[f64]),
    ) {
        let mut normals = vec![0.0; BLOCK_PATHS * 3];
        let mut shocks = vec![0.0; BLOCK_PATHS * 3];
        self.generator
            .fill(&mut block_rng(self.seed, block), &mut normals, &mut shocks);
        for (i, e) in shocks.chunks_exact(3).enumerate() {
            let path = block * BLOCK_PATHS as u64 + i as u64;
            if wanted(path) {
                visit(path, &[-e[0], -e[1], -e[2]]);
            }
        }
    }
}

fn portfolio_sigma(sizes: &[f64; 3]) -> f64 {
    (0..3)
        .flat_map(|i| (0..3).map(move |j| sizes[i] * C[i][j] * sizes[j]))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn gaussian_linear_book_matches_closed_form_euler_allocation() {
    let book = GaussianBook::new(100, 5);
    let pnl = book.pnl();
    let entities: Vec<Entity> = (0..3)
        .map(|i| Entity::position(format!("x{i}"), SIZES[i], i))
        .collect();
    let normal = Normal::new(0.0, 1.0).unwrap();
    for a in [0.95, 0.99] {
        let plan = TailPlan::new(&pnl, a);
        let (rows, additivity) = contributions(&pnl, &plan, &entities, &book);
        let z = normal.inverse_cdf(a);
        let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let es_factor = phi / (1.0 - a);
        let sigma = portfolio_sigma(&SIZES);
        for (i, r) in rows.iter().enumerate() {
            let cov: f64 = (0..3).map(|j| C[i][j] * SIZES[j]).sum();
            let marginal = cov / sigma;
            assert_close(
                "marginal VaR",
                r.marginal_var,
                marginal * z,
                r.marginal_var_stderr,
            );
            assert_close(
                "marginal ES",
                r.marginal_es,
                marginal * es_factor,
                r.marginal_es_stderr,
            );
            assert_close(
                "component VaR",
                r.component_var,
                SIZES[i] * marginal * z,
                r.component_var_stderr,
            );
            assert_close(
                "component ES",
                r.component_es,
                SIZES[i] * marginal * es_factor,
                r.component_es_stderr,
            );
            let mut without = SIZES;
            without[i] = 0.0;
            let drop = sigma - portfolio_sigma(&without);
            assert_close(
                "incremental VaR",
                r.incremental_var,
                drop * z,
                r.incremental_var_stderr,
            );
            assert_close(
                "incremental ES",
                r.incremental_es,
                drop * es_factor,
                r.incremental_es_stderr,
            );
            // the errors are small enough for the comparison to mean something
            assert!(r.component_es_stderr < 0.05 * r.component_es.abs(), "{r:?}");
        }
        assert!(
            additivity.es_error.abs() < 1e-9 * additivity.es,
            "{additivity:?}"
        );
        let var_stderr = plan.measure.var_stderr;
        assert!(
            additivity.var_error.abs() < var_stderr,
            "{additivity:?} vs s.e. {var_stderr}"
        );
    }
}

fn run_contributions(group: &str, threads: &str) -> serde_json::Value {
    let fund = sample("fund.toml");
    json(&tailrisk(&[
        "run",
        fund.to_str().unwrap(),
        "--format",
        "json",
        "--paths",
        "40000",
        "--threads",
        threads,
        "--contributions",
        group,
    ]))
}

#[test]
fn contributions_json_has_the_spec_keys_and_adds_up_by_every_group() {
    let mut es_by_group = Vec::new();
    for group in ["position", "underlying", "venue", "counterparty", "book"] {
        let doc = run_contributions(group, "2");
        let rows = doc["contributions"].as_array().unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            assert_eq!(row["group"], group);
            assert_eq!(
                row["confidence"], 0.99,
                "default level: the highest configured"
            );
            for key in [
                "component_var",
                "component_es",
                "marginal_var",
                "marginal_es",
                "incremental_var",
                "incremental_es",
            ] {
                assert!(row[key].as_f64().unwrap().is_finite(), "{key}");
                assert!(
                    row[format!("{key}_stderr")].as_f64().unwrap() >= 0.0,
                    "{key}_stderr"
                );
            }
        }
        let total = doc["contribution_additivity"]["es"].as_f64().unwrap();
        let sum: f64 = rows
            .iter()
            .map(|r| r["component_es"].as_f64().unwrap())
            .sum();
        assert!((sum - total).abs() < 1e-6 * total);
        es_by_group.push(total);
    }
    assert!(
        es_by_group.windows(2).all(|w| w[0] == w[1]),
        "same paths, same ES"
    );
}

#[test]
fn contributions_are_bit_identical_across_thread_counts() {
    assert_eq!(
        run_contributions("position", "1"),
        run_contributions("position", "2")
    );
}

#[test]
fn contribution_level_flag_is_honoured_and_checked() {
    let fund = sample("fund.toml");
    let doc = json(&tailrisk(&[
        "run",
        fund.to_str().unwrap(),
        "--format",
        "json",
        "--paths",
        "20000",
        "--contributions",
        "book",
        "--contribution-level",
        "0.975",
    ]));
    assert_eq!(doc["contributions"][0]["confidence"], 0.975);
    let bad = tailrisk(&[
        "run",
        fund.to_str().unwrap(),
        "--contributions",
        "book",
        "--contribution-level",
        "99",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

fn what_if(scenario: &Scenario, extra: &[&str]) -> serde_json::Value {
    json(&scenario.tailrisk(
        "whatif",
        &[&["--format", "json", "--paths", "100000"], extra].concat(),
    ))
}

/// The contributions row of position `key` in a 100,000-path run of `scenario`.
fn position_contribution(scenario: &Scenario, key: &str) -> serde_json::Value {
    let args = [
        "--format",
        "json",
        "--paths",
        "100000",
        "--contributions",
        "position",
    ];
    let run = json(&scenario.tailrisk("run", &args));
    let rows = run["contributions"].as_array().unwrap();
    rows.iter().find(|r| r["key"] == key).unwrap().clone()
}

#[test]
fn zero_size_trade_changes_nothing_exactly() {
    let scenario = Scenario::with_positions(POSITIONS);
    scenario.write(
        "trades.csv",
        "id,kind,underlying,quantity,option_type,strike,expiry\nz1,option,BTC,0,put,70000,2027-03-26\nz2,spot,SOL,0,,,\n",
    );
    let doc = what_if(
        &scenario,
        &["--trades", scenario.path("trades.csv").to_str().unwrap()],
    );
    assert_eq!(doc["before"]["measures"], doc["after"]["measures"]);
    for c in doc["change"].as_array().unwrap() {
        for key in ["var", "es", "var_stderr", "es_stderr"] {
            assert_eq!(c[key], 0.0, "{key}: {c}");
        }
    }
}

#[test]
fn tiny_trade_changes_var_by_marginal_var_times_size() {
    let scenario = Scenario::with_positions(POSITIONS);
    let size = 0.01;
    scenario.write(
        "trades.csv",
        &format!("id,kind,underlying,quantity,venue\ntiny,spot,BTC,{size},coinbase\n"),
    );
    let whatif = what_if(
        &scenario,
        &["--trades", scenario.path("trades.csv").to_str().unwrap()],
    );
    // position `a` is BTC spot: its marginal is per coin, like the trade's
    let a = &position_contribution(&scenario, "a");
    let change = whatif["change"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["confidence"] == 0.99)
        .unwrap();
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert_close(
        "VaR change per coin",
        f(change, "var") / size,
        f(a, "marginal_var"),
        f(a, "marginal_var_stderr").hypot(f(change, "var_stderr") / size),
    );
    assert_close(
        "ES change per coin",
        f(change, "es") / size,
        f(a, "marginal_es"),
        f(a, "marginal_es_stderr").hypot(f(change, "es_stderr") / size),
    );
    // common random numbers: the change is known far better than either VaR
    let after = &whatif["after"]["measures"][2];
    assert!(
        f(change, "es_stderr") < 0.05 * f(after, "es_stderr"),
        "{change} vs {after}"
    );
}

#[test]
fn removing_a_position_matches_its_incremental_var() {
    let scenario = Scenario::with_positions(POSITIONS);
    let whatif = what_if(&scenario, &["--remove", "d"]);
    let d = &position_contribution(&scenario, "d");
    let change = &whatif["change"][2];
    assert_eq!(change["confidence"], 0.99);
    // Same paths, same estimator, but the what-if re-simulates the book without `d` (netted
    // and summed in another order) while the incremental figure adds −d's loss to the book's
    // P&L path by path: the two agree to rounding, not to the bit. Rounding of the path P&L
    // is relative to the book's figures, so the tolerance is too.
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    let before = &whatif["before"]["measures"][2];
    for (key, incremental) in [("var", "incremental_var"), ("es", "incremental_es")] {
        let (removal, figure) = (-f(change, key), f(d, incremental));
        let scale = f(before, key).abs();
        assert!(
            (removal - figure).abs() <= 1e-12 * scale,
            "{key}: what-if removal {removal} vs incremental {figure} (book {scale})"
        );
    }
}

#[test]
fn what_if_refuses_bad_edits_naming_the_file() {
    let scenario = Scenario::with_positions(POSITIONS);
    let out = scenario.tailrisk("whatif", &["--remove", "a,nope"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'nope'"));
    scenario.write("trades.csv", "id,kind,underlying,quantity\na,spot,BTC,1\n");
    let out = scenario.tailrisk(
        "whatif",
        &["--trades", scenario.path("trades.csv").to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("trades.csv") && stderr.contains("row 1") && stderr.contains("field 'id'"),
        "{stderr}"
    );
    scenario.write("trades.csv", "id,kind,underlying,quantity\nt,spot,XRP,1\n");
    let out = scenario.tailrisk(
        "whatif",
        &["--trades", scenario.path("trades.csv").to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("trades.csv") && stderr.contains("field 'underlying'"),
        "{stderr}"
    );
    assert_eq!(
        scenario.tailrisk("whatif", &[]).status.code(),
        Some(2),
        "an edit is required"
    );
}
