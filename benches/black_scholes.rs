//! Nanoseconds per option per path of full revaluation's Black–Scholes on one core: the
//! eight-lane batch ([`tailrisk::pricing::batch`]) against the scalar formula, on a block of
//! 2,048 paths (one day at 80 % vol, vol ratio around 1) for options whose d₁ sits near 0
//! (at the money: fdlibm's erfc on its polynomial branch), in the tails (strikes ±30 %: two
//! exps and five divisions per erfc) and spread across both (a book's mix).
//! Run with `cargo bench --bench black_scholes`; criterion's elements are option-paths.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use tailrisk::book::instrument::OptionType;
use tailrisk::pricing::batch::{accumulate_pnl, OptionTerms, PathVol};
use tailrisk::pricing::black_scholes::price_from_parts;

const PATHS: usize = 2048;
const SPOT: f64 = 100.0;
const VOL: f64 = 0.8;
const TAU: f64 = 30.0 / 365.0;

/// One path block: spot, ln move and vol ratio per path.
struct Block {
    spot: Vec<f64>,
    x: Vec<f64>,
    ratio: Vec<f64>,
}

fn block() -> Block {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let day = VOL / 365f64.sqrt();
    let x: Vec<f64> = (0..PATHS)
        .map(|_| day * (rng.random::<f64>() - 0.5) * 6.0)
        .collect();
    let ratio = (0..PATHS)
        .map(|_| (0.2 * (rng.random::<f64>() - 0.5)).exp())
        .collect();
    Block {
        spot: x.iter().map(|x| SPOT * x.exp()).collect(),
        x,
        ratio,
    }
}

fn option(kind: OptionType, strike: f64) -> OptionTerms {
    OptionTerms {
        kind,
        units: 1.0,
        base_price: 1.0,
        discounted_strike: strike,
        base_log_moneyness: (SPOT / strike).ln(),
    }
}

/// 64 options: calls and puts at strikes from `strikes`.
fn options(strikes: impl Fn(usize) -> f64) -> Vec<OptionTerms> {
    (0..64)
        .map(|i| {
            let kind = if i % 2 == 0 {
                OptionType::Call
            } else {
                OptionType::Put
            };
            option(kind, strikes(i))
        })
        .collect()
}

fn scalar(options: &[OptionTerms], b: &Block, total: &mut [f64]) {
    let vst = VOL * TAU.sqrt();
    for o in options {
        for (((t, &spot), &x), &ratio) in total.iter_mut().zip(&b.spot).zip(&b.x).zip(&b.ratio) {
            let value = price_from_parts(
                o.kind,
                spot,
                o.discounted_strike,
                o.base_log_moneyness + x,
                vst * ratio,
            );
            *t += o.units * (value - o.base_price);
        }
    }
}

fn batch(options: &[OptionTerms], b: &Block, total: &mut [f64]) {
    let vst = VOL * TAU.sqrt();
    for o in options {
        accumulate_pnl(o, &b.spot, &b.x, PathVol::Scaled(vst, &b.ratio), total);
    }
}

fn black_scholes(c: &mut Criterion) {
    let b = block();
    let books = [
        ("at_the_money", options(|i| SPOT * (1.0 + 0.001 * i as f64))),
        (
            "tails",
            options(|i| SPOT * if i % 4 < 2 { 0.7 } else { 1.3 }),
        ),
        ("spread", options(|i| SPOT * (0.5 + i as f64 / 64.0))),
    ];
    let mut group = c.benchmark_group("black_scholes");
    group.measurement_time(Duration::from_secs(5));
    for (name, book) in &books {
        group.throughput(Throughput::Elements((book.len() * PATHS) as u64));
        let mut total = vec![0.0; PATHS];
        group.bench_with_input(BenchmarkId::new("batch", name), book, |bench, book| {
            bench.iter(|| batch(book, &b, &mut total))
        });
        group.bench_with_input(BenchmarkId::new("scalar", name), book, |bench, book| {
            bench.iter(|| scalar(book, &b, &mut total))
        });
    }
    group.finish();
}

criterion_group!(benches, black_scholes);
criterion_main!(benches);
