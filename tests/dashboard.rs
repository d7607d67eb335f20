//! The dashboard `tailrisk serve` serves, in headless Chromium: its figures, limits,
//! contributors, error bars and what-if answers are those of the API, the chart gains a
//! point when the book changes, and the page loads nothing from anywhere but the service.

use serde_json::{json, Value};
use tempfile::TempDir;

#[path = "common/http.rs"]
mod http;
#[path = "common/serve.rs"]
mod serve;
use serve::{fund_copy, json_call, serve, serve_on, settled};
#[path = "common/browser.rs"]
mod browser;
use browser::Browser;

/// What the page shows, read from its DOM: each table's rows (header left out) as cell
/// texts, the limit bars, and the chart's points and error bars.
const READ_PAGE: &str = r##"(() => {
  const rows = (id) => [...document.querySelectorAll("#" + id + " tr")].slice(1)
    .map((tr) => [...tr.children].map((td) => td.textContent));
  return {
    status: document.getElementById("status").textContent,
    measures: rows("measures"), limits: rows("limits"), contributors: rows("contributors"),
    bars: [...document.querySelectorAll("#limits .fill")]
      .map((f) => ({width: f.style.width, over: f.classList.contains("over")})),
    points: [...document.querySelectorAll("#chart circle")]
      .map((c) => ({x: +c.getAttribute("cx"), y: +c.getAttribute("cy"), colour: c.getAttribute("fill")})),
    bars_of_error: [...document.querySelectorAll("#chart line.error")]
      .map((l) => ({x: +l.getAttribute("x1"), low: +l.getAttribute("y1"), high: +l.getAttribute("y2")})),
    axis: [...document.querySelectorAll("#chart text[text-anchor=end]")]
      .map((t) => ({y: +t.getAttribute("y") - 4, label: t.textContent})),
    whatif_status: document.getElementById("whatif-status").textContent,
    whatif: rows("whatif"),
  };
})()"##;

/// A figure as the page prints it ("1,234,567", "-12") back to a number.
fn shown(text: &Value) -> f64 {
    text.as_str()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a figure: {text}"))
}

/// The page shows `value` rounded to the decimals it prints (whole units from 100 up).
fn assert_shows(text: &Value, value: &Value) {
    let value = value.as_f64().unwrap();
    let decimals = text.as_str().unwrap().split('.').nth(1).map_or(0, str::len);
    assert!(value.abs() < 100.0 || decimals == 0, "{text} for {value}");
    assert!(
        (shown(text) - value).abs() <= 0.5 * 10f64.powi(-(decimals as i32)),
        "shows {text}, the API has {value}"
    );
}

/// Waits until the page shows the figures of input version `version`, and reads it.
fn page_at(browser: &mut Browser, version: &Value) -> Value {
    browser.wait_until(&format!(
        r##"document.getElementById("status").textContent.startsWith("version {version},")
           && document.querySelectorAll("#limits tr").length > 1"##
    ));
    browser.eval(READ_PAGE)
}

/// Fills the what-if form with `request`, presses Run and reads the page once answered.
fn what_if_in_page(browser: &mut Browser, request: &str) -> Value {
    browser.eval(&format!(
        r#"document.getElementById("whatif-status").textContent = "";
           document.getElementById("trades").value = {};
           document.getElementById("run").click();"#,
        json!(request)
    ));
    browser.wait_until(
        r#"/^(change|refused|not JSON)/.test(document.getElementById("whatif-status").textContent)"#,
    );
    browser.eval(READ_PAGE)
}

/// The chart shows one VaR and one ES point per simulation in `history` (its last level),
/// each at the height of its figure on the value axis, with an error bar of ± 1 standard
/// error.
fn assert_chart(page: &Value, history: &[&Value]) {
    let level = history[0]["measures"].as_array().unwrap().len() - 1;
    // the value axis: its labels' values and heights give its scale, checked on every label
    let axis = page["axis"].as_array().unwrap();
    assert!(axis.len() >= 3, "{page}");
    let tick = |t: &Value| (shown(&t["label"]), t["y"].as_f64().unwrap());
    let ((v0, y0), (v1, y1)) = (tick(&axis[0]), tick(&axis[axis.len() - 1]));
    let pixels_per_unit = (y0 - y1) / (v1 - v0);
    assert!(pixels_per_unit > 0.0, "{page}");
    let height_of = |value: f64| y0 - (value - v0) * pixels_per_unit;
    for t in axis {
        let (value, y) = tick(t);
        assert!((y - height_of(value)).abs() < 1e-6, "{t} off the axis");
    }
    for (colour, key) in [("#37a", "var"), ("#c63", "es")] {
        let points: Vec<&Value> = page["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["colour"] == colour)
            .collect();
        assert_eq!(
            points.len(),
            history.len(),
            "one {key} point per simulation: {page}"
        );
        assert!(points
            .windows(2)
            .all(|w| w[0]["x"].as_f64() < w[1]["x"].as_f64()));
        for (point, risk) in points.iter().zip(history.iter().copied()) {
            let figure = risk["measures"][level][key].as_f64().unwrap();
            let stderr = risk["measures"][level][format!("{key}_stderr")]
                .as_f64()
                .unwrap();
            let y = point["y"].as_f64().unwrap();
            assert!(
                (y - height_of(figure)).abs() < 1e-6,
                "{key} {figure} at {y}"
            );
            // its error bar is centred on it and spans ± 1 standard error
            let (low, high) = page["bars_of_error"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["x"] == point["x"])
                .map(|b| (b["low"].as_f64().unwrap(), b["high"].as_f64().unwrap()))
                .find(|(low, high)| ((low + high) / 2.0 - y).abs() < 1e-9)
                .unwrap_or_else(|| panic!("no error bar centred on {point}"));
            let drawn = (low - high) / 2.0 / pixels_per_unit;
            assert!(
                (drawn - stderr).abs() < 1e-6 * stderr,
                "{key}: ± {drawn} drawn, ± {stderr} estimated"
            );
        }
    }
}

#[test]
fn the_dashboard_shows_the_apis_figures_limits_and_what_ifs() {
    let dir = TempDir::new().unwrap();
    let (scenario, db) = (fund_copy(dir.path()), dir.path().join("db"));
    let server = serve(&scenario, &db);
    let first = settled(&server);
    let var99 = first["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["confidence"] == 0.99)
        .expect("the sample reports VaR 99%")["var"]
        .as_f64()
        .unwrap();
    // one limit breached (VaR 99% capped at half of it), two not
    let limits = json!([
        {"scope": "total", "measure": "var", "confidence": 0.99, "limit": var99 / 2.0},
        {"scope": "total", "measure": "es", "confidence": 0.975, "limit": var99 * 10.0},
        {"scope": "underlying", "name": "BTC", "measure": "delta", "limit": 1e9},
    ]);
    assert_eq!(
        json_call(&server.address, "PUT", "/limits", Some(limits)).0,
        200
    );
    let risk = settled(&server);
    let (_, limits) = json_call(&server.address, "GET", "/limits", None);

    let mut browser = Browser::launch();
    let origin = format!("http://{}/", server.address);
    browser.open(&origin);
    let page = page_at(&mut browser, &risk["version"]);

    // VaR and ES per level with their standard errors
    let measures = risk["measures"].as_array().unwrap();
    assert_eq!(page["measures"].as_array().unwrap().len(), measures.len());
    for (row, m) in page["measures"].as_array().unwrap().iter().zip(measures) {
        assert_eq!(row[0].as_str().unwrap(), m["confidence"].to_string());
        for (cell, key) in [(1, "var"), (2, "var_stderr"), (3, "es"), (4, "es_stderr")] {
            assert_shows(&row[cell], &m[key]);
        }
    }

    // the largest contributors: the ten largest |component ES|, largest first
    let mut contributions = risk["contributions"].as_array().unwrap().clone();
    contributions.sort_by(|a, b| {
        let size = |c: &Value| c["component_es"].as_f64().unwrap().abs();
        size(b).total_cmp(&size(a))
    });
    contributions.truncate(10);
    let shown_contributors = page["contributors"].as_array().unwrap();
    assert_eq!(shown_contributors.len(), contributions.len());
    for (row, c) in shown_contributors.iter().zip(&contributions) {
        assert_eq!(row[0], c["key"]);
        assert_shows(&row[1], &c["component_es"]);
        assert_shows(&row[2], &c["component_es_stderr"]);
    }

    // limit utilisation: figure, ceiling, percentage and a bar, red where breached
    let statuses = limits["limits"].as_array().unwrap();
    let rows = page["limits"].as_array().unwrap();
    assert_eq!(statuses.len(), 3);
    assert_eq!(rows.len(), 3);
    assert_eq!(page["bars"].as_array().unwrap().len(), 3);
    for ((row, bar), s) in rows
        .iter()
        .zip(page["bars"].as_array().unwrap())
        .zip(statuses)
    {
        let utilisation = s["utilisation"].as_f64().unwrap();
        let breached = s["breached"].as_bool().unwrap();
        assert_shows(&row[1], &s["value"]);
        assert_shows(&row[2], &s["limit"]);
        let label = format!(
            "{:.1}%{}",
            100.0 * utilisation,
            if breached { " breached" } else { "" }
        );
        assert_eq!(row[3].as_str().unwrap(), label);
        // the style's width reads back to 6 significant digits
        let drawn: f64 = bar["width"]
            .as_str()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        let expected = (100.0 * utilisation).min(100.0);
        assert!((drawn - expected).abs() < 1e-3, "{expected}% vs {bar}");
        assert_eq!(bar["over"].as_bool().unwrap(), breached);
    }
    assert_eq!(statuses.iter().filter(|s| s["breached"] == true).count(), 1);

    // the book changes: the chart gains the new version's point, each with its error bar
    let trade = json!({"trades": [{"id": "straddle-put", "kind": "option", "underlying": "BTC",
        "quantity": -40, "option_type": "put", "strike": 92000, "expiry": "2026-11-27",
        "venue": "deribit", "book": "vol"}]});
    assert_eq!(
        json_call(&server.address, "POST", "/trades", Some(trade)).0,
        200
    );
    let later = settled(&server);
    let page = page_at(&mut browser, &later["version"]);
    assert_chart(&page, &[&risk, &later]);
    // the service keeps the history: a page opened now draws the same chart
    let (_, history) = json_call(&server.address, "GET", "/history", None);
    let points = history["history"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{history}");
    for (point, run) in points.iter().zip([&risk, &later]) {
        assert_eq!(point["computed_at"], run["computed_at"]);
        assert_eq!(point["measures"], run["measures"]);
    }
    browser.open(&origin);
    let reopened = page_at(&mut browser, &later["version"]);
    assert_chart(&reopened, &[&risk, &later]);

    // the what-if form: the same answer as the API's on the same live paths
    let request = json!({"trades": [
        {"id": "w1", "kind": "option", "underlying": "ETH", "quantity": 200, "option_type": "call",
         "strike": 3500, "expiry": "2026-12-25", "venue": "deribit", "book": "vol"},
        {"id": "w2", "kind": "spot", "underlying": "BTC", "quantity": -3}],
        "remove": ["btc-spot-binance"]});
    let page = what_if_in_page(&mut browser, &request.to_string());
    let (status, answer) = json_call(&server.address, "POST", "/whatif", Some(request));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        page["whatif_status"].as_str().unwrap(),
        format!(
            "change on the live paths of version {} (± 1 standard error)",
            answer["version"]
        )
    );
    let rows = page["whatif"].as_array().unwrap();
    assert_eq!(rows.len(), measures.len());
    for (i, row) in rows.iter().enumerate() {
        let (after, change) = (&answer["after"]["measures"][i], &answer["change"][i]);
        assert_eq!(row[0].as_str().unwrap(), change["confidence"].to_string());
        assert_shows(&row[1], &after["var"]);
        assert_shows(&row[2], &change["var"]);
        assert_shows(&row[3], &change["var_stderr"]);
        assert_shows(&row[4], &after["es"]);
        assert_shows(&row[5], &change["es"]);
        assert_shows(&row[6], &change["es_stderr"]);
    }
    // a plain array of trades is a what-if too; a refusal shows the field at fault
    let page = what_if_in_page(
        &mut browser,
        r#"[{"id": "x", "kind": "spot", "underlying": "XYZ", "quantity": 1}]"#,
    );
    let refusal = page["whatif_status"].as_str().unwrap();
    assert!(refusal.starts_with("refused: "), "{refusal}");
    assert!(refusal.ends_with("(trades[0].underlying)"), "{refusal}");
    assert!(page["whatif"].as_array().unwrap().is_empty());
    let page = what_if_in_page(&mut browser, "[{oops");
    assert!(page["whatif_status"]
        .as_str()
        .unwrap()
        .starts_with("not JSON: "));

    // the service restarts (versions start again at 1): the page says it lost the service,
    // then shows what the new one serves
    let address = server.address.clone();
    drop(server);
    browser.wait_until(
        r#"document.getElementById("status").className === "stale"
           && document.getElementById("status").textContent.startsWith("disconnected")"#,
    );
    let server = serve_on(&scenario, &db, &address);
    let restarted = settled(&server);
    assert_eq!(restarted["version"], 1);
    let page = page_at(&mut browser, &restarted["version"]);
    assert!(
        page["status"]
            .as_str()
            .unwrap()
            .contains(restarted["computed_at"].as_str().unwrap()),
        "{page}"
    );
    for (row, m) in page["measures"]
        .as_array()
        .unwrap()
        .iter()
        .zip(restarted["measures"].as_array().unwrap())
    {
        assert_shows(&row[1], &m["var"]);
        assert_shows(&row[3], &m["es"]);
    }
    assert_chart(&page, &[&restarted]);

    // nothing from elsewhere, no script errors
    let requests = browser.events_named("Network.requestWillBeSent");
    assert!(requests.len() >= 5, "{requests:?}");
    for request in requests {
        let url = request["request"]["url"].as_str().unwrap();
        assert!(url.starts_with(&origin), "the page fetched {url}");
    }
    assert!(
        browser.events_named("Runtime.exceptionThrown").is_empty(),
        "{:?}",
        browser.events_named("Runtime.exceptionThrown")
    );
    let errors: Vec<_> = browser
        .events_named("Runtime.consoleAPICalled")
        .into_iter()
        .filter(|e| e["type"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
