//! An admin HTTP API for operating the runs of a [`workflow_runtime::Engine`]: list and filter
//! runs, read a run's state, pending waits and trace, signal, cancel, terminate, retry and purge
//! runs, list, pause and resume schedules, read versions, incompatible runs, diagrams and
//! metrics.
//!
//! The store is locked to the process that owns it, so operations run inside that process:
//! mount [`router`] into the application's own axum `Router`, or [`serve`] it alone on a
//! loopback address.
//!
//! ```no_run
//! # async fn demo(engine: workflow_runtime::Engine) -> std::io::Result<()> {
//! use workflow_admin::AdminConfig;
//!
//! let config = AdminConfig::new("a-long-random-token");
//! // Mounted under `/admin` of the application's own server:
//! let app = axum::Router::new().nest("/admin", workflow_admin::router(engine.clone(), config.clone()));
//! // Or alone, on 127.0.0.1:7070 by default:
//! workflow_admin::serve(engine, config).await?;
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Security
//! Every request needs `Authorization: Bearer <token>` (compared in constant time). Requests
//! that change something must be `POST` with a JSON body (`Content-Type: application/json`),
//! which a cross-site HTML form cannot send, and are refused when the browser says they come
//! from another site (`Sec-Fetch-Site: cross-site`) or from an `Origin` other than this host.
//! Errors are JSON: `{"error": {"code": "...", "message": "..."}}`. The one exception to the
//! token is `GET /console`, the web console: a static page with no data in it, which asks for
//! the token and sends it with each call it makes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use workflow_runtime::{
    Engine, EngineError, OpsError, RunFilter, ScheduleError, Signal, SignalError,
};

pub mod client;
pub mod diagram;

/// The address [`serve`] binds by default: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7070";

/// How the admin API is protected and where it listens.
#[derive(Clone)]
pub struct AdminConfig {
    token: Arc<str>,
    addr: SocketAddr,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("AdminConfig")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AdminConfig {
    /// Requests must carry `Authorization: Bearer <token>`; listens on [`DEFAULT_ADDR`].
    ///
    /// # Panics
    /// If the token is shorter than 16 bytes: a guessable token protects nothing.
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        assert!(
            token.len() >= 16,
            "the admin token must be at least 16 bytes long"
        );
        Self {
            token: token.into(),
            addr: DEFAULT_ADDR.parse().expect("a valid default address"),
        }
    }

    /// Listens on this address instead (a non-loopback address exposes the API to the
    /// network: put TLS in front of it).
    #[must_use]
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }
}

#[derive(Clone)]
struct App {
    engine: Engine,
    token: Arc<str>,
}

/// The admin API as a router, to mount with `Router::nest` or serve on its own.
pub fn router(engine: Engine, config: AdminConfig) -> Router {
    let app = App {
        engine,
        token: config.token,
    };
    let api = Router::new()
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(show_run))
        .route("/runs/{id}/trace", get(trace))
        .route("/runs/{id}/signal", post(signal))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/runs/{id}/terminate", post(terminate))
        .route("/runs/{id}/retry", post(retry))
        .route("/runs/{id}/purge", post(purge_one))
        .route("/purge", post(purge_ended))
        .route("/runs/{id}/erase", post(erase_one))
        .route("/erase", post(erase_prefix))
        .route("/waits", get(waits))
        .route("/schedules", get(schedules))
        .route("/schedules/{id}/pause", post(pause_schedule))
        .route("/schedules/{id}/resume", post(resume_schedule))
        .route("/versions", get(versions))
        .route("/incompatible", get(incompatible))
        .route("/workflows", get(workflows))
        .route("/workflows/{name}/diagram", get(diagram))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app);
    // The console is a static page without data: a browser cannot attach a bearer token to a
    // navigation, so the page asks for the token and sends it with every API call it makes.
    Router::new().route("/console", get(console)).merge(api)
}

/// The web console's page.
const CONSOLE: &str = include_str!("console.html");

async fn console() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Scripts only from the page itself; no frames, so no clickjacking.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        CONSOLE,
    )
        .into_response()
}

/// Serves the admin API alone on the configured address until the process ends.
///
/// # Errors
/// The address cannot be bound, or the server fails.
pub async fn serve(engine: Engine, config: AdminConfig) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    axum::serve(listener, router(engine, config)).await
}

/// An error answered as JSON.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        let (status, code) = match &e {
            OpsError::UnknownRun { .. } => (StatusCode::NOT_FOUND, "unknown_run"),
            OpsError::RunFinished { .. } => (StatusCode::CONFLICT, "run_finished"),
            OpsError::NotFailed { .. } => (StatusCode::CONFLICT, "not_failed"),
            OpsError::NothingToRetry { .. } => (StatusCode::CONFLICT, "nothing_to_retry"),
            OpsError::NotPurgeable { .. } => (StatusCode::CONFLICT, "not_purgeable"),
            OpsError::NotErasable { .. } => (StatusCode::CONFLICT, "not_erasable"),
            OpsError::Incompatible { .. } => (StatusCode::CONFLICT, "incompatible"),
            OpsError::NotRegistered { .. } => (StatusCode::CONFLICT, "not_registered"),
            OpsError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            OpsError::ShutDown => (StatusCode::SERVICE_UNAVAILABLE, "shut_down"),
            // Another worker kept the run past the wait: worth retrying later.
            OpsError::LeasedElsewhere { .. } => (StatusCode::CONFLICT, "leased_elsewhere"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let (status, code) = match &e {
            EngineError::UnknownRun { .. } => (StatusCode::NOT_FOUND, "unknown_run"),
            EngineError::ShutDown => (StatusCode::SERVICE_UNAVAILABLE, "shut_down"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "engine"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let (status, code) = match &e {
            ScheduleError::UnknownSchedule { .. } => (StatusCode::NOT_FOUND, "unknown_schedule"),
            ScheduleError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            ScheduleError::Storage(workflow_runtime::StoreError::Closed) => {
                (StatusCode::SERVICE_UNAVAILABLE, "shut_down")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<SignalError> for ApiError {
    fn from(e: SignalError) -> Self {
        let (status, code) = match &e {
            SignalError::UnknownRun { .. } => (StatusCode::NOT_FOUND, "unknown_run"),
            SignalError::UnknownWait { .. } => (StatusCode::NOT_FOUND, "unknown_wait"),
            SignalError::RunFinished { .. } => (StatusCode::CONFLICT, "run_finished"),
            SignalError::WrongSignal { .. } => (StatusCode::CONFLICT, "wrong_signal"),
            SignalError::Incompatible { .. } => (StatusCode::CONFLICT, "incompatible"),
            SignalError::NotRegistered { .. } => (StatusCode::CONFLICT, "not_registered"),
            SignalError::PayloadMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "payload_mismatch")
            }
            SignalError::InvalidName { .. } | SignalError::Codec(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            SignalError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            SignalError::ShutDown => (StatusCode::SERVICE_UNAVAILABLE, "shut_down"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        };
        Self::new(status, code, e.to_string())
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Authentication first, then the cross-site checks on requests that change something.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if same_secret(t.as_bytes(), app.token.as_bytes()) => {}
        Some(_) => {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "wrong token")
                .into_response();
        }
        None => {
            let mut res = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <token>`",
            )
            .into_response();
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
            return res;
        }
    }
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && let Err(e) = same_site(headers)
    {
        return e.into_response();
    }
    next.run(req).await
}

/// Refuses a changing request a browser sent from another site, or without a JSON body type.
fn same_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let forbidden = |m: &str| ApiError::new(StatusCode::FORBIDDEN, "cross_site", m);
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(forbidden("cross-site requests are refused"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
        if host.is_none() || origin_host != host {
            return Err(forbidden("requests from another origin are refused"));
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as `Content-Type: application/json`",
        ));
    }
    Ok(())
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body: {e}")))
}

fn query<T: DeserializeOwned>(
    q: Result<Query<T>, QueryRejection>,
    what: &str,
) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("invalid {what} query: {}", e.body_text())))
}

type Answer = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> Answer {
    Ok(axum::Json(v).into_response())
}

async fn list_runs(State(app): State<App>, q: Result<Query<RunFilter>, QueryRejection>) -> Answer {
    let filter = query(q, "run filter")?;
    ok(app.engine.runs(&filter)?)
}

async fn show_run(State(app): State<App>, Path(id): Path<String>) -> Answer {
    ok(app.engine.inspect(&id)?)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TraceQuery {
    /// Comma-separated event names (`step_completed,signal_received`).
    kind: Option<String>,
}

async fn trace(
    State(app): State<App>,
    Path(id): Path<String>,
    q: Result<Query<TraceQuery>, QueryRejection>,
) -> Answer {
    let q = query(q, "trace")?;
    let mut events = app.engine.trace(&id)?;
    if let Some(kinds) = q.kind {
        let wanted: Vec<&str> = kinds.split(',').map(str::trim).collect();
        events.retain(|e| wanted.contains(&e.kind.name()));
    }
    ok(events)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    name: String,
    #[serde(default)]
    payload: Value,
    dedupe_key: Option<String>,
    wait_id: Option<String>,
}

async fn signal(State(app): State<App>, Path(id): Path<String>, bytes: Bytes) -> Answer {
    let b: SignalBody = body(&bytes)?;
    let mut s = Signal::new(b.name, b.payload);
    if let Some(k) = b.dedupe_key {
        s = s.dedupe_key(k);
    }
    if let Some(w) = b.wait_id {
        s = s.for_wait(w);
    }
    let outcome = app.engine.send(&id, s).await?;
    ok(json!({ "outcome": outcome }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

fn reason(bytes: &Bytes) -> Result<String, ApiError> {
    let b: ReasonBody = body(bytes)?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::bad_request("give a non-empty `reason`"));
    }
    Ok(b.reason)
}

async fn cancel(State(app): State<App>, Path(id): Path<String>, bytes: Bytes) -> Answer {
    let reason = reason(&bytes)?;
    let status = app.engine.cancel(&id, &reason).await?;
    ok(json!({ "run_id": id, "status": status }))
}

async fn terminate(State(app): State<App>, Path(id): Path<String>, bytes: Bytes) -> Answer {
    let reason = reason(&bytes)?;
    app.engine.terminate(&id, &reason).await?;
    ok(json!({ "run_id": id, "status": app.engine.status(&id)? }))
}

async fn retry(State(app): State<App>, Path(id): Path<String>) -> Answer {
    app.engine.retry(&id).await?;
    ok(json!({ "run_id": id, "status": app.engine.status(&id)? }))
}

async fn purge_one(State(app): State<App>, Path(id): Path<String>) -> Answer {
    app.engine.purge(&id).await?;
    ok(json!({ "run_id": id, "purged": true }))
}

/// Erases an ended run's payloads (`Engine::erase`).
async fn erase_one(State(app): State<App>, Path(id): Path<String>) -> Answer {
    app.engine.erase(&id).await?;
    ok(json!({ "run_id": id, "erased": true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    prefix: String,
}

/// Erases every run whose id starts with a prefix (`Engine::erase_prefix`): all or none.
async fn erase_prefix(State(app): State<App>, bytes: Bytes) -> Answer {
    let b: EraseBody = body(&bytes)?;
    let erased = app.engine.erase_prefix(&b.prefix).await?;
    ok(json!({ "erased": erased }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    older_than_secs: u64,
    #[serde(default = "default_batch")]
    batch: usize,
}

fn default_batch() -> usize {
    256
}

async fn purge_ended(State(app): State<App>, bytes: Bytes) -> Answer {
    let b: PurgeBody = body(&bytes)?;
    let purged = app
        .engine
        .purge_ended(Duration::from_secs(b.older_than_secs), b.batch)
        .await?;
    ok(json!({ "purged": purged }))
}

async fn waits(State(app): State<App>) -> Answer {
    ok(app.engine.pending()?)
}

async fn schedules(State(app): State<App>) -> Answer {
    ok(app.engine.schedules()?)
}

async fn pause_schedule(State(app): State<App>, Path(id): Path<String>) -> Answer {
    ok(app.engine.pause_schedule(&id).await?)
}

async fn resume_schedule(State(app): State<App>, Path(id): Path<String>) -> Answer {
    ok(app.engine.resume_schedule(&id).await?)
}

async fn versions(State(app): State<App>) -> Answer {
    ok(app.engine.versions()?)
}

async fn incompatible(State(app): State<App>) -> Answer {
    ok(app.engine.incompatible_runs()?)
}

async fn workflows(State(app): State<App>) -> Answer {
    ok(app.engine.workflows())
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct DiagramQuery {
    /// `mermaid` (the default), `dot` or `svg`.
    format: Option<String>,
    /// For `svg`: the state to highlight, as a run's `state_name` gives it.
    current: Option<String>,
}

async fn diagram(
    State(app): State<App>,
    Path(name): Path<String>,
    q: Result<Query<DiagramQuery>, QueryRejection>,
) -> Answer {
    let q = query(q, "diagram")?;
    let Some(text) = app.engine.diagram(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_workflow",
            format!("workflow `{name}` is not registered"),
        ));
    };
    let graph = || {
        diagram::StateGraph::from_mermaid(text).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "diagram",
                format!("the diagram of `{name}` cannot be read: {e}"),
            )
        })
    };
    let (content_type, body) = match q.format.as_deref().unwrap_or("mermaid") {
        "mermaid" => ("text/plain; charset=utf-8", text.to_owned()),
        "dot" => ("text/vnd.graphviz; charset=utf-8", graph()?.dot(&name)),
        "svg" => ("image/svg+xml", graph()?.svg(q.current.as_deref())),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown diagram format `{other}`: use mermaid, dot or svg"
            )));
        }
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn metrics(State(app): State<App>) -> Answer {
    let m = app.engine.metrics()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.prometheus(),
    )
        .into_response())
}
