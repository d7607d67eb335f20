//! Simulated figures against independent references: closed forms for the shock
//! distribution, an exact quantile / quadrature for a book monotone in one spot, and the
//! multi-step model against its exact moments. Tolerances are 4 reported standard errors
//! (a false failure about 1 run in 15,000), and every test also checks the error is small
//! enough for the comparison to mean something.

mod common;

use std::path::Path;

use common::{json, measure, Scenario, MARKET};
use faer::Mat;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use tailrisk::book::instrument::OptionType;
use tailrisk::input::scenario::{Distribution, ScenarioFile};
use tailrisk::mc::paths::{HorizonMoves, PathBuilder};
use tailrisk::mc::shocks::{block_rng, ShockGenerator, BLOCK_PATHS};
use tailrisk::model::correlation::cholesky_lower;
use tailrisk::model::factors::FactorModel;
use tailrisk::pricing::black_scholes::bs_price;
use tailrisk::risk::measures::var_es;
use tailrisk::DAYS_PER_YEAR;

const LEVELS: [f64; 4] = [0.9, 0.95, 0.975, 0.99];
const TOLERANCE_IN_STDERRS: f64 = 4.0;

fn correlation() -> Mat<f64> {
    let c = [[1.0, 0.7, -0.3], [0.7, 1.0, 0.2], [-0.3, 0.2, 1.0]];
    Mat::from_fn(3, 3, |i, j| c[i][j])
}

/// `blocks` blocks of shocks from the generator, flattened path-major.
fn shocks(distribution: Distribution, blocks: u64, seed: u64) -> Vec<f64> {
    let cholesky = cholesky_lower(correlation().as_ref()).expect("positive definite");
    let generator = ShockGenerator::new(cholesky.as_ref(), distribution).expect("generator");
    let k = generator.dimension();
    let mut normals = vec![0.0; BLOCK_PATHS * k];
    let mut block = vec![0.0; BLOCK_PATHS * k];
    let mut all = Vec::with_capacity(blocks as usize * BLOCK_PATHS * k);
    for b in 0..blocks {
        generator.fill(&mut block_rng(seed, b), &mut normals, &mut block);
        all.extend_from_slice(&block);
    }
    all
}

/// P&L of a linear position w in the shocks, and its standard deviation √(wᵀCw).
fn linear_pnl(shocks: &[f64], w: &[f64]) -> (Vec<f64>, f64) {
    let pnl = shocks
        .chunks_exact(w.len())
        .map(|e| e.iter().zip(w).map(|(x, y)| x * y).sum())
        .collect();
    let c = correlation();
    let variance: f64 = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .map(|(i, j)| w[i] * c[(i, j)] * w[j])
        .sum();
    (pnl, variance.sqrt())
}

fn assert_close(what: &str, estimate: f64, exact: f64, stderr: f64) {
    assert!(
        (estimate - exact).abs() <= TOLERANCE_IN_STDERRS * stderr,
        "{what}: estimate {estimate} vs exact {exact}, s.e. {stderr}"
    );
}

const WEIGHTS: [f64; 3] = [1.0, -0.5, 2.0];

#[test]
fn gaussian_shocks_give_closed_form_var_and_es() {
    let (pnl, sigma) = linear_pnl(&shocks(Distribution::Normal, 200, 3), &WEIGHTS);
    let normal = Normal::new(0.0, 1.0).unwrap();
    for m in var_es(&pnl, &LEVELS) {
        let a = m.confidence;
        let z = normal.inverse_cdf(a);
        let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        assert_close("normal VaR", m.var, sigma * z, m.var_stderr);
        assert_close("normal ES", m.es, sigma * density / (1.0 - a), m.es_stderr);
        // The reported VaR error is the delta-method one, √(a(1−a)/n)/f(q), within 25 %.
        let expected = sigma * (a * (1.0 - a) / pnl.len() as f64).sqrt() / density;
        assert!(
            (m.var_stderr / expected - 1.0).abs() < 0.25,
            "VaR s.e. {m:?} vs {expected}"
        );
        assert!(
            m.es_stderr < 0.01 * m.es,
            "ES error too large to test anything: {m:?}"
        );
    }
}

/// Unit-variance Student-t: quantile and tail mean of √((v−2)/v)·T_v.
fn student_var_es(v: f64, a: f64) -> (f64, f64) {
    let t = StudentsT::new(0.0, 1.0, v).unwrap();
    let q = t.inverse_cdf(a);
    let density = statrs::distribution::Continuous::pdf(&t, q);
    let scale = ((v - 2.0) / v).sqrt();
    let es = density / (1.0 - a) * (v + q * q) / (v - 1.0);
    (scale * q, scale * es)
}

#[test]
fn student_t_shocks_give_closed_form_var_and_es() {
    for dof in [3.0, 4.0, 8.0] {
        let (pnl, sigma) = linear_pnl(&shocks(Distribution::StudentT { dof }, 200, 5), &WEIGHTS);
        for m in var_es(&pnl, &LEVELS) {
            let (var, es) = student_var_es(dof, m.confidence);
            assert_close(&format!("t{dof} VaR"), m.var, sigma * var, m.var_stderr);
            assert_close(&format!("t{dof} ES"), m.es, sigma * es, m.es_stderr);
            assert!(
                m.var_stderr < 0.02 * m.var && m.es_stderr < 0.05 * m.es,
                "{m:?}"
            );
        }
    }
}

#[test]
fn shocks_have_unit_variance_and_the_configured_correlation() {
    let c = correlation();
    for distribution in [Distribution::Normal, Distribution::StudentT { dof: 10.0 }] {
        let e = shocks(distribution, 100, 9);
        let n = (e.len() / 3) as f64;
        for i in 0..3 {
            for j in 0..3 {
                let products: Vec<f64> = e.chunks_exact(3).map(|x| x[i] * x[j]).collect();
                let mean = products.iter().sum::<f64>() / n;
                let sd = (products.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / n).sqrt();
                let stderr = sd / n.sqrt();
                assert_close(
                    &format!("{distribution:?} E[e{i} e{j}]"),
                    mean,
                    c[(i, j)],
                    stderr,
                );
            }
        }
    }
}

/// A model section with one underlying and no correlation block.
fn one_underlying_model(distribution: &str, spot_vol: f64, vol_of_vol: f64) -> String {
    format!(
        "[model]\n{distribution}\n\n[model.factors.BTC]\nspot_vol = {spot_vol}\nvol_of_vol = {vol_of_vol}\n"
    )
}

const BTC_SPOT: f64 = 92_000.0;
const BTC_RATE: f64 = 0.04;
const SPOT_VOL: f64 = 0.6;
const CALL_STRIKE: f64 = 100_000.0;
const CALL_VOL: f64 = 0.5;
/// 2026-11-20 08:00 to 2026-12-25 08:00.
const CALL_DAYS: f64 = 35.0;
const HORIZON_DAYS: f64 = 7.0;

/// Value rises with spot everywhere: net delta ≥ 7 coins.
const MONOTONE_BOOK: &str =
    "id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
spot-cb,spot,BTC,6,coinbase,,,,
spot-bn,spot,BTC,4,binance,,,,
perp,perpetual,BTC,-3,okx,,,,
call-deribit,option,BTC,3,deribit,call,100000,2026-12-25,0.5
call-okx,option,BTC,2,okx,call,100000,2026-12-25,0.5
";

/// The monotone book's loss for a unit-variance shock e over the horizon (independent
/// formula: spot and perpetual are 7 coins, the calls 5 Black–Scholes calls).
fn monotone_book_loss(e: f64) -> f64 {
    let spot = BTC_SPOT * (SPOT_VOL * (HORIZON_DAYS / DAYS_PER_YEAR).sqrt() * e).exp();
    let call = |s: f64, days: f64| {
        bs_price(
            OptionType::Call,
            s,
            CALL_STRIKE,
            days / DAYS_PER_YEAR,
            CALL_VOL,
            BTC_RATE,
        )
    };
    let pnl = 7.0 * (spot - BTC_SPOT)
        + 5.0 * (call(spot, CALL_DAYS - HORIZON_DAYS) - call(BTC_SPOT, CALL_DAYS));
    -pnl
}

/// Exact VaR (loss at the shock quantile) and ES (quadrature of the loss over the tail
/// probabilities, midpoint rule in p) of a book whose loss falls as the shock rises.
fn exact_monotone_var_es(inverse_cdf: impl Fn(f64) -> f64, a: f64) -> (f64, f64) {
    let var = monotone_book_loss(inverse_cdf(1.0 - a));
    let nodes = 200_000;
    let width = (1.0 - a) / nodes as f64;
    let integral: f64 = (0..nodes)
        .map(|i| monotone_book_loss(inverse_cdf((i as f64 + 0.5) * width)) * width)
        .sum();
    (var, integral / (1.0 - a))
}

fn monotone_scenario(distribution: &str, steps: u32, seed: u64) -> Scenario {
    let run = format!(
        "[run]\npaths = 400000\nseed = {seed}\nhorizon_days = {HORIZON_DAYS}\nsteps = {steps}\nconfidence = [0.95, 0.99]\n"
    );
    let model = one_underlying_model(distribution, SPOT_VOL, 0.0);
    Scenario::new(&run, &model, MARKET, "positions.csv", MONOTONE_BOOK)
}

#[test]
fn monotone_book_matches_exact_quantile_and_tail_quadrature() {
    let dof = 4.0;
    let t = StudentsT::new(0.0, 1.0, dof).unwrap();
    let scale = ((dof - 2.0) / dof).sqrt();
    let scenario = monotone_scenario("distribution = \"student-t\"\ndof = 4", 1, 21);
    let doc = json(&scenario.tailrisk("run", &["--format", "json"]));
    assert_eq!(
        doc["option_contracts"], 1,
        "the call on two venues nets into one"
    );
    for a in [0.95, 0.99] {
        let (var, es, var_se, es_se) = measure(&doc, a);
        let (exact_var, exact_es) = exact_monotone_var_es(|p| scale * t.inverse_cdf(p), a);
        assert_close("t book VaR", var, exact_var, var_se);
        assert_close("t book ES", es, exact_es, es_se);
        assert!(var_se < 0.01 * var && es_se < 0.02 * es);
    }
}

#[test]
fn multi_step_without_vol_of_vol_matches_one_step_normal() {
    let normal = Normal::new(0.0, 1.0).unwrap();
    let one = json(
        &monotone_scenario("distribution = \"normal\"", 1, 1)
            .tailrisk("run", &["--format", "json"]),
    );
    let many = json(
        &monotone_scenario("distribution = \"normal\"", 10, 2)
            .tailrisk("run", &["--format", "json"]),
    );
    for a in [0.95, 0.99] {
        let (exact_var, exact_es) = exact_monotone_var_es(|p| normal.inverse_cdf(p), a);
        let (v1, e1, vs1, es1) = measure(&one, a);
        let (v10, e10, vs10, es10) = measure(&many, a);
        assert_close("one-step VaR", v1, exact_var, vs1);
        assert_close("one-step ES", e1, exact_es, es1);
        assert_close("10-step VaR", v10, exact_var, vs10);
        assert_close("10-step ES", e10, exact_es, es10);
        assert_close("10 vs 1 step VaR", v10 - v1, 0.0, vs1.hypot(vs10));
        assert_close("10 vs 1 step ES", e10 - e1, 0.0, es1.hypot(es10));
    }
}

/// With vol of vol ν, normal shocks and n steps of dt years, the step-j price volatility is
/// σ·iv_j/iv_0 with ln(iv_j/iv_0) ~ N(0, ν²·j·dt) independent of the step's own shock, so
/// Var(ln S_h/S_0) = σ² dt Σ_j E[(iv_j/iv_0)²] = σ² dt Σ_{j<n} exp(2ν² j dt).
///
/// With vol pillars the 30-day pillar plays iv_j/iv_0, so pillars [7, 30, 90] whose 30-day
/// vol of vol is ν give the same variance whatever the other pillars do.
#[test]
fn vol_spikes_widen_later_price_moves_as_the_model_says() {
    let (sigma, nu, steps, horizon_days) = (0.6, 1.5, 4_u32, 365.0);
    for vols in [
        format!("vol_of_vol = {nu}"),
        format!("vol_pillars = [7, 30, 90]\nvol_of_vol = [2.5, {nu}, 0.4]"),
    ] {
        let text = format!(
            "[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\nspot_vol = {sigma}\n{vols}\n\
             [market]\nfile = \"m.csv\"\n[portfolio]\nfile = \"p.csv\"\n"
        );
        let scenario = ScenarioFile::parse(&text, Path::new("model.toml")).expect("scenario");
        let model =
            FactorModel::build(&scenario.model, Path::new("model.toml"), false).expect("model");
        let builder = PathBuilder::new(&model, horizon_days, steps);
        let generator = ShockGenerator::new(model.cholesky.as_ref(), model.distribution).unwrap();
        let k = generator.dimension();
        let (mut normals, mut shocks) = (vec![0.0; BLOCK_PATHS * k], vec![0.0; BLOCK_PATHS * k]);
        let mut log_spots = Vec::new();
        let mut moves = HorizonMoves::default();
        for block in 0..100 {
            let mut rng = block_rng(17, block);
            moves.reset(BLOCK_PATHS, 1, model.surface_width);
            for step in 0..steps {
                generator.fill(&mut rng, &mut normals, &mut shocks);
                builder.advance(step, &shocks, k, &mut moves);
            }
            log_spots.extend_from_slice(&moves.log_spot);
        }
        let dt = horizon_days / f64::from(steps) / DAYS_PER_YEAR;
        let exact: f64 = (0..steps)
            .map(|j| sigma * sigma * dt * (2.0 * nu * nu * f64::from(j) * dt).exp())
            .sum();
        let n = log_spots.len() as f64;
        let squares: Vec<f64> = log_spots.iter().map(|x| x * x).collect();
        let mean = squares.iter().sum::<f64>() / n;
        let sd = (squares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert_close(&format!("Var ln S_h ({vols})"), mean, exact, sd / n.sqrt());
        // and it is far from the constant-vol variance σ²h, so the test can tell them apart
        assert!((mean - sigma * sigma).abs() > 10.0 * sd / n.sqrt());
    }
}

/// A short-option book (two-sided: short calls and puts) for the Student-t step tests.
const SHORT_OPTIONS: &str =
    "id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
short-call,option,BTC,-5,deribit,call,100000,2026-12-25,0.5
short-put,option,BTC,-5,deribit,put,85000,2026-12-25,0.55
";

/// The short-option book over 10 days under Student-t with `dof`, no vol of vol, in `steps`
/// steps with `[model] chi_square = mixing`.
fn student_steps_run(dof: u32, steps: u32, mixing: &str, seed: u64) -> serde_json::Value {
    let run = format!(
        "[run]\npaths = 200000\nseed = {seed}\nhorizon_days = 10\nsteps = {steps}\nconfidence = [0.99, 0.999]\n"
    );
    let model = one_underlying_model(
        &format!("distribution = \"student-t\"\ndof = {dof}\nchi_square = \"{mixing}\""),
        SPOT_VOL,
        0.0,
    );
    let scenario = Scenario::new(&run, &model, MARKET, "positions.csv", SHORT_OPTIONS);
    json(&scenario.tailrisk("run", &["--format", "json"]))
}

/// With one chi-square per path shared by the steps, the 10-step horizon shock is exactly
/// the one-step multivariate t (no vol of vol, no drift), so VaR and ES agree within their
/// errors at 99 % and 99.9 %, for heavy (3) and moderate (5) degrees of freedom.
#[test]
fn student_t_per_path_ten_steps_match_one_step() {
    for dof in [3, 5] {
        let one = student_steps_run(dof, 1, "per-path", 31);
        let ten = student_steps_run(dof, 10, "per-path", 32);
        assert_eq!(ten["chi_square"], "per-path");
        for a in [0.99, 0.999] {
            let (v1, e1, vs1, es1) = measure(&one, a);
            let (v10, e10, vs10, es10) = measure(&ten, a);
            assert!(vs1 < 0.05 * v1 && vs10 < 0.05 * v10, "dof {dof} at {a}");
            assert_close(
                &format!("dof {dof} VaR {a}"),
                v10 - v1,
                0.0,
                vs1.hypot(vs10),
            );
            assert_close(&format!("dof {dof} ES {a}"), e10 - e1, 0.0, es1.hypot(es10));
        }
    }
}

/// A chi-square per step makes the 10-step horizon shock a sum of i.i.d. t innovations,
/// closer to normal: its far tail is measurably thinner than the one-step t's
/// (docs/model.md quotes the size of the effect).
#[test]
fn student_t_per_step_has_thinner_horizon_tails() {
    let per_path = student_steps_run(4, 10, "per-path", 41);
    let per_step = student_steps_run(4, 10, "per-step", 42);
    assert_eq!(per_step["chi_square"], "per-step");
    for a in [0.99, 0.999] {
        let (vp, ep, vsp, esp) = measure(&per_path, a);
        let (vs, es, vss, ess) = measure(&per_step, a);
        assert!(
            vp - vs > TOLERANCE_IN_STDERRS * vsp.hypot(vss),
            "VaR {a}: per-path {vp} ± {vsp}, per-step {vs} ± {vss}"
        );
        assert!(
            ep - es > TOLERANCE_IN_STDERRS * esp.hypot(ess),
            "ES {a}: per-path {ep} ± {esp}, per-step {es} ± {ess}"
        );
    }
}

/// `term_power` scales an option's vol move by (30/T)^p, T its days left at the horizon. A
/// long call with the spot held fixed (spot vol 0) loses only when vol falls, monotonically,
/// so VaR is the loss at the shock's quantile and ES the quadrature of the loss over the
/// tail: for p = 0 (the vol factor's own move) and p = 0.5 (m = (30/34)^0.5 for the
/// 25-Dec-2026 call, 34 days left after a one-day horizon).
#[test]
fn term_power_scales_vol_moves_as_documented() {
    let normal = Normal::new(0.0, 1.0).unwrap();
    let (vol_of_vol, mark_vol, strike) = (1.5, 0.5, 95_000.0);
    let book = "id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
call,option,BTC,10,deribit,call,95000,2026-12-25,0.5
";
    for power in [0.0, 0.5] {
        let model = format!(
            "[model]\ndistribution = \"normal\"\n\n[model.factors.BTC]\nspot_vol = 0.0\n\
             vol_of_vol = {vol_of_vol}\nterm_power = {power}\n"
        );
        let run = "[run]\npaths = 200000\nseed = 5\nconfidence = [0.95, 0.99]\n";
        let scenario = Scenario::new(run, &model, MARKET, "positions.csv", book);
        let doc = json(&scenario.tailrisk("run", &["--format", "json", "--revaluation", "full"]));
        let m = (30.0f64 / 34.0).powf(power);
        let s = vol_of_vol * (1.0f64 / DAYS_PER_YEAR).sqrt();
        let price = |days: f64, vol: f64| {
            bs_price(
                OptionType::Call,
                BTC_SPOT,
                strike,
                days / DAYS_PER_YEAR,
                vol,
                BTC_RATE,
            )
        };
        let loss =
            |e: f64| -10.0 * (price(34.0, mark_vol * (s * e * m).exp()) - price(35.0, mark_vol));
        for a in [0.95, 0.99] {
            let exact_var = loss(normal.inverse_cdf(1.0 - a));
            let nodes = 20_000;
            let width = (1.0 - a) / nodes as f64;
            let exact_es = (0..nodes)
                .map(|i| loss(normal.inverse_cdf((i as f64 + 0.5) * width)))
                .sum::<f64>()
                / nodes as f64;
            let (var, es, var_se, es_se) = measure(&doc, a);
            assert_close(&format!("p {power} VaR {a}"), var, exact_var, var_se);
            assert_close(&format!("p {power} ES {a}"), es, exact_es, es_se);
            assert!(var_se < 0.02 * var, "p {power}: error too wide to test");
        }
    }
}
