//! The committee report renders in a real browser: headless Chromium (Debian's `chromium`,
//! installed here when missing) loads the HTML file with no console errors, and every section
//! is there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{sample, tailrisk};
#[path = "common/browser.rs"]
mod browser;
use browser::chromium;

fn write_report(dir: &Path) -> PathBuf {
    let out = dir.join("report.html");
    let fund = sample("fund.toml");
    let library = sample("stress/crypto_history.toml");
    let history = sample("data/bitstamp_btc_eth_ltc_usd_daily.csv");
    let output = tailrisk(&[
        "report",
        fund.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--paths",
        "50000",
        "--stress-file",
        library.to_str().unwrap(),
        "--history",
        history.to_str().unwrap(),
        "--window",
        "7",
        "--reverse",
        "1000000",
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let report = write_report(dir.path());
    let screenshot = dir.path().join("report.png");
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,1400",
            &format!("--screenshot={}", screenshot.display()),
            &format!("file://{}", report.display()),
        ])
        .output()
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {log}");
    for problem in ["CONSOLE", "Uncaught", "Failed to load resource", "ERR_"] {
        assert!(
            !log.contains(problem),
            "browser reported '{problem}':\n{log}"
        );
    }
    let png = std::fs::metadata(&screenshot).expect("screenshot written");
    assert!(
        png.len() > 20_000,
        "the page rendered something ({} bytes)",
        png.len()
    );

    let dom = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("chromium dumps the DOM");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for section in [
        "Summary",
        "P&amp;L distribution",
        "Exposures",
        "Contributions at 99.0%",
        "Stress scenarios",
        "Spot × implied-vol grid",
        "Model and data",
        "FTX collapse",
        "Reverse stress",
        "Worst 7-day historical moves",
    ] {
        assert!(dom.contains(section), "the rendered page lacks '{section}'");
    }
    assert!(
        dom.matches("<svg").count() >= 3,
        "histogram, bars and heatmap"
    );
}

#[test]
fn report_is_self_contained_and_shows_the_run_figures() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(write_report(dir.path())).unwrap();
    for external in ["<script", "src=\"http", "src='http", "href=\"http", "<link"] {
        assert!(!html.contains(external), "report refers to '{external}'");
    }
    // the report revalues in full (it carries contributions), like `run --revaluation full`
    let fund = sample("fund.toml");
    let run = common::json(&tailrisk(&[
        "run",
        fund.to_str().unwrap(),
        "--format",
        "json",
        "--paths",
        "50000",
        "--revaluation",
        "full",
    ]));
    let (var, es, _, _) = common::measure(&run, 0.99);
    for figure in [var, es] {
        let shown = tailrisk::report::text::money(figure, 0);
        assert!(html.contains(&shown), "report lacks {shown}");
    }
    assert!(html.contains("27,095,392"), "base value");
    // the sample fund has [[venue]] entries: today's requirements are in the margin section
    assert!(html.contains("Margin, liquidations and venue failure"));
    for venue in ["deribit", "binance", "okx"] {
        assert!(
            html.contains(&format!("<tr><td>{venue}</td><td>")),
            "{venue}"
        );
    }
}
