//! The HTTP/JSON API (axum): routes, request parsing and JSON errors.
//!
//! Every refusal is a 4xx with `{"error": "...", "field": "..."}` naming the field at fault
//! (`trades[2].strike`, `BTC.spot`, `limits[0].confidence`); nothing of a refused request
//! is applied.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::service::limits::Limit;
use crate::service::live::{
    ChangeError, Live, MarketChange, Refusal, ServiceEvent, POSITION_COLUMNS,
};
use crate::service::store::{MarketUpdate, StoredPosition};
use crate::time::parse_instant;

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Most trades, or position ids to remove, one request may carry (a what-if holds every
/// worker while it runs).
pub const MAX_ITEMS: usize = 1000;

/// The service's routes on `live`.
pub fn router(live: Arc<Live>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/risk", get(risk))
        .route("/history", get(history))
        .route("/trades", post(add_trades))
        .route("/positions/{id}", delete(remove_position))
        .route("/market", axum::routing::put(update_market))
        .route("/whatif", post(what_if))
        .route("/limits", get(limits).put(replace_limits))
        .route("/events", get(events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(live)
}

/// A JSON error answer.
struct ApiError {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(field) = self.field {
            body["field"] = Value::String(field);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
            field: r.field,
            message: r.message,
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Refused(r) => r.into(),
            ChangeError::Failed(e) => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                field: None,
                message: e.to_string(),
            },
        }
    }
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    Refusal::bad(field, message).into()
}

/// Counts a refused request and answers it.
fn answer(live: &Live, result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(response) => response,
        Err(e) => {
            if e.status.is_client_error() {
                live.counters.rejected.fetch_add(1, Ordering::Relaxed);
            }
            e.into_response()
        }
    }
}

/// The JSON of a request body declared `application/json`, or why it is none (a body of
/// another type is refused, so that a web page cannot post to the service unasked).
fn body_json(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            field: Some("Content-Type".into()),
            message: "send the body as JSON with Content-Type: application/json".into(),
        });
    }
    let bytes = body.map_err(|rejection| ApiError {
        status: rejection.status(),
        field: Some("body".into()),
        message: format!(
            "the request body could not be read (at most {MAX_BODY_BYTES} bytes): {}",
            rejection.body_text()
        ),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        field: Some("body".into()),
        message: format!("malformed JSON: {e}"),
    })
}

/// Runs CPU work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            field: None,
            message: format!("the request failed: {e}"),
        })
    })
}

/// Trades as stored cells, from `value[key]` (or `value` itself when it is an array);
/// fields are strings or numbers, named `key[i].field` in errors.
fn trades_of(value: &Value, key: &str) -> Result<Vec<StoredPosition>, ApiError> {
    let list = match value {
        Value::Array(list) => list,
        Value::Object(object) => match object.get(key) {
            Some(Value::Array(list)) => list,
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(_) => return Err(bad(key, "must be an array of trades")),
        },
        _ => return Err(bad(key, "the body must be an object or an array of trades")),
    };
    if list.len() > MAX_ITEMS {
        return Err(bad(
            key,
            format!("at most {MAX_ITEMS} trades a request, found {}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, trade)| {
            let Value::Object(fields) = trade else {
                return Err(bad(format!("{key}[{i}]"), "a trade is a JSON object"));
            };
            let at = format!("{key}[{i}]");
            let mut cells = cells_of(fields, &at)?;
            let id = match cells.get("id").map(|id| id.trim()) {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => return Err(bad(format!("{at}.id"), "is required")),
            };
            cells.insert("id".into(), id.clone());
            Ok(StoredPosition { id, cells })
        })
        .collect()
}

/// A trade's fields as text cells: a number printed as the shortest decimal of its f64 (so
/// that `100` and `100.0` are one cell, and it parses back to the same f64).
fn cells_of(fields: &Map<String, Value>, at: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut cells = BTreeMap::new();
    for (name, value) in fields {
        if !POSITION_COLUMNS.contains(&name.as_str()) {
            return Err(bad(
                format!("{at}.{name}"),
                format!(
                    "unknown field (the positions file's columns: {})",
                    POSITION_COLUMNS.join(", ")
                ),
            ));
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |x| x.to_string()),
            _ => return Err(bad(format!("{at}.{name}"), "must be a string or a number")),
        };
        cells.insert(name.clone(), text);
    }
    Ok(cells)
}

async fn add_trades(
    State(live): State<Arc<Live>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let trades = trades_of(&body_json(&headers, body)?, "trades")?;
        if trades.is_empty() {
            return Err(bad("trades", "no trade given"));
        }
        let worker = live.clone();
        let (version, added) =
            blocking(move || worker.add_trades(trades).map_err(ApiError::from)).await?;
        Ok(Json(json!({ "version": version, "added": added })).into_response())
    }
    .await;
    answer(&live, result)
}

async fn remove_position(State(live): State<Arc<Live>>, Path(id): Path<String>) -> Response {
    let worker = live.clone();
    let result = blocking(move || worker.remove_position(&id).map_err(ApiError::from))
        .await
        .map(|version| Json(json!({ "version": version })).into_response());
    answer(&live, result)
}

/// `{"as_of": "2026-11-21T08:00:00Z", "BTC": {"spot": 95000, "atm_vol": 0.55}, …}` as
/// market updates and the market's new as-of time (optional).
fn market_updates(value: &Value) -> Result<MarketChange, ApiError> {
    let Value::Object(fields) = value else {
        return Err(bad(
            "market",
            "the body maps underlyings to {\"spot\": …, \"atm_vol\": …}",
        ));
    };
    let as_of =
        match fields.get("as_of") {
            None => None,
            Some(text) => Some(text.as_str().and_then(|t| parse_instant(t, 0)).ok_or_else(
                || {
                    bad(
                        "as_of",
                        format!(
                            "must be an ISO 8601 UTC time such as 2026-11-21T08:00:00Z, found \
                             {text}"
                        ),
                    )
                },
            )?),
        };
    let underlyings: Vec<(&String, &Value)> =
        fields.iter().filter(|(name, _)| *name != "as_of").collect();
    if underlyings.is_empty() && as_of.is_none() {
        return Err(bad("market", "no update given"));
    }
    let updates = underlyings
        .into_iter()
        .map(|(underlying, update)| {
            let Value::Object(fields) = update else {
                return Err(bad(
                    underlying.clone(),
                    "must be an object with spot and/or atm_vol",
                ));
            };
            let mut spot = None;
            let mut atm_vol = None;
            for (name, value) in fields {
                let field = format!("{underlying}.{name}");
                let number = value
                    .as_f64()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| {
                        bad(
                            field.clone(),
                            format!("must be a number above 0, found {value}"),
                        )
                    })?;
                match name.as_str() {
                    "spot" => spot = Some(number),
                    "atm_vol" => atm_vol = Some(number),
                    _ => return Err(bad(field, "unknown field (spot and atm_vol can move)")),
                }
            }
            if spot.is_none() && atm_vol.is_none() {
                return Err(bad(underlying.clone(), "give spot and/or atm_vol"));
            }
            Ok(MarketUpdate {
                underlying: underlying.clone(),
                spot,
                atm_vol,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(MarketChange { updates, as_of })
}

async fn update_market(
    State(live): State<Arc<Live>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let change = market_updates(&body_json(&headers, body)?)?;
        let worker = live.clone();
        let version =
            blocking(move || worker.update_market(change).map_err(ApiError::from)).await?;
        Ok(Json(json!({ "version": version })).into_response())
    }
    .await;
    answer(&live, result)
}

async fn what_if(
    State(live): State<Arc<Live>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let value = body_json(&headers, body)?;
        let trades = trades_of(&value, "trades")?;
        let remove: Vec<String> = match value.get("remove") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) if ids.len() > MAX_ITEMS => {
                return Err(bad(
                    "remove",
                    format!("at most {MAX_ITEMS} ids a request, found {}", ids.len()),
                ))
            }
            Some(Value::Array(ids)) => ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    id.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(format!("remove[{i}]"), "must be a position id"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("remove", "must be an array of position ids")),
        };
        if trades.is_empty() && remove.is_empty() {
            return Err(bad("trades", "give trades and/or positions to remove"));
        }
        let _turn = live.what_if_turn.acquire().await.map_err(|e| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            field: None,
            message: format!("the service is stopping: {e}"),
        })?;
        let worker = live.clone();
        let (version, result) =
            blocking(move || worker.what_if(trades, remove).map_err(ApiError::from)).await?;
        let mut body = serde_json::to_value(&result).expect("a what-if serialises");
        body["version"] = json!(version);
        Ok(Json(body).into_response())
    }
    .await;
    answer(&live, result)
}

async fn risk(State(live): State<Arc<Live>>) -> Response {
    match live.completed() {
        Some(completed) => Json(&completed.risk).into_response(),
        None => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            field: None,
            message: "no run has completed yet".into(),
        }
        .into_response(),
    }
}

async fn history(State(live): State<Arc<Live>>) -> Response {
    Json(json!({ "history": live.history() })).into_response()
}

async fn limits(State(live): State<Arc<Live>>) -> Response {
    let (version, statuses) = live.limits();
    let breaches: Vec<_> = statuses.iter().filter(|s| s.breached).collect();
    Json(json!({ "version": version, "limits": statuses, "breaches": breaches })).into_response()
}

async fn replace_limits(
    State(live): State<Arc<Live>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let value = body_json(&headers, body)?;
        let list = match &value {
            Value::Array(_) => value.clone(),
            Value::Object(o) => o
                .get("limits")
                .cloned()
                .ok_or_else(|| bad("limits", "is required"))?,
            _ => return Err(bad("limits", "must be an array of limits")),
        };
        let Value::Array(items) = list else {
            return Err(bad("limits", "must be an array of limits"));
        };
        let limits: Vec<Limit> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_json::from_value(item).map_err(|e| bad(format!("limits[{i}]"), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let worker = live.clone();
        let version =
            blocking(move || worker.replace_limits(limits).map_err(ApiError::from)).await?;
        Ok(Json(json!({ "version": version })).into_response())
    }
    .await;
    answer(&live, result)
}

async fn events(
    State(live): State<Arc<Live>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let receiver = live.subscribe();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => {
                let name = match &event {
                    ServiceEvent::RiskRecomputed { .. } => "risk_recomputed",
                    ServiceEvent::LimitBreached { .. } => "limit_breached",
                    ServiceEvent::LimitCleared { .. } => "limit_cleared",
                    ServiceEvent::RunFailed { .. } => "run_failed",
                };
                let data = serde_json::to_string(&event).expect("an event serialises");
                Event::default().event(name).data(data)
            }
            // a client too slow for the stream is told how many events it missed, so it
            // can read the state again (GET /risk, /limits)
            Err(RecvError::Lagged(missed)) => {
                let data = json!({ "missed": missed }).to_string();
                Event::default().event("lagged").data(data)
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn health(State(live): State<Arc<Live>>) -> Response {
    let risk_version = live.completed().map(|c| c.version);
    let failure = live.last_failure();
    let status = match (&risk_version, &failure) {
        (_, Some(_)) => "run_failed",
        (Some(_), None) => "ok",
        (None, None) => "starting",
    };
    Json(json!({
        "status": status,
        "input_version": live.input_version(),
        "risk_version": risk_version,
        "last_failure": failure.map(|(version, error)| json!({"version": version, "error": error})),
    }))
    .into_response()
}

/// Prometheus text exposition of the service's figures and counters.
async fn metrics(State(live): State<Arc<Live>>) -> Response {
    let mut text = String::new();
    let c = &live.counters;
    let mut gauge = |name: &str, help: &str, kind: &str, lines: Vec<(String, f64)>| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(text, "{name}{labels} {value}");
        }
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    let scalars = [
        (
            "tailrisk_input_version",
            "Changes accepted (trades, market, limits).",
            "gauge",
            live.input_version() as f64,
        ),
        (
            "tailrisk_runs_total",
            "Risk runs completed.",
            "counter",
            load(&c.runs),
        ),
        (
            "tailrisk_runs_failed_total",
            "Risk runs failed.",
            "counter",
            load(&c.failed_runs),
        ),
        (
            "tailrisk_last_run_seconds",
            "Seconds the last run took.",
            "gauge",
            load(&c.last_run_micros) / 1e6,
        ),
        (
            "tailrisk_whatif_total",
            "What-ifs answered.",
            "counter",
            load(&c.what_ifs),
        ),
        (
            "tailrisk_whatif_seconds_total",
            "Seconds spent answering what-ifs.",
            "counter",
            load(&c.what_if_micros) / 1e6,
        ),
        (
            "tailrisk_rejected_requests_total",
            "Requests refused as bad input (4xx).",
            "counter",
            load(&c.rejected),
        ),
    ];
    for (name, help, kind, value) in scalars {
        gauge(name, help, kind, vec![(String::new(), value)]);
    }
    if let Some(completed) = live.completed() {
        let level =
            |m: &crate::risk::measures::RiskMeasure| format!("{{confidence=\"{}\"}}", m.confidence);
        let measures = &completed.risk.measures;
        gauge(
            "tailrisk_risk_version",
            "Input version of the figures served.",
            "gauge",
            vec![(String::new(), completed.version as f64)],
        );
        gauge(
            "tailrisk_var",
            "Value-at-Risk, reporting currency (positive = loss).",
            "gauge",
            measures.iter().map(|m| (level(m), m.var)).collect(),
        );
        gauge(
            "tailrisk_es",
            "Expected Shortfall, reporting currency (positive = loss).",
            "gauge",
            measures.iter().map(|m| (level(m), m.es)).collect(),
        );
        gauge(
            "tailrisk_limit_utilisation",
            "Figure over limit, per limit.",
            "gauge",
            completed
                .limits
                .iter()
                .map(|s| {
                    let l = &s.limit;
                    let labels = format!(
                        "{{scope=\"{}\",name=\"{}\",measure=\"{}\",confidence=\"{}\"}}",
                        serde_json::to_value(l.scope)
                            .expect("scope")
                            .as_str()
                            .unwrap_or(""),
                        label_value(l.name.as_deref().unwrap_or("")),
                        serde_json::to_value(l.measure)
                            .expect("measure")
                            .as_str()
                            .unwrap_or(""),
                        l.confidence.map_or(String::new(), |a| a.to_string())
                    );
                    (labels, s.utilisation)
                })
                .collect(),
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn method_not_allowed(method: axum::http::Method) -> Response {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        field: Some("method".into()),
        message: format!("this route does not take {method} (see the README's API table)"),
    }
    .into_response()
}

async fn not_found() -> Response {
    ApiError {
        status: StatusCode::NOT_FOUND,
        field: None,
        message: "no such route (see the README's API table)".into(),
    }
    .into_response()
}
