//! Paths per second of the full Monte Carlo (shocks, paths, revaluation) on the shipped sample
//! book and on a large synthetic book (10,000 options on 20 underlyings, 200,000 paths).
//! Loading is outside the timed loop; full and grid revaluation are measured separately.
//! Run with `cargo bench --bench paths` (the full revaluation of the large book alone takes
//! about 7 minutes; `cargo bench --bench paths -- grid` skips it).

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tailrisk::input::job::Job;
use tailrisk::input::synthetic::{write_synthetic_scenario, SyntheticSpec};
use tailrisk::mc::simulation::{RevaluationMode, SimulationSettings, Simulator};
use tailrisk::mc::threads::Threads;

const PATHS: u64 = 200_000;

fn bench_job(c: &mut Criterion, name: &str, job: &Job, samples: usize) {
    for (mode, label) in [
        (RevaluationMode::Full, "full"),
        (RevaluationMode::Grid, "grid"),
    ] {
        bench_mode(c, &format!("{name}_{label}"), job, samples, mode);
    }
}

/// Paths per second of one revaluation mode; the grid's surfaces are built outside the
/// timed loop (a run builds them once, in about a second for the large book).
fn bench_mode(c: &mut Criterion, name: &str, job: &Job, samples: usize, mode: RevaluationMode) {
    let settings = SimulationSettings {
        paths: PATHS,
        seed: 7,
        horizon_days: job.scenario.run.horizon_days,
        steps: job.scenario.run.steps,
        threads: Threads::all(),
    };
    let (simulator, _) = Simulator::new(&job.model, &job.aggregated, settings)
        .expect("simulator")
        .with_revaluation(&job.model, mode, 0.99);
    let mut group = c.benchmark_group("paths");
    group.throughput(Throughput::Elements(PATHS));
    group.sample_size(samples);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(name, |b| {
        b.iter(|| simulator.pnl(&|_| {}).expect("finite P&L"))
    });
    group.finish();
}

fn sample_book(c: &mut Criterion) {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/fund.toml");
    let job = Job::load(&scenario, false).expect("sample scenario loads");
    bench_job(c, "sample_fund_200k", &job, 20);
}

fn synthetic_book(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let spec = SyntheticSpec {
        underlyings: 20,
        options: 10_000,
        paths: PATHS,
        seed: 1,
    };
    let scenario = write_synthetic_scenario(dir.path(), &spec).expect("synthetic book");
    let job = Job::load(&scenario, false).expect("synthetic scenario loads");
    bench_job(c, "synthetic_10k_options_200k", &job, 10);
}

criterion_group!(benches, sample_book, synthetic_book);
criterion_main!(benches);
