//! `refund_review serve`: the engine and a small JSON API on 127.0.0.1.
//!
//! | method and path                 | body / answer                                              |
//! |---------------------------------|------------------------------------------------------------|
//! | `POST /reviews`                 | `{"ticket_id", "run_id"?}` → `{"run_id", "status"}`        |
//! | `POST /reviews/{run}/decision`  | `{"status", "reviewer_id", "reason", "approved_amount_cents"?, "dedupe_key"?, "wait_id"?}` → `{"signal": "delivered" \| "buffered" \| "duplicate" \| "stale"}` |
//! | `GET /reviews/{run}`            | `{"run_id", "status", "outcome"?}`                          |
//! | `GET /reviews/{run}/trace`      | the run's trace events, oldest first                       |
//! | `GET /pending`                  | runs waiting for a decision, with ticket, amount, deadline |
//! | `GET /ledger`                   | the payment ledger and the step-execution ledger           |
//!
//! Errors answer `{"error": "<one line>"}` with 400 (malformed request), 404 (unknown run),
//! 409 (finished run, conflicting start), 422 (a decision of the wrong shape) or 500.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use workflow_runtime::{Engine, EngineError, RunStatus, Signal};

use super::clock::OffsetClock;
use super::domain::DecisionStatus;
use super::ledger::{PaymentEntry, StepExecution, read_entries};
use super::{Services, refund_review};

/// The name of the signal carrying a reviewer's decision.
pub const DECISION_SIGNAL: &str = "refund_decision";

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the store and the ledgers live.
    pub data_dir: PathBuf,
    /// Where to listen; port 0 picks a free port (printed on the first line of stdout).
    pub addr: SocketAddr,
}

struct App {
    engine: Engine,
    data_dir: PathBuf,
}

/// An API error: a status code and one line.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::UnknownRun { .. } => StatusCode::NOT_FOUND,
            EngineError::RunFinished { .. }
            | EngineError::Conflict { .. }
            | EngineError::Incompatible { .. } => StatusCode::CONFLICT,
            EngineError::PayloadMismatch { .. }
            | EngineError::WrongSignal { .. }
            | EngineError::UnknownWait { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("the request body must be a JSON object")),
        Err(e) => Err(bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn string_field(
    body: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad_request(format!(
            "`{name}` must be a string, got {other}"
        ))),
    }
}

/// Opens the engine in `data_dir`, resuming every review in flight, and serves the API until
/// Ctrl-C.
///
/// # Errors
/// If the data directory, the store or the listener cannot be opened.
pub async fn serve(opts: ServeOptions) -> Result<(), String> {
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", opts.data_dir.display()))?;
    let services =
        Services::in_dir(&opts.data_dir).map_err(|e| format!("cannot open the ledgers: {e}"))?;
    let clock = OffsetClock::from_env()?;
    let engine = Engine::builder()
        .register(refund_review)
        .data(services)
        .clock(clock)
        .open(store_path(&opts.data_dir))
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The first line of stdout is the address; the demo and the tests read it.
    println!("listening on http://{addr}");
    if clock.offset_ms() > 0 {
        println!("clock shifted forward by {} s", clock.offset_ms() / 1_000);
    }
    let app = Arc::new(App {
        engine: engine.clone(),
        data_dir: opts.data_dir.clone(),
    });
    let router = Router::new()
        .route("/reviews", post(start_review))
        .route("/reviews/{run_id}", get(review_status))
        .route("/reviews/{run_id}/decision", post(decide))
        .route("/reviews/{run_id}/trace", get(trace))
        .route("/pending", get(pending))
        .route("/ledger", get(ledger))
        .with_state(app);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string());
    engine.shutdown().await;
    result
}

/// The store file inside a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("engine.redb")
}

async fn start_review(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body = parse_body(&body)?;
    let ticket_id = string_field(&body, "ticket_id")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| bad_request("`ticket_id` is required"))?;
    let run_id = string_field(&body, "run_id")?.unwrap_or_else(|| format!("review-{ticket_id}"));
    app.engine
        .start(refund_review, run_id.clone(), ticket_id)
        .await?;
    let status = app.engine.status(&run_id)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "run_id": run_id, "status": status })),
    ))
}

async fn decide(
    State(app): State<Arc<App>>,
    UrlPath(run_id): UrlPath<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body = parse_body(&body)?;
    let status_text = string_field(&body, "status")?.ok_or_else(|| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`status` is required: approved, rejected or request_changes".into(),
        )
    })?;
    let status: DecisionStatus = serde_json::from_value(Value::String(status_text.clone()))
        .map_err(|_| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "`status` must be approved, rejected or request_changes, not `{status_text}`"
                ),
            )
        })?;
    let reviewer = string_field(&body, "reviewer_id")?
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "`reviewer_id` is required".into(),
            )
        })?;
    let reason = string_field(&body, "reason")?.unwrap_or_default();
    if status != DecisionStatus::Approved && reason.trim().is_empty() {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`reason` is required to reject or request changes".into(),
        ));
    }
    let mut payload = json!({ "status": status, "reviewer_id": reviewer, "reason": reason });
    if let Some(amount) = body.get("approved_amount_cents").filter(|v| !v.is_null()) {
        payload["approved_amount_cents"] = amount.clone();
    }
    let mut signal = Signal::new(DECISION_SIGNAL, payload);
    if let Some(key) = string_field(&body, "dedupe_key")? {
        signal = signal.dedupe_key(key);
    }
    if let Some(wait) = string_field(&body, "wait_id")? {
        signal = signal.for_wait(wait);
    }
    let outcome = app.engine.send(&run_id, signal).await?;
    Ok(axum::Json(json!({ "run_id": run_id, "signal": outcome })))
}

async fn review_status(
    State(app): State<Arc<App>>,
    UrlPath(run_id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let status = app.engine.status(&run_id)?;
    let outcome = match status {
        RunStatus::Completed | RunStatus::Failed { .. } => {
            match app.engine.handle(refund_review, &run_id)?.result().await {
                Ok(Ok(outcome)) => Some(serde_json::to_value(outcome).unwrap_or(Value::Null)),
                Ok(Err(e)) => Some(json!({ "outcome": "failed", "error": e.to_string() })),
                Err(e) => Some(json!({ "outcome": "failed", "error": e.to_string() })),
            }
        }
        _ => None,
    };
    Ok(axum::Json(
        json!({ "run_id": run_id, "status": status, "outcome": outcome }),
    ))
}

async fn trace(
    State(app): State<Arc<App>>,
    UrlPath(run_id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(app.engine.trace(&run_id)?))
}

async fn pending(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(app.engine.pending()?))
}

async fn ledger(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    let internal = |e: std::io::Error| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read a ledger: {e}"),
        )
    };
    let payments: Vec<PaymentEntry> =
        read_entries(&app.data_dir.join("payments.jsonl")).map_err(internal)?;
    let steps: Vec<StepExecution> =
        read_entries(&app.data_dir.join("steps.jsonl")).map_err(internal)?;
    Ok(axum::Json(json!({ "payments": payments, "steps": steps })))
}
