//! Headless Chromium driven over its DevTools protocol (JSON messages on a WebSocket), for
//! the dashboard's test: no automation library and no downloaded browser, only Chromium
//! itself. Where none is found, Debian's `chromium` package is installed on first use (as
//! the notebooks' test sets up its Python environment); `TAILRISK_CHROMIUM` names another.
#![allow(dead_code)] // the report's test only needs the executable

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long any one wait on the browser may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Chromium's process group, stopped when dropped (also when a test panics), helpers and
/// all.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium with one page, attached in flat mode (commands carry its session).
pub struct Browser {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    session: Option<String>,
    next_id: u64,
    /// Every protocol event received so far (`{"method", "params", …}`), in order.
    pub events: Vec<Value>,
    // dropped in this order: the connection, then the browser, then its profile
    _process: Process,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // ask it to close before its group is killed
        let close = json!({"id": 0, "method": "Browser.close"});
        let _ = self.socket.send(Message::text(close.to_string()));
    }
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and opens a blank page with the
    /// runtime, console log and network events switched on.
    pub fn launch() -> Browser {
        let profile = TempDir::new().unwrap();
        let mut process = Process(
            Command::new(chromium())
                // the flags a closed network needs: no background connections, no updates
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-port=0",
                    "--window-size=1000,1400",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("Chromium starts"),
        );
        let endpoint = devtools_address(process.0.stderr.take().unwrap());
        let (mut socket, _) = tungstenite::connect(endpoint.as_str()).unwrap();
        if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
        }
        let mut browser = Browser {
            socket,
            session: None,
            next_id: 1,
            events: Vec::new(),
            _process: process,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        for domain in ["Runtime", "Log", "Network", "Page"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser
    }

    /// Sends one command to the page (to the browser before a page is attached) and waits
    /// for its result, keeping the events that arrive meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .unwrap();
        loop {
            let value = self.next_message();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method} failed: {value}");
                return value["result"].clone();
            }
        }
    }

    /// The next message from Chromium (an answer or an event; events are also kept).
    fn next_message(&mut self) -> Value {
        loop {
            let message = self
                .socket
                .read()
                .expect("Chromium answers within the patience");
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value.get("method").is_some() {
                self.events.push(value.clone());
            }
            return value;
        }
    }

    /// Loads `url` and waits for its `load` event.
    pub fn open(&mut self, url: &str) {
        let seen = self.events.len();
        let navigated = self.call("Page.navigate", json!({ "url": url }));
        assert!(
            navigated.get("errorText").is_none(),
            "{url} did not load: {navigated}"
        );
        self.wait_for_event("Page.loadEventFired", seen);
    }

    /// The value of a JavaScript expression in the page (promises awaited); fails the test
    /// on an exception.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is truthy (every 50 ms), and returns its value.
    pub fn wait_until(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.eval(expression);
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "never true: {expression}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until an event named `method` is among the events after the first `seen`
    /// (reading Chromium's messages, each within the patience).
    fn wait_for_event(&mut self, method: &str, seen: usize) {
        while !self.events[seen..].iter().any(|e| e["method"] == method) {
            self.next_message();
        }
    }

    /// The events named `method`'s parameters, in order.
    pub fn events_named(&self, method: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == method)
            .map(|e| &e["params"])
            .collect()
    }
}

/// The DevTools WebSocket address Chromium prints on its standard error at start; its other
/// lines are kept for the failure message, and the stream is drained afterwards.
fn devtools_address(stderr: std::process::ChildStderr) -> String {
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut printed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => match line.strip_prefix("DevTools listening on ") {
                Some(url) => return url.trim().to_owned(),
                None => printed.push(line),
            },
            Err(e) => panic!(
                "Chromium gave no DevTools address ({e}); it printed:\n{}",
                printed.join("\n")
            ),
        }
    }
}

/// Chromium's executable: `TAILRISK_CHROMIUM`, else the first Chromium or Chrome on the
/// PATH, else Debian's package installed now.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("TAILRISK_CHROMIUM") {
        return path.into();
    }
    on_path().unwrap_or_else(|| {
        install_debian_chromium();
        on_path().expect("the chromium package installed /usr/bin/chromium")
    })
}

const NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome-stable",
    "google-chrome",
];

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| NAMES.map(|name| dir.join(name)))
        .find(|candidate| Path::is_file(candidate))
}

/// `apt-get install chromium` (after `apt-get update` if the package lists are empty, as on
/// a fresh machine); a clear failure where that is not possible.
fn install_debian_chromium() {
    eprintln!("dashboard test: no Chromium found, installing Debian's chromium package");
    let install = || {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y"])
            .args(["--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let advice = "install Chromium (Debian: apt-get install chromium) or set TAILRISK_CHROMIUM";
    match install() {
        Ok(status) if status.success() => return,
        Ok(_) => {}
        Err(e) => panic!("no Chromium found and apt-get cannot run ({e}): {advice}"),
    }
    let updated = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=300", "update"])
        .status();
    let installed = updated.is_ok_and(|s| s.success()) && install().is_ok_and(|s| s.success());
    assert!(installed, "no Chromium found and apt-get failed: {advice}");
}
