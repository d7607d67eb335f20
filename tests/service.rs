//! `tailrisk serve` over HTTP on a loopback port: the API's answers, refusals that name
//! the field and apply nothing, what-ifs equal to `tailrisk whatif` to the last bit, limits
//! and their events, and acknowledged trades surviving a kill.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

#[path = "common/http.rs"]
mod http;
use http::{call, load, quantile};
#[path = "common/serve.rs"]
mod serve;
use serve::{fund_copy, json_call, serve, settled, PATHS};

fn option_trade(id: &str, quantity: f64) -> Value {
    json!({"id": id, "kind": "option", "underlying": "BTC", "quantity": quantity,
           "option_type": "put", "strike": 80000, "expiry": "2026-12-25",
           "venue": "deribit", "book": "vol"})
}

#[test]
fn the_api_answers_and_refuses_bad_input_naming_the_field_applying_nothing() {
    let dir = TempDir::new().unwrap();
    let server = serve(&fund_copy(dir.path()), &dir.path().join("db"));
    let risk = settled(&server);
    assert_eq!(risk["positions"], 50);
    assert_eq!(risk["paths"], 20000);
    assert_eq!(risk["measures"].as_array().unwrap().len(), 3);
    assert!(!risk["exposures"].as_array().unwrap().is_empty());
    assert!(!risk["contributions"].as_array().unwrap().is_empty());

    let trade = json!({"trades": [option_trade("t1", -5.0)]});
    let (status, added) = json_call(&server.address, "POST", "/trades", Some(trade.clone()));
    assert_eq!((status, &added["added"]), (200, &json!(["t1"])));
    // the same trade delivered again changes nothing; other fields under its id conflict
    let (status, again) = json_call(&server.address, "POST", "/trades", Some(trade));
    assert_eq!((status, &again["added"]), (200, &json!([])));
    let conflicting = json!({"trades": [option_trade("t1", -6.0)]});
    let (status, error) = json_call(&server.address, "POST", "/trades", Some(conflicting));
    assert_eq!((status, &error["field"]), (409, &json!("trades[0].id")));

    let too_many_removals = json!({ "remove": vec!["btc-spot-binance"; 1001] }).to_string();
    let refusals: [(&str, &str, &str, u16, Value); 19] = [
        ("POST", "/trades", "{bad", 400, json!("body")),
        ("GET", "/trades", "", 405, json!("method")),
        (
            "PUT",
            "/market",
            // a price beyond floating point on the live paths would stop every later run
            r#"{"BTC": {"spot": 1e307}}"#,
            400,
            json!("market"),
        ),
        (
            "PUT",
            "/limits",
            r#"[{"scope": "underlying", "name": "BTCC", "measure": "delta", "limit": 5}]"#,
            400,
            json!("limits[0].name"),
        ),
        (
            "POST",
            "/trades",
            r#"{"trades": [{"id": "n", "kind": "spot", "underlying": "BTC", "quantity": "NaN"}]}"#,
            400,
            json!("trades[0].quantity"),
        ),
        (
            "POST",
            "/trades",
            r#"{"trades": [{"id": "ok", "kind": "spot", "underlying": "BTC", "quantity": 1},
                          {"id": "x", "kind": "spot", "underlying": "XYZ", "quantity": 1}]}"#,
            400,
            json!("trades[1].underlying"),
        ),
        (
            "POST",
            "/trades",
            r#"{"trades": [{"id": "k", "kind": "option", "underlying": "BTC", "quantity": 1,
                "option_type": "call", "strike": -5, "expiry": "2026-12-25"}]}"#,
            400,
            json!("trades[0].strike"),
        ),
        (
            "PUT",
            "/market",
            r#"{"BTC": {"spot": 0}}"#,
            400,
            json!("BTC.spot"),
        ),
        (
            "PUT",
            "/market",
            r#"{"BTC": {"atm_vol": -0.5}}"#,
            400,
            json!("BTC.atm_vol"),
        ),
        (
            "PUT",
            "/market",
            r#"{"XYZ": {"spot": 5}}"#,
            400,
            json!("XYZ"),
        ),
        (
            "PUT",
            "/market",
            // BTC's spot is read first and fine: all or none
            r#"{"BTC": {"spot": 95000}, "ETH": {"atm_vol": 0.6}}"#,
            400,
            json!("ETH.atm_vol"),
        ),
        ("DELETE", "/positions/nobody", "", 404, json!("id")),
        (
            "POST",
            "/trades",
            r#"[{"id": "m", "kind": "spot", "underlying": "BTC", "quantity": 1, "multipler": 10}]"#,
            400,
            json!("trades[0].multipler"),
        ),
        (
            "POST",
            "/trades",
            r#"[{"id": "huge", "kind": "spot", "underlying": "BTC", "quantity": 1e307}]"#,
            400,
            json!("trades"),
        ),
        (
            "POST",
            "/whatif",
            r#"{"remove": ["btc-spot-binance", "nobody"]}"#,
            404,
            json!("remove[1]"),
        ),
        ("POST", "/whatif", &too_many_removals, 400, json!("remove")),
        (
            "PUT",
            "/limits",
            r#"[{"scope": "total", "measure": "es", "confidence": 0.99, "limit": 5},
                {"scope": "total", "measure": "es", "confidence": 0.99, "limit": 6}]"#,
            400,
            json!("limits[1]"),
        ),
        (
            "POST",
            "/trades",
            r#"[{"id": "v", "kind": "option", "underlying": "BTC", "quantity": 1,
                 "option_type": "call", "strike": 90000, "expiry": "2020-01-01"}]"#,
            400,
            json!("trades[0].expiry"),
        ),
        (
            "PUT",
            "/limits",
            r#"[{"scope": "total", "measure": "var", "confidence": 1.5, "limit": 1}]"#,
            400,
            json!("limits[0].confidence"),
        ),
    ];
    let input_version = |server: &serve::Server| {
        json_call(&server.address, "GET", "/health", None).1["input_version"].clone()
    };
    let before_refusals = input_version(&server);
    for (method, path, body, status, field) in refusals {
        let (got, answer) = call(&server.address, method, path, Some(body));
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
        assert_eq!(answer["field"], field, "{method} {path} {body}");
    }
    // a body not declared JSON is refused (a web page cannot post it unasked)
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let body = r#"[{"id": "p", "kind": "spot", "underlying": "BTC", "quantity": 1}]"#;
    write!(
        stream,
        "POST /trades HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    let oversized = format!("[{}]", "0,".repeat(600_000) + "0");
    let (status, answer) = call(&server.address, "POST", "/trades", Some(&oversized));
    assert_eq!(status, 413, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert!(answer["error"].is_string());
    assert_eq!(answer["field"], "body");
    let (status, _) = call(&server.address, "GET", "/nowhere", None);
    assert_eq!(status, 404);

    // nothing of a refused request was applied: no change accepted, only t1 added
    assert_eq!(input_version(&server), before_refusals);
    let risk = settled(&server);
    assert_eq!(risk["positions"], 51);
    let (_, ok_again) = json_call(
        &server.address,
        "POST",
        "/trades",
        Some(json!([{"id": "ok", "kind": "spot", "underlying": "BTC", "quantity": 1}])),
    );
    assert_eq!(ok_again["added"], json!(["ok"]));
    let (status, removed) = json_call(&server.address, "DELETE", "/positions/ok", None);
    assert_eq!(status, 200, "{removed}");
    assert_eq!(settled(&server)["positions"], 51);
    // delivered again after its removal, the trade stays removed; other cells conflict
    let ok = json!([{"id": "ok", "kind": "spot", "underlying": "BTC", "quantity": 1}]);
    let (status, again) = json_call(&server.address, "POST", "/trades", Some(ok));
    assert_eq!((status, &again["added"]), (200, &json!([])));
    // the same number written otherwise is the same trade
    let ok = json!([{"id": "ok", "kind": "spot", "underlying": "BTC", "quantity": 1.0}]);
    let (status, again) = json_call(&server.address, "POST", "/trades", Some(ok));
    assert_eq!((status, &again["added"]), (200, &json!([])));
    let other = json!([{"id": "ok", "kind": "spot", "underlying": "BTC", "quantity": 2}]);
    let (status, conflict) = json_call(&server.address, "POST", "/trades", Some(other));
    assert_eq!((status, &conflict["field"]), (409, &json!("trades[0].id")));
    assert_eq!(settled(&server)["positions"], 51);

    let (status, metrics) = call(&server.address, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE tailrisk_var gauge"), "{metrics}");
    assert!(metrics.contains("tailrisk_var{confidence=\"0.99\"}"));
    let rejected: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tailrisk_rejected_requests_total "))
        .unwrap()
        .parse()
        .unwrap();
    // the two conflicts, the refusals but the wrong method (no route took it, as no route
    // took /nowhere), the body of another type and the oversized one
    assert_eq!(rejected, 22.0, "{metrics}");
    let (_, health) = json_call(&server.address, "GET", "/health", None);
    assert_eq!(health["status"], "ok", "{health}");
}

/// The what-if of the live service equals `tailrisk whatif` run on files holding the same
/// state (the moved market, the added trade) to the last bit, and its served figures equal
/// `tailrisk run`'s.
#[test]
fn a_what_if_equals_the_command_on_the_same_state_to_the_last_bit() {
    let dir = TempDir::new().unwrap();
    let scenario = fund_copy(dir.path());
    let server = serve(&scenario, &dir.path().join("db"));
    let (status, _) = json_call(
        &server.address,
        "PUT",
        "/market",
        // a day later: the valuation time moves with the market
        Some(
            json!({"as_of": "2026-11-21T08:00:00Z", "BTC": {"spot": 95000.5}, "SOL": {"atm_vol": 0.9}}),
        ),
    );
    assert_eq!(status, 200);
    let (status, _) = json_call(
        &server.address,
        "POST",
        "/trades",
        Some(json!([option_trade("held", 3.0)])),
    );
    assert_eq!(status, 200);
    settled(&server);
    let trades = json!({"trades": [option_trade("w1", -10.0),
        {"id": "w2", "kind": "perpetual", "underlying": "ETH", "quantity": 250.5, "venue": "binance"},
        // valued at SOL's moved ATM vol (no surface, no implied_vol of its own)
        {"id": "w3", "kind": "option", "underlying": "SOL", "quantity": -500, "option_type": "call",
         "strike": 150, "expiry": "2026-12-25", "venue": "deribit"}],
        "remove": ["btc-spot-binance"]});
    let (status, live) = json_call(&server.address, "POST", "/whatif", Some(trades));
    assert_eq!(status, 200, "{live}");

    // the same state as files, valued at the market's as-of time
    let toml = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(
        &scenario,
        toml.replacen(
            "[run]\n",
            "[run]\nvaluation_time = \"2026-11-21T08:00:00Z\"\n",
            1,
        ),
    )
    .unwrap();
    let market = std::fs::read_to_string(dir.path().join("market.csv")).unwrap();
    let market: String = market
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            match cells[0] {
                "BTC" => format!("BTC,95000.5,{}\n", cells[2..].join(",")),
                "SOL" => format!("SOL,{},0.9,{}\n", cells[1], cells[3..].join(",")),
                _ => format!("{line}\n"),
            }
        })
        .collect();
    std::fs::write(dir.path().join("market.csv"), market).unwrap();
    let positions = std::fs::read_to_string(dir.path().join("positions.csv")).unwrap();
    let header = positions.lines().next().unwrap().to_owned();
    let row = |cells: &[(&str, &str)]| -> String {
        header
            .split(',')
            .map(|c| cells.iter().find(|(k, _)| *k == c).map_or("", |(_, v)| *v))
            .collect::<Vec<_>>()
            .join(",")
    };
    let option = |id: &'static str, quantity: &'static str| {
        vec![
            ("id", id),
            ("kind", "option"),
            ("underlying", "BTC"),
            ("quantity", quantity),
            ("option_type", "put"),
            ("strike", "80000"),
            ("expiry", "2026-12-25"),
            ("venue", "deribit"),
            ("book", "vol"),
        ]
    };
    let held = row(&option("held", "3"));
    std::fs::write(
        dir.path().join("positions.csv"),
        format!("{}\n{held}\n", positions.trim_end()),
    )
    .unwrap();
    let trades_file = dir.path().join("trades.csv");
    let perpetual = [
        ("id", "w2"),
        ("kind", "perpetual"),
        ("underlying", "ETH"),
        ("quantity", "250.5"),
        ("venue", "binance"),
    ];
    let sol_call = [
        ("id", "w3"),
        ("kind", "option"),
        ("underlying", "SOL"),
        ("quantity", "-500"),
        ("option_type", "call"),
        ("strike", "150"),
        ("expiry", "2026-12-25"),
        ("venue", "deribit"),
    ];
    std::fs::write(
        &trades_file,
        format!(
            "{header}\n{}\n{}\n{}\n",
            row(&option("w1", "-10")),
            row(&perpetual),
            row(&sol_call)
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .args(["whatif", scenario.to_str().unwrap(), "--trades"])
        .arg(&trades_file)
        .args(["--remove", "btc-spot-binance", "--paths", PATHS])
        .args(["--format", "json", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let command: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["paths", "seed", "before", "after", "change", "trades_added"] {
        assert_eq!(live[key], command[key], "{key}");
    }
    // the trades move ES: the comparison is not of two zeros
    assert!(
        live["change"][2]["es"].as_f64().unwrap().abs() > 1000.0,
        "{live}"
    );

    // the served figures equal `tailrisk run --contributions book` on that state
    let risk = settled(&server);
    let out = Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .args(["run", scenario.to_str().unwrap(), "--contributions", "book"])
        .args(["--paths", PATHS, "--format", "json", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["base_value", "positions", "measures", "contributions"] {
        assert_eq!(risk[key], run[key], "{key}");
    }
}

/// A VaR limit below the book's VaR is breached, announced on the event stream, and
/// cleared when raised.
#[test]
fn limits_are_breached_and_cleared_with_events() {
    let dir = TempDir::new().unwrap();
    let server = serve(&fund_copy(dir.path()), &dir.path().join("db"));
    let first = settled(&server);
    let events = Arc::new(Mutex::new(String::new()));
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    {
        let events = events.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                events
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    let limits = json!([
        {"scope": "total", "measure": "var", "confidence": 0.99, "limit": 1.0},
        {"scope": "book", "name": "vol", "measure": "es", "confidence": 0.975, "limit": 1e12},
        {"scope": "underlying", "name": "BTC", "measure": "delta", "limit": 1e12}
    ]);
    let (status, _) = json_call(&server.address, "PUT", "/limits", Some(limits));
    assert_eq!(status, 200);
    let risk = settled(&server);
    // a limits change measures the limits on the same simulation, under the new version
    assert_eq!(risk["computed_at"], first["computed_at"]);
    assert_eq!(risk["version"], first["version"].as_u64().unwrap() + 1);
    let (_, limits) = json_call(&server.address, "GET", "/limits", None);
    let statuses = limits["limits"].as_array().unwrap();
    assert_eq!(statuses.len(), 3);
    let var99 = risk["measures"][2]["var"].as_f64().unwrap();
    assert_eq!(statuses[0]["value"].as_f64().unwrap(), var99);
    assert_eq!(statuses[0]["breached"], true);
    assert_eq!(statuses[1]["breached"], false);
    // the vol book's own ES, checked another way: the what-if that removes every other
    // position (the book's P&L plus the removed ones' negated, on the same paths)
    let positions = std::fs::read_to_string(dir.path().join("positions.csv")).unwrap();
    let others: Vec<&str> = positions
        .lines()
        .skip(1)
        .filter(|line| line.split(',').nth(8) != Some("vol"))
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(others.len(), 34);
    let (status, alone) = json_call(
        &server.address,
        "POST",
        "/whatif",
        Some(json!({ "remove": others })),
    );
    assert_eq!(status, 200, "{alone}");
    assert_eq!(alone["after"]["positions"], 16);
    let expected = alone["after"]["measures"][1]["es"].as_f64().unwrap();
    let value = statuses[1]["value"].as_f64().unwrap();
    assert!(
        (value - expected).abs() <= 1e-8 * expected,
        "{value} against {expected}"
    );
    // BTC's delta limit caps |net USD delta| of the BTC exposure row
    let btc = risk["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "underlying" && r["key"] == "BTC")
        .unwrap();
    assert_eq!(
        statuses[2]["value"].as_f64().unwrap(),
        btc["delta_usd"].as_f64().unwrap().abs()
    );
    assert!(statuses[2]["value"].as_f64().unwrap() > 0.0);
    assert_eq!(limits["breaches"].as_array().unwrap().len(), 1);
    let raised = json!([{"scope": "total", "measure": "var", "confidence": 0.99, "limit": 1e12}]);
    json_call(&server.address, "PUT", "/limits", Some(raised));
    settled(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events.lock().unwrap().contains("event: limit_cleared") {
        assert!(Instant::now() < deadline, "{}", events.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = events.lock().unwrap().clone();
    assert!(seen.contains("event: risk_recomputed"), "{seen}");
    assert!(seen.contains("event: limit_breached"), "{seen}");
}

/// Trades acknowledged before the service is killed (SIGKILL, mid-stream) are all there
/// after a restart, once each.
#[test]
fn acknowledged_trades_survive_a_kill() {
    let dir = TempDir::new().unwrap();
    let scenario = fund_copy(dir.path());
    let db = dir.path().join("db");
    let mut server = serve(&scenario, &db);
    let (status, _) = json_call(
        &server.address,
        "DELETE",
        "/positions/btc-spot-binance",
        None,
    );
    assert_eq!(status, 200);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let address = server.address.clone();
    let stream = {
        let acknowledged = acknowledged.clone();
        std::thread::spawn(move || {
            for i in 0..10_000 {
                let id = format!("s{i}");
                let trade = json!([{"id": id, "kind": "spot", "underlying": "ETH", "quantity": 1}]);
                let text = trade.to_string();
                let Ok(mut connection) = TcpStream::connect(&address) else {
                    break;
                };
                let request = format!(
                    "POST /trades HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\
                     Connection: close\r\n\r\n{text}",
                    text.len()
                );
                if connection.write_all(request.as_bytes()).is_err() {
                    break;
                }
                let mut answer = String::new();
                if connection.read_to_string(&mut answer).is_err() {
                    break;
                }
                if answer.starts_with("HTTP/1.1 200") {
                    acknowledged.lock().unwrap().push(id);
                } else {
                    break;
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stream.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let server = serve(&scenario, &db);
    let risk = settled(&server);
    let held = risk["positions"].as_u64().unwrap() as usize;
    // every acknowledged trade, plus at most the one in flight when the kill came, and the
    // deleted position still deleted (the positions file does not seed a used store again)
    assert!(
        held == 49 + acknowledged.len() || held == 50 + acknowledged.len(),
        "{held} positions after {} acknowledged",
        acknowledged.len()
    );
    for id in &acknowledged {
        let trade = json!([{"id": id, "kind": "spot", "underlying": "ETH", "quantity": 1}]);
        let (status, answer) = json_call(&server.address, "POST", "/trades", Some(trade));
        assert_eq!((status, &answer["added"]), (200, &json!([])), "{id}");
    }
}

/// A bounded load: 20 clients at once, each sending what-ifs of 10 trades; none fails
/// (the latency figures are printed; the full 20 × 500 is `cargo bench --bench
/// service_load`).
#[test]
fn concurrent_what_ifs_all_answer() {
    let dir = TempDir::new().unwrap();
    let server = serve(&fund_copy(dir.path()), &dir.path().join("db"));
    settled(&server);
    let trades: Vec<Value> = (0..10)
        .map(|i| option_trade(&format!("w{i}"), f64::from(i) - 5.0))
        .collect();
    let body = json!({ "trades": trades }).to_string();
    let (latencies, failed) = load(&server.address, "/whatif", &body, 20, 10);
    assert_eq!(latencies.len(), 200);
    assert!(failed.is_empty(), "{failed:?}");
    eprintln!(
        "20 clients x 10 what-ifs at {PATHS} paths: p50 {:.1} ms, p99 {:.1} ms",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99)
    );
}

/// The valuation time is the market's as-of time: it moves with `PUT /market`'s `as_of`,
/// never back, not past a held contract's expiry, not where the scenario pins it, and it is
/// kept across a restart.
#[test]
fn the_valuation_time_follows_the_markets_as_of() {
    let dir = TempDir::new().unwrap();
    let scenario = fund_copy(dir.path());
    let db = dir.path().join("db");
    let server = serve(&scenario, &db);
    assert_eq!(settled(&server)["valuation_time"], "2026-11-20T08:00:00Z");
    let put = |server: &serve::Server, body: Value| {
        json_call(&server.address, "PUT", "/market", Some(body))
    };

    let (status, answer) = put(&server, json!({"as_of": "2026-11-19T08:00:00Z"}));
    assert_eq!(
        (status, &answer["field"]),
        (400, &json!("as_of")),
        "{answer}"
    );
    let (status, answer) = put(&server, json!({"as_of": "yesterday", "BTC": {"spot": 1}}));
    assert_eq!(
        (status, &answer["field"]),
        (400, &json!("as_of")),
        "{answer}"
    );
    // the three Deribit options of 27 November expire by the 28th
    let (status, answer) = put(&server, json!({"as_of": "2026-11-28T08:00:00Z"}));
    assert_eq!(
        (status, &answer["field"]),
        (409, &json!("as_of")),
        "{answer}"
    );
    let message = answer["error"].as_str().unwrap();
    for id in [
        "btc-27nov26-95000-c",
        "btc-27nov26-88000-p",
        "eth-27nov26-3200-c",
    ] {
        assert!(message.contains(id), "{message}");
    }
    // prices at fault are the market's, with or without a new as-of time
    for body in [
        json!({"BTC": {"spot": 1e307}}),
        json!({"as_of": "2026-11-21T08:00:00Z", "BTC": {"spot": 1e307}}),
    ] {
        let (status, answer) = put(&server, body);
        assert_eq!(
            (status, &answer["field"]),
            (400, &json!("market")),
            "{answer}"
        );
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("would not be finite"));
    }
    let before = settled(&server);
    assert_eq!(before["version"], 1, "nothing refused was applied");

    let (status, answer) = put(
        &server,
        json!({"as_of": "2026-11-21T08:00:00Z", "BTC": {"spot": 93000}}),
    );
    assert_eq!(status, 200, "{answer}");
    let after = settled(&server);
    assert_eq!(after["valuation_time"], "2026-11-21T08:00:00Z");
    // a day of decay and a spot move: the figures moved
    assert_ne!(after["measures"], before["measures"]);
    // an as-of time alone rolls the valuation time
    let (status, answer) = put(&server, json!({"as_of": "2026-11-22T08:00:00Z"}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(settled(&server)["valuation_time"], "2026-11-22T08:00:00Z");
    // with the expiring options gone, the surface file's 27 November smile is still past:
    // the marks are the scenario's, so the file must be brought up to date first
    for id in [
        "btc-27nov26-95000-c",
        "btc-27nov26-88000-p",
        "eth-27nov26-3200-c",
    ] {
        let path = format!("/positions/{id}");
        assert_eq!(json_call(&server.address, "DELETE", &path, None).0, 200);
    }
    let (status, answer) = put(&server, json!({"as_of": "2026-11-28T08:00:00Z"}));
    assert_eq!(
        (status, &answer["field"]),
        (400, &json!("as_of")),
        "{answer}"
    );
    assert!(
        answer["error"].as_str().unwrap().contains("surface.csv"),
        "{answer}"
    );
    drop(server);

    let server = serve(&scenario, &db);
    assert_eq!(
        settled(&server)["valuation_time"],
        "2026-11-22T08:00:00Z",
        "kept"
    );
    drop(server);

    // a scenario that pins its valuation time takes no as-of time
    let toml = std::fs::read_to_string(&scenario).unwrap();
    let pinned = dir.path().join("pinned.toml");
    std::fs::write(
        &pinned,
        toml.replacen(
            "[run]\n",
            "[run]\nvaluation_time = \"2026-11-20T08:00:00Z\"\n",
            1,
        ),
    )
    .unwrap();
    let server = serve(&pinned, &dir.path().join("pinned.db"));
    assert_eq!(settled(&server)["valuation_time"], "2026-11-20T08:00:00Z");
    let (status, answer) = put(&server, json!({"as_of": "2026-11-21T08:00:00Z"}));
    assert_eq!(
        (status, &answer["field"]),
        (400, &json!("as_of")),
        "{answer}"
    );
    drop(server);
    // the pin wins over an as-of time stored before it
    let server = serve(&pinned, &db);
    assert_eq!(settled(&server)["valuation_time"], "2026-11-20T08:00:00Z");
}

/// `--import` into a used database adds the ids it never held; an id it holds under other
/// fields stops the start, naming the file and the id (nothing imported).
#[test]
fn an_import_conflicting_with_the_store_is_refused() {
    let dir = TempDir::new().unwrap();
    let scenario = fund_copy(dir.path());
    let db = dir.path().join("db");
    drop(serve(&scenario, &db));
    let positions = std::fs::read_to_string(dir.path().join("positions.csv")).unwrap();
    let changed = dir.path().join("changed.csv");
    let line = positions
        .lines()
        .find(|l| l.starts_with("btc-spot-binance,"))
        .unwrap();
    let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
    cells[3] = "99".into();
    std::fs::write(&changed, positions.replace(line, &cells.join(","))).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tailrisk"))
        .args([
            "serve",
            scenario.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--db",
            db.to_str().unwrap(),
            "--import",
            changed.to_str().unwrap(),
        ])
        .args(["--paths", "2000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "bad input: {stderr}");
    assert!(
        stderr.contains("changed.csv") && stderr.contains("'btc-spot-binance'"),
        "{stderr}"
    );
    // the database is as it was: the service starts on it
    let server = serve(&scenario, &db);
    assert_eq!(settled(&server)["positions"], 50);
}
