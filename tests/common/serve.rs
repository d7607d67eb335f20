//! `tailrisk serve` started on a loopback port for the service's tests: the sample fund's
//! files in a temporary folder, the address it listens on, JSON calls, and waiting for the
//! figures of the latest inputs.
#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::call;

/// Paths of the live run: enough for stable figures, quick to recompute.
pub const PATHS: &str = "20000";

/// A running service and where it listens.
pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample fund's scenario, market, positions and surface files copied into `dir`
/// (so a test can edit them).
pub fn fund_copy(dir: &Path) -> PathBuf {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for file in ["fund.toml", "market.csv", "positions.csv", "surface.csv"] {
        std::fs::copy(scenarios.join(file), dir.join(file)).unwrap();
    }
    dir.join("fund.toml")
}

/// Starts `tailrisk serve` on the scenario with its database in `db`, on a free port.
pub fn serve(scenario: &Path, db: &Path) -> Server {
    serve_on(scenario, db, "127.0.0.1:0")
}

/// Starts `tailrisk serve` on the scenario with its database in `db`, listening on `listen`.
pub fn serve_on(scenario: &Path, db: &Path, listen: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .args(["serve", scenario.to_str().unwrap(), "--listen", listen])
        .args(["--db", db.to_str().unwrap(), "--paths", PATHS])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the service printed its address")
            .unwrap();
        if let Some(address) = line.strip_prefix("tailrisk: listening on http://") {
            break address.to_owned();
        }
    };
    // keep draining stderr so the service never blocks on it
    std::thread::spawn(move || for _ in lines {});
    Server { child, address }
}

pub fn json_call(address: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, answer) = call(address, method, path, text.as_deref());
    (
        status,
        serde_json::from_str(&answer).unwrap_or(Value::String(answer)),
    )
}

/// Waits until the served figures are of the latest input version.
pub fn settled(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, health) = json_call(&server.address, "GET", "/health", None);
        if health["risk_version"] == health["input_version"] {
            return json_call(&server.address, "GET", "/risk", None).1;
        }
        assert!(Instant::now() < deadline, "no run completed: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
