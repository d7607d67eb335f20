//! The hedge linear program's interior point against brute-force searches over the same
//! scenarios.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tailrisk::hedge::solver::{solve, CandidateTerms, EsProgram, Goal, SolveFailure};
use tailrisk::risk::measures::var_es;

fn free(cost: f64) -> CandidateTerms {
    CandidateTerms {
        buy_cost: cost,
        sell_cost: cost,
        premium: 0.0,
        lower: f64::NEG_INFINITY,
        upper: f64::INFINITY,
    }
}

/// Book and two candidates: skewed P&L on n paths.
fn scenarios(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut book = Vec::with_capacity(n);
    let mut x = vec![0.0; 2 * n];
    for i in 0..n {
        let z1: f64 = StandardNormal.sample(&mut rng);
        let z2: f64 = StandardNormal.sample(&mut rng);
        let z3: f64 = StandardNormal.sample(&mut rng);
        let s1 = 100.0 * ((0.05 * z1).exp() - 1.0);
        let s2 = 50.0 * ((0.08 * (0.6 * z1 + 0.8 * z2)).exp() - 1.0);
        x[i] = s1;
        x[n + i] = s2;
        book.push(
            1000.0 * (0.5 * s1 + 0.7 * s2)
                + 300.0 * z3
                + 2000.0 * (0.1 * z1).max(0.0) * rng.random::<f64>(),
        );
    }
    (book, x)
}

fn es_of(book: &[f64], x: &[f64], q: &[f64], level: f64, cost: f64) -> f64 {
    let n = book.len();
    let pnl: Vec<f64> = (0..n)
        .map(|i| {
            book[i]
                + q.iter()
                    .enumerate()
                    .map(|(j, qj)| qj * x[j * n + i])
                    .sum::<f64>()
        })
        .collect();
    var_es(&pnl, &[level])[0].es + cost * q.iter().map(|v| v.abs()).sum::<f64>()
}

#[test]
fn two_candidates_match_a_grid_search() {
    let (book, x) = scenarios(4000, 7);
    let terms = [free(1.0), free(1.0)];
    let program = EsProgram {
        confidence: 0.975,
        book_pnl: &book,
        candidate_pnl: &x,
        terms: &terms,
        budget: None,
    };
    let opt = solve(&program, Goal::MinimizeEs).expect("solves");
    let lp_es = es_of(&book, &x, &opt.quantities, 0.975, 1.0);
    assert!(
        (lp_es - opt.es).abs() < 1e-6 * lp_es.abs(),
        "{lp_es} {}",
        opt.es
    );
    let mut best = f64::INFINITY;
    let (c1, c2) = (opt.quantities[0], opt.quantities[1]);
    for a in -40..=40 {
        for b in -40..=40 {
            let q = [c1 + a as f64 * 5.0, c2 + b as f64 * 5.0];
            best = best.min(es_of(&book, &x, &q, 0.975, 1.0));
        }
    }
    println!("{opt:?} grid best {best}");
    assert!(opt.es <= best + 1e-6 * best.abs());
}

#[test]
fn target_mode_reaches_its_target_cheapest() {
    let (book, x) = scenarios(4000, 9);
    let terms = [free(1.0), free(3.0)];
    let program = EsProgram {
        confidence: 0.975,
        book_pnl: &book,
        candidate_pnl: &x,
        terms: &terms,
        budget: None,
    };
    let least = solve(&program, Goal::MinimizeEs).unwrap();
    let before = es_of(&book, &x, &[0.0, 0.0], 0.975, 0.0);
    let target = 0.5 * (least.es + before);
    let opt = solve(&program, Goal::ReachEs(target)).unwrap();
    println!("least {least:?} before {before} target {target} opt {opt:?}");
    assert!(
        (opt.es - target).abs() < 1e-6 * target,
        "{} {}",
        opt.es,
        target
    );
    assert!(matches!(
        solve(&program, Goal::ReachEs(least.es * 0.9)),
        Err(SolveFailure::TargetOutOfReach { .. })
    ));
}

/// With jointly Gaussian P&L the minimum-ES hedge is the minimum-variance hedge
/// −ρ·σ_S·V/(σ_B·S); the LP's estimate on n paths scatters around it by the sampling error
/// of a tail regression, measured here over seeds.
#[test]
fn gaussian_cross_hedge_is_the_minimum_variance_hedge() {
    let (rho, sigma_s, sigma_b, value, spot) = (0.7, 0.047, 0.029, 1.4e6, 92_000.0);
    let expected = -rho * sigma_s * value / (sigma_b * spot);
    let n = 100_000;
    let estimates: Vec<f64> = (0..6)
        .map(|seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
            let mut book = Vec::with_capacity(n);
            let mut x = Vec::with_capacity(n);
            for _ in 0..n {
                let zb: f64 = StandardNormal.sample(&mut rng);
                let e: f64 = StandardNormal.sample(&mut rng);
                let zs = rho * zb + (1.0 - rho * rho).sqrt() * e;
                book.push(value * sigma_s * zs);
                x.push(spot * sigma_b * zb);
            }
            let terms = [free(0.0)];
            let program = EsProgram {
                confidence: 0.975,
                book_pnl: &book,
                candidate_pnl: &x,
                terms: &terms,
                budget: None,
            };
            solve(&program, Goal::MinimizeEs).unwrap().quantities[0]
        })
        .collect();
    let mean = estimates.iter().sum::<f64>() / 6.0;
    let sd = (estimates.iter().map(|q| (q - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    println!("{estimates:?} expected {expected}");
    assert!(
        (mean - expected).abs() < 4.0 * sd / 6f64.sqrt() + 1e-3 * expected.abs(),
        "{mean} ± {sd} vs {expected}"
    );
    assert!(sd < 0.02 * expected.abs(), "estimates scatter by {sd}");
}
