//! Exact tail counts: the reported VaR is the (⌊n(1 − a)⌋ + 1)-th largest loss of the P&L
//! the run writes, at levels where n(1 − a) in floating point falls just below a whole
//! number (1e6 · (1 − 0.9999) = 99.99999999998899) and the rank used to be one off.

mod common;

use common::{json, measure, sample, tailrisk};
use polars::prelude::*;

/// The levels tested, each as the decimal p/10^d written in the scenario file.
const LEVELS: [(&str, u128, u32); 9] = [
    ("0.8", 8, 1),
    ("0.9", 9, 1),
    ("0.95", 95, 2),
    ("0.975", 975, 3),
    ("0.99", 99, 2),
    ("0.995", 995, 3),
    ("0.999", 999, 3),
    ("0.9995", 9995, 4),
    ("0.9999", 9999, 4),
];

/// ⌊n(1 − p/10^d)⌋ and the remainder n(1 − a) − ⌊n(1 − a)⌋, by integer arithmetic.
fn exact_tail(n: u128, p: u128, d: u32) -> (usize, f64) {
    let scale = 10u128.pow(d);
    let numerator = n * (scale - p);
    (
        (numerator / scale) as usize,
        (numerator % scale) as f64 / scale as f64,
    )
}

#[test]
fn var_is_the_exact_order_statistic_of_the_written_pnl() {
    let fund = sample("fund.toml");
    let folder = fund.parent().unwrap();
    let levels: Vec<&str> = LEVELS.iter().map(|l| l.0).collect();
    let text = std::fs::read_to_string(&fund)
        .unwrap()
        .replace(
            "confidence = [0.95, 0.975, 0.99]",
            &format!("confidence = [{}]", levels.join(", ")),
        )
        .replace(
            "file = \"market.csv\"",
            &format!("file = {:?}", folder.join("market.csv")),
        )
        .replace(
            "file = \"positions.csv\"",
            &format!("file = {:?}", folder.join("positions.csv")),
        )
        .replace(
            "surface = \"surface.csv\"",
            &format!("surface = {:?}", folder.join("surface.csv")),
        );
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("levels.toml");
    std::fs::write(&scenario, text).unwrap();
    for n in [10_000usize, 100_000, 1_000_000] {
        let out = dir.path().join(format!("out-{n}"));
        let doc = json(&tailrisk(&[
            "run",
            scenario.to_str().unwrap(),
            "--format",
            "json",
            "--paths",
            &n.to_string(),
            "--out",
            out.to_str().unwrap(),
        ]));
        let file = std::fs::File::open(out.join("pnl.parquet")).unwrap();
        let frame = ParquetReader::new(file).finish().unwrap();
        let mut losses: Vec<f64> = frame
            .column("pnl")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .map(|p| -p)
            .collect();
        assert_eq!(losses.len(), n);
        losses.sort_by(|a, b| b.total_cmp(a));
        for &(written, p, d) in &LEVELS {
            let a: f64 = written.parse().unwrap();
            let (whole, fraction) = exact_tail(n as u128, p, d);
            let (var, es, _, _) = measure(&doc, a);
            assert_eq!(
                var,
                losses[whole],
                "n {n}, a {written}: VaR is the {}-th largest loss",
                whole + 1
            );
            // ES: the tail mean with the boundary path weighted by the exact fraction
            let mass = whole as f64 + fraction;
            let tail: f64 = losses[..whole].iter().sum();
            let expected = (tail + fraction * losses[whole]) / mass;
            assert!(
                (es - expected).abs() <= 1e-9 * expected.abs(),
                "n {n}, a {written}: ES {es} vs {expected}"
            );
        }
    }
}
