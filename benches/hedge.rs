//! Time of the hedge program (least ES, m = 50 candidates, level 0.975, bounds and a budget)
//! on the factor-driven scenarios of `probe_large` (tests/hedge_solver.rs): tailrisk's
//! structure-exploiting interior point at 10,000 and 100,000 paths, and Clarabel (a general
//! sparse conic interior point, default settings) on the same linear program at 10,000
//! paths. Scenario generation is outside the timed loop; Clarabel's time includes assembling
//! its sparse matrix and its setup (equilibration, ordering, symbolic factorisation), as
//! tailrisk's includes its scaling.
//! Run with `cargo bench --bench hedge`; Clarabel at 100,000 paths is the ignored test
//! `probe_clarabel_large` in tests/hedge_clarabel.rs.

#[path = "../tests/common/hedge_lp.rs"]
mod hedge_lp;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hedge_lp::{clarabel_solve, factor_program};
use tailrisk::hedge::solver::{solve, Goal};

const CANDIDATES: usize = 50;

fn hedge(c: &mut Criterion) {
    let mut group = c.benchmark_group("hedge_least_es_m50");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for n in [10_000, 100_000] {
        let program = factor_program(n, CANDIDATES, 3);
        let opt = solve(&program.program(), Goal::MinimizeEs).expect("tailrisk solves");
        println!(
            "tailrisk n {n}: ES {} after {} iterations",
            opt.es, opt.iterations
        );
        group.bench_with_input(BenchmarkId::new("tailrisk", n), &program, |b, p| {
            b.iter(|| solve(&p.program(), Goal::MinimizeEs).expect("tailrisk solves"))
        });
        if n <= 10_000 {
            let reference = clarabel_solve(&program, Goal::MinimizeEs);
            println!(
                "clarabel n {n}: {:?} objective {} after {} iterations, relative difference {:.2e}",
                reference.status,
                reference.objective,
                reference.iterations,
                (reference.objective - opt.es).abs() / opt.es.abs()
            );
            group.bench_with_input(BenchmarkId::new("clarabel", n), &program, |b, p| {
                b.iter(|| clarabel_solve(p, Goal::MinimizeEs))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, hedge);
criterion_main!(benches);
