//! Headless Chromium driven over its DevTools protocol (JSON messages on a WebSocket), for
//! the dashboard's test: no automation library and no downloaded browser, only Chromium
//! itself. Where none is found, Debian's `chromium` package is installed on first use (as
//! the notebooks' test sets up its Python environment); `TAILRISK_CHROMIUM` names another.
#![allow(dead_code)] // the report's test only needs the executable

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long any one wait on the browser may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A headless Chromium with one page, attached in flat mode (commands carry its session).
pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    session: Option<String>,
    next_id: u64,
    /// Every protocol event received so far (`{"method", "params", …}`), in order.
    pub events: Vec<Value>,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and opens a blank page with the
    /// runtime, console log and network events switched on.
    pub fn launch() -> Browser {
        let profile = TempDir::new().unwrap();
        let mut child = Command::new(chromium())
            // the flags a closed network needs: no background connections, no updates
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
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
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Chromium starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("Chromium printed its DevTools address")
                .unwrap();
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let (mut socket, _) = tungstenite::connect(endpoint.as_str()).unwrap();
        if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
        }
        let mut browser = Browser {
            child,
            socket,
            session: None,
            next_id: 1,
            events: Vec::new(),
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
            let Message::Text(text) = self.socket.read().expect("Chromium answers") else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method} failed: {value}");
                return value["result"].clone();
            }
            if value.get("method").is_some() {
                self.events.push(value);
            }
        }
    }

    /// Loads `url` and waits for its `load` event.
    pub fn open(&mut self, url: &str) {
        let seen = self.events.len();
        self.call("Page.navigate", json!({ "url": url }));
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

    /// Waits until an event named `method` is among the events after the first `seen`.
    fn wait_for_event(&mut self, method: &str, seen: usize) {
        let deadline = Instant::now() + PATIENCE;
        while !self.events[seen..].iter().any(|e| e["method"] == method) {
            assert!(Instant::now() < deadline, "no {method} event");
            self.call("Runtime.evaluate", json!({"expression": "0"}));
            std::thread::sleep(Duration::from_millis(20));
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
            .args(["install", "-y", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let advice = "install Chromium (Debian: apt-get install chromium) or set TAILRISK_CHROMIUM";
    match install() {
        Ok(status) if status.success() => return,
        Ok(_) => {}
        Err(e) => panic!("no Chromium found and apt-get cannot run ({e}): {advice}"),
    }
    let updated = Command::new("apt-get").arg("update").status();
    let installed = updated.is_ok_and(|s| s.success()) && install().is_ok_and(|s| s.success());
    assert!(installed, "no Chromium found and apt-get failed: {advice}");
}
