//! The shock generator against the machine's own ceiling, on one core: raw standard normals
//! per second (ChaCha8 + ziggurat, what the generator draws), the GEMM of a block of normals
//! by Lᵀ alone, and the generator doing both plus the Student-t scaling. The generator is
//! within its ceiling when its time is close to normals + GEMM.
//! Run with `cargo bench --bench shocks`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand_distr::{Distribution as _, StandardNormal};
use tailrisk::input::scenario::Distribution;
use tailrisk::mc::shocks::{block_rng, ShockGenerator, BLOCK_PATHS};
use tailrisk::model::correlation::cholesky_lower;

/// Factors of the large synthetic book: 20 underlyings × (spot, vol).
const FACTORS: usize = 40;

fn correlation() -> Mat<f64> {
    Mat::from_fn(FACTORS, FACTORS, |i, j| if i == j { 1.0 } else { 0.3 })
}

fn ceiling(c: &mut Criterion) {
    let mut group = c.benchmark_group("shocks");
    let values = (BLOCK_PATHS * FACTORS) as u64;
    group.throughput(Throughput::Elements(values));
    let mut buffer = vec![0.0; BLOCK_PATHS * FACTORS];
    group.bench_function("raw_normals", |b| {
        let mut rng = block_rng(1, 0);
        b.iter(|| {
            for x in buffer.iter_mut() {
                *x = StandardNormal.sample(&mut rng);
            }
        })
    });
    let l = cholesky_lower(correlation().as_ref()).expect("positive definite");
    let z = Mat::from_fn(BLOCK_PATHS, FACTORS, |i, j| {
        ((i * 7 + j * 13) % 17) as f64 - 8.0
    });
    let mut e = Mat::<f64>::zeros(BLOCK_PATHS, FACTORS);
    let lt = l.transpose().to_owned();
    group.bench_function("gemm_block_by_lt", |b| {
        b.iter(|| {
            matmul(
                e.as_mut(),
                Accum::Replace,
                z.as_ref(),
                lt.as_ref(),
                1.0,
                Par::Seq,
            )
        })
    });
    for (name, distribution) in [
        ("generator_normal", Distribution::Normal),
        ("generator_student_t", Distribution::StudentT { dof: 4.0 }),
    ] {
        let generator = ShockGenerator::new(l.as_ref(), distribution).expect("generator");
        let mut normals = vec![0.0; BLOCK_PATHS * FACTORS];
        let mut shocks = vec![0.0; BLOCK_PATHS * FACTORS];
        group.bench_function(name, |b| {
            let mut rng = block_rng(1, 0);
            b.iter(|| generator.fill(&mut rng, &mut normals, &mut shocks))
        });
    }
    group.finish();
}

criterion_group!(benches, ceiling);
criterion_main!(benches);
