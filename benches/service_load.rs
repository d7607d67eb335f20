//! Load on `tailrisk serve`: 20 clients at once, each sending 500 pre-trade what-ifs of 10
//! option trades, on the sample fund at 200,000 live paths; prints p50 / p99 latency,
//! throughput and failures, and the same for one client alone (the what-if itself).
//!
//! `cargo bench --bench service_load` (builds the release binary first). Wall-clock
//! figures of this machine: no assertion on time, as in every bench.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "../tests/common/http.rs"]
mod http;
use http::{call, load, quantile};

const PATHS: &str = "200000";

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "tailrisk"])
        .current_dir(root)
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the release binary builds");
    let dir = tempfile::TempDir::new().unwrap();
    let mut child = Command::new(format!("{root}/target/release/tailrisk"))
        .args(["serve", &format!("{root}/scenarios/fund.toml")])
        .args(["--listen", "127.0.0.1:0", "--paths", PATHS, "--db"])
        .arg(dir.path().join("db"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the service starts").unwrap();
        if let Some(address) = line.strip_prefix("tailrisk: listening on http://") {
            break address.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let trades: Vec<String> = (0..10)
        .map(|i| {
            let (underlying, kind, strike) = if i % 2 == 0 {
                ("BTC", "put", 80000)
            } else {
                ("ETH", "call", 3500)
            };
            format!(
                r#"{{"id": "w{i}", "kind": "option", "underlying": "{underlying}", "quantity": {},
                   "option_type": "{kind}", "strike": {strike}, "expiry": "2026-12-25",
                   "venue": "deribit", "book": "vol"}}"#,
                i - 5
            )
        })
        .collect();
    let body = format!(r#"{{"trades": [{}]}}"#, trades.join(","));
    let (status, answer) = call(&address, "POST", "/whatif", Some(&body));
    assert_eq!(status, 200, "{answer}");
    for (clients, each) in [(1, 500), (20, 500)] {
        let started = Instant::now();
        let (latencies, failed) = load(&address, "/whatif", &body, clients, each);
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{clients:>2} client(s) x {each} what-ifs (10 trades, {PATHS} paths): p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms, {:.0} what-ifs/s, {} failed",
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
            latencies.len() as f64 / seconds,
            failed.len()
        );
        assert!(
            failed.is_empty(),
            "what-ifs failed: {:?}",
            &failed[..failed.len().min(5)]
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
