//! Scale: sharded runs merged back into exactly the single-machine result, and importance
//! sampling (grid revaluation against full is in `grid_exact.rs`).

mod common;

use common::{json, sample, shards, tailrisk};

#[test]
fn merged_shards_equal_the_single_run_to_the_last_bit() {
    for (scenario, paths) in [("fund.toml", "30000"), ("fund_10d.toml", "10000")] {
        let scenario = sample(scenario);
        let single = tailrisk(&[
            "run",
            scenario.to_str().unwrap(),
            "--format",
            "json",
            "--paths",
            paths,
        ]);
        for count in [1, 3, 7] {
            let dir = tempfile::tempdir().unwrap();
            let files = shards(&scenario, count, paths, dir.path(), &[]);
            let mut args = vec!["merge", "--format", "json"];
            args.extend(files.iter().map(String::as_str));
            let merged = tailrisk(&args);
            assert!(
                merged.status.success(),
                "{}",
                String::from_utf8_lossy(&merged.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&merged.stdout),
                String::from_utf8_lossy(&single.stdout),
                "{} in {count} shards",
                scenario.display()
            );
        }
    }
}

#[test]
fn merge_refuses_incomplete_or_mixed_shards() {
    let scenario = sample("fund.toml");
    let dir = tempfile::tempdir().unwrap();
    let files = shards(&scenario, 3, "20000", dir.path(), &[]);
    let missing = tailrisk(&["merge", &files[0], &files[2]]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("shard"));
    let other = tempfile::tempdir().unwrap();
    let other_files = shards(&scenario, 3, "30000", other.path(), &[]);
    let mixed = tailrisk(&["merge", &files[0], &files[1], &other_files[2]]);
    assert_eq!(mixed.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("different run"));
    let bad = tailrisk(&[
        "run",
        scenario.to_str().unwrap(),
        "--shard",
        "3/3",
        "--out",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// A 10-BTC spot book under `model`: the importance-sampled run with `paths` paths and a
/// plain run with 200,000.
fn weighted_and_plain(
    run: &str,
    model: &str,
    paths: &str,
) -> (serde_json::Value, serde_json::Value) {
    let book = "id,kind,underlying,quantity\nb,spot,BTC,10\n";
    let scenario = common::Scenario::new(run, model, common::MARKET, "positions.csv", book);
    let weighted = [
        "--format",
        "json",
        "--paths",
        paths,
        "--importance-sampling",
    ];
    let is = json(&scenario.tailrisk("run", &weighted));
    let plain = json(&scenario.tailrisk("run", &["--format", "json", "--paths", "200000"]));
    (is, plain)
}

/// A normal one-factor spot book: loss = q·S₀·(1 − e^{s·Z}), s = σ√(h/365). Closed forms:
/// VaR_a = q·S₀·(1 − e^{s·z}) with z = Φ⁻¹(1 − a); ES_a = q·S₀·(1 − e^{s²/2}·Φ(z − s)/(1 − a)).
#[test]
fn importance_sampling_matches_the_closed_form_with_far_fewer_paths() {
    use statrs::distribution::{ContinuousCDF, Normal};
    let model = "[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\nspot_vol = 0.6\n";
    let run = "[run]\nseed = 5\nconfidence = [0.99, 0.999]\n";
    let (is, plain) = weighted_and_plain(run, model, "20000");
    let normal = Normal::new(0.0, 1.0).unwrap();
    let (q_s0, s) = (10.0 * 92_000.0, 0.6 * (1.0f64 / 365.0).sqrt());
    for a in [0.99, 0.999] {
        let z = normal.inverse_cdf(1.0 - a);
        let exact_var = q_s0 * (1.0 - (s * z).exp());
        let exact_es = q_s0 * (1.0 - (s * s / 2.0).exp() * normal.cdf(z - s) / (1.0 - a));
        let (var, es, var_se, es_se) = common::measure(&is, a);
        assert!(
            (var - exact_var).abs() < 4.0 * var_se,
            "IS VaR {var} vs {exact_var} ± {var_se}"
        );
        assert!(
            (es - exact_es).abs() < 4.0 * es_se,
            "IS ES {es} vs {exact_es} ± {es_se}"
        );
        // a tenth of the paths, a smaller error than plain Monte Carlo
        let (_, _, plain_var_se, plain_es_se) = common::measure(&plain, a);
        assert!(
            var_se < plain_var_se && es_se < plain_es_se,
            "{a}: IS {var_se}/{es_se} vs plain {plain_var_se}/{plain_es_se}"
        );
    }
    let sampling = &is["importance_sampling"];
    assert_eq!(sampling["used"], true);
    assert_eq!(sampling["components"].as_array().unwrap().len(), 1);
    assert!(sampling["components"][0]["shift_norm"].as_f64().unwrap() > 2.0);
}

/// The same book under Student-t (4 dof) shocks: VaR at the t quantile, ES by quadrature of
/// the loss over the tail probabilities; importance sampling with half the paths.
#[test]
fn importance_sampling_under_student_t_matches_quantile_and_quadrature() {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let model =
        "[model]\ndistribution = \"student-t\"\ndof = 4\n\n[model.factors.BTC]\nspot_vol = 0.6\n";
    let run = "[run]\nseed = 9\nconfidence = [0.99, 0.999]\n";
    let (is, plain) = weighted_and_plain(run, model, "100000");
    let t = StudentsT::new(0.0, 1.0, 4.0).unwrap();
    let quantile = |p: f64| (0.5f64).sqrt() * t.inverse_cdf(p);
    let (q_s0, s) = (10.0 * 92_000.0, 0.6 * (1.0f64 / 365.0).sqrt());
    let loss = |e: f64| q_s0 * (1.0 - (s * e).exp());
    for a in [0.99, 0.999] {
        let exact_var = loss(quantile(1.0 - a));
        let nodes = 20_000;
        let width = (1.0 - a) / nodes as f64;
        let exact_es = (0..nodes)
            .map(|i| loss(quantile((i as f64 + 0.5) * width)))
            .sum::<f64>()
            / nodes as f64;
        let (var, es, var_se, es_se) = common::measure(&is, a);
        assert!(
            (var - exact_var).abs() < 4.0 * var_se,
            "IS VaR {var} vs {exact_var} ± {var_se}"
        );
        assert!(
            (es - exact_es).abs() < 4.0 * es_se,
            "IS ES {es} vs {exact_es} ± {es_se}"
        );
        if a < 0.999 {
            continue;
        }
        // at 99.9 %, half the paths reach a smaller error than plain Monte Carlo (the variance
        // per path is about a third: the shared chi-square draw limits what a shift can do)
        let (_, _, plain_var_se, plain_es_se) = common::measure(&plain, a);
        assert!(
            es_se < plain_es_se && var_se < 1.5 * plain_var_se,
            "{a}: IS {var_se}/{es_se} vs plain {plain_var_se}/{plain_es_se}"
        );
    }
}
