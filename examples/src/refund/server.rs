//! `refund_review serve`: the engine and a small JSON API on 127.0.0.1.
//!
//! Every route but `GET /inbox` needs `Authorization: Bearer <token>` (see [`super::auth`]).
//!
//! | method and path                 | body / answer                                              |
//! |---------------------------------|------------------------------------------------------------|
//! | `POST /reviews`                 | [`StartRequest`] → 201 (or 200 if it existed) [`StartResponse`] |
//! | `POST /reviews/{run}/decision`  | [`DecisionRequest`] → [`DecisionResponse`]                 |
//! | `GET /reviews/{run}`            | [`ReviewStatus`]                                           |
//! | `GET /reviews/{run}/trace`      | the run's trace events, oldest first                       |
//! | `GET /pending`                  | [`PendingReview`]s: drafts waiting for a decision          |
//! | `GET /ledger`                   | the payment ledger and the step-execution ledger           |
//! | `GET /whoami`                   | [`WhoAmI`]: the token's reviewer, role and limit           |
//! | `GET /inbox`                    | the reviewer inbox web page (it asks for the token)        |
//! | `/admin/...`                    | the operators' admin API and console ([`workflow_admin`])  |
//!
//! The admin API is mounted under `/admin` only when the server listens on a loopback address.
//! It has its own bearer token, not a reviewer's: `REFUND_REVIEW_ADMIN_TOKEN` (at least 16
//! bytes), or one generated at start and printed on stderr.
//!
//! Errors answer [`ErrorBody`] (`{"error": "<one line>", "current"?: ..}`) with 400 (malformed
//! JSON or URL), 401 (no or unknown token), 403 (over the approval limit, four eyes, a foreign
//! `Origin`), 404 (unknown run, ticket or route), 405, 409 (a decision on a draft that is not
//! the current one, a finished review, a second review of a ticket), 413 (body over
//! [`MAX_BODY_BYTES`]), 415 (a write that is not `application/json`), 422 (a body of the wrong
//! shape, an unknown field, an amount or reason out of bounds) or 500.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path as UrlPath, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;
use workflow_runtime::{
    Engine, EngineError, ResultError, RunStatus, Signal, SignalError, SignalOutcome, StartError,
    TraceKind,
};

use super::api::{
    DecisionRequest, DecisionResponse, DecisionResult, ErrorBody, MAX_BODY_BYTES, MAX_REASON_CHARS,
    PendingReview, ReviewStatus, StartRequest, StartResponse, WhoAmI, describe_outcome,
    validate_id,
};
use super::auth::{Credential, Role, authenticate};
use super::clock::OffsetClock;
use super::domain::{Decision, DecisionStatus, RefundOutcome};
use super::ledger::{PaymentEntry, PaymentEvent, StepExecution, read_entries};
use super::services::{find_customer, find_ticket};
use super::{Services, refund_review, refund_review_v1, tickets};

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
    /// Starts are serialised so two requests cannot both find a ticket free.
    starts: tokio::sync::Mutex<()>,
}

/// An API error: a status code, one line, and for a refused decision the current draft.
#[derive(Debug)]
pub struct ApiError {
    code: StatusCode,
    message: String,
    current: Option<Box<PendingReview>>,
}

impl ApiError {
    fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            current: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            current: self.current.map(|c| *c),
        };
        let mut res = (self.code, axum::Json(body)).into_response();
        if self.code == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::UnknownRun { .. } => StatusCode::NOT_FOUND,
            EngineError::RunFinished { .. }
            | EngineError::Conflict { .. }
            | EngineError::UnknownWait { .. }
            | EngineError::Incompatible { .. } => StatusCode::CONFLICT,
            EngineError::InvalidName { .. } => StatusCode::BAD_REQUEST,
            EngineError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            EngineError::PayloadMismatch { .. } | EngineError::WrongSignal { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<SignalError> for ApiError {
    fn from(e: SignalError) -> Self {
        EngineError::from(e).into()
    }
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

fn internal(msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg.to_string())
}

/// The reviewer behind a request: its bearer token, checked against the credentials file,
/// after the request's `Origin` (a browser's cross-site request is refused whatever it
/// carries).
struct Reviewer(Credential);

impl FromRequestParts<Arc<App>> for Reviewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        check_origin(&parts.headers)?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication required: send `Authorization: Bearer <token>`; \
                     tokens are issued by `refund_review issue-token`",
                )
            })?;
        match authenticate(&app.data_dir, token) {
            Ok(Some(cred)) => Ok(Reviewer(cred)),
            Ok(None) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown or revoked token",
            )),
            Err(e) => Err(internal(format!("cannot read the credentials: {e}"))),
        }
    }
}

/// Refuses a request a browser sent from another site: its `Origin` (or `Sec-Fetch-Site`)
/// names somewhere other than this server.
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = |what: &str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("cross-origin request refused ({what})"),
        ))
    };
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"cross-site")
    {
        return refused("Sec-Fetch-Site: cross-site");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().unwrap_or("");
    match host {
        Some(host) if origin == format!("http://{host}") => Ok(()),
        _ => refused(&format!("Origin `{}`", super::api::escape_text(origin))),
    }
}

/// Decodes a write's body: `application/json`, within [`MAX_BODY_BYTES`] (judged from the
/// announced length before anything is read, so a client sending a megabyte gets its 413 at
/// once), valid JSON (400) of the request's shape (422: unknown fields, repeated keys, wrong
/// types).
async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the request body must be `application/json`, not `{}`",
                super::api::escape_text(if ct.is_empty() { "(none)" } else { ct })
            ),
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                )
            }
        })?;
    serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            unprocessable(format!("the request body does not fit: {e}"))
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {e}"),
            )
        }
    })
}

/// The run id in the URL, decoded and validated.
fn run_id(path: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    let UrlPath(run_id) = path.map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad run id in the URL: {}", r.body_text()),
        )
    })?;
    validate_id("run id", &run_id).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    Ok(run_id)
}

/// Opens the engine in `data_dir`, resuming every review in flight, and serves the API until
/// Ctrl-C.
///
/// # Errors
/// If the data directory, the store or the listener cannot be opened.
pub async fn serve(opts: ServeOptions) -> Result<(), String> {
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", opts.data_dir.display()))?;
    let services = Services::from_env(&opts.data_dir)?;
    let clock = OffsetClock::from_env()?;
    let mut builder = Engine::builder()
        .register(refund_review_v1)
        .register(refund_review)
        .data(services)
        .clock(clock);
    if let Some(codec) = super::keys::codec_from_env()? {
        builder = builder.payload_codec(codec);
    }
    let engine = builder
        .open(store_path(&opts.data_dir))
        .await
        .map_err(|e| e.to_string())?;
    // Operations (cancel, terminate, purge) over a network would need TLS in front of them,
    // which this example does not set up.
    let admin = if opts.addr.ip().is_loopback() {
        Some(admin_token()?)
    } else {
        eprintln!(
            "the admin API is not mounted: {} is not a loopback address",
            opts.addr
        );
        None
    };
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
        starts: tokio::sync::Mutex::new(()),
    });
    let mut routes = router(app);
    if let Some(token) = admin {
        let config = workflow_admin::AdminConfig::new(token);
        routes = routes.nest("/admin", workflow_admin::router(engine.clone(), config));
    }
    let result = axum::serve(listener, routes)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string());
    engine.shutdown().await;
    result
}

/// The admin API's token: `REFUND_REVIEW_ADMIN_TOKEN`, or a fresh one printed on stderr (stdout
/// carries only the address, which the demo and the tests read).
fn admin_token() -> Result<String, String> {
    match std::env::var("REFUND_REVIEW_ADMIN_TOKEN") {
        Ok(t) if t.len() >= 16 => Ok(t),
        Ok(_) => Err("REFUND_REVIEW_ADMIN_TOKEN must be at least 16 bytes long".to_owned()),
        Err(_) => {
            let t = super::auth::random_token("adm_")?;
            eprintln!(
                "admin API on /admin (console: /admin/console), token for this run: {t} \
                 (set REFUND_REVIEW_ADMIN_TOKEN to choose one)"
            );
            Ok(t)
        }
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/reviews", post(start_review))
        .route("/reviews/{run_id}", get(review_status))
        .route("/reviews/{run_id}/decision", post(decide))
        .route("/reviews/{run_id}/trace", get(trace))
        .route("/pending", get(pending))
        .route("/ledger", get(ledger))
        .route("/whoami", get(whoami))
        .route("/inbox", get(inbox))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such route; see the API table in the README",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// The store file inside a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("engine.redb")
}

fn is_open(status: &RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Running
            | RunStatus::Waiting { .. }
            | RunStatus::Retrying { .. }
            | RunStatus::Sleeping { .. }
            | RunStatus::Incompatible { .. }
    )
}

/// A finished run's outcome, or its error as one line.
async fn finished(app: &App, run_id: &str) -> Result<Result<RefundOutcome, String>, ApiError> {
    Ok(
        match app.engine.handle(refund_review, run_id)?.result().await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(e.message),
            Err(ResultError::RunFailed { message, .. }) => Err(message),
            Err(e) => Err(e.to_string()),
        },
    )
}

async fn start_review(
    State(app): State<Arc<App>>,
    Reviewer(_who): Reviewer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: StartRequest = json_body(&headers, body).await?;
    validate_id("ticket id", &req.ticket_id).map_err(unprocessable)?;
    if let Some(run) = &req.run_id {
        validate_id("run id", run).map_err(unprocessable)?;
    }
    let ticket = req.ticket_id;
    if find_ticket(&ticket).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the helpdesk has no ticket `{ticket}` (tickets look like T-1001)"),
        ));
    }
    let _one_at_a_time = app.starts.lock().await;
    let default_run = format!("review-{ticket}");
    let mut earlier = tickets::reviews_of(&app.data_dir, &ticket).map_err(internal)?;
    if !earlier.contains(&default_run) {
        earlier.push(default_run.clone());
    }
    for run in &earlier {
        let status = match app.engine.status(run) {
            Ok(s) => s,
            Err(EngineError::UnknownRun { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let asked_for_it = req.run_id.as_deref().unwrap_or(&default_run) == run;
        if asked_for_it && is_open(&status) {
            // A repeated start of the same review: answer it as it stands.
            return Ok(start_answer(run, &ticket, false, status));
        }
        if is_open(&status) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "ticket {ticket} already has an open review, `{run}`: decide that one instead"
                ),
            ));
        }
        if status == RunStatus::Completed
            && let Ok(RefundOutcome::Refunded { amount_cents, .. }) = finished(&app, run).await?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "ticket {ticket} was already refunded {} by review `{run}`; one refund per ticket",
                    super::agent::dollars(amount_cents)
                ),
            ));
        }
    }
    // The provider's ledger is the last word: money that moved for this ticket, under any run.
    let payments: Vec<PaymentEntry> =
        read_entries(&app.data_dir.join("payments.jsonl")).map_err(internal)?;
    if let Some(p) = payments
        .iter()
        .find(|p| p.ticket_id == ticket && p.event == PaymentEvent::Paid)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "ticket {ticket} was already refunded {} (receipt {}); one refund per ticket",
                super::agent::dollars(p.amount_cents),
                p.receipt_id
            ),
        ));
    }
    let run = match req.run_id {
        Some(run) => {
            if let Some(other) = tickets::ticket_of(&app.data_dir, &run).map_err(internal)?
                && other != ticket
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("run id `{run}` already reviews ticket {other}"),
                ));
            }
            if let Ok(status) = app.engine.status(&run) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("run id `{run}` is taken by a review that ended ({status})"),
                ));
            }
            run
        }
        None => {
            let mut n = 1u32;
            let mut run = default_run.clone();
            while app.engine.status(&run).is_ok() {
                n = n
                    .checked_add(1)
                    .ok_or_else(|| internal("too many reviews"))?;
                run = format!("{default_run}-{n}");
            }
            run
        }
    };
    tickets::record(&app.data_dir, &ticket, &run).map_err(internal)?;
    app.engine
        .start(refund_review, run.clone(), ticket.clone())
        .await?;
    let status = app.engine.status(&run)?;
    Ok(start_answer(&run, &ticket, true, status))
}

fn start_answer(run: &str, ticket: &str, created: bool, status: RunStatus) -> Response {
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = StartResponse {
        run_id: run.to_owned(),
        ticket_id: ticket.to_owned(),
        created,
        status,
    };
    (code, axum::Json(body)).into_response()
}

/// The draft a run waits on now, if it waits for a decision.
fn current_review(app: &App, run_id: &str) -> Result<Option<PendingReview>, ApiError> {
    let Some(wait) = app
        .engine
        .pending()?
        .into_iter()
        .find(|p| p.run_id == run_id && p.signal == DECISION_SIGNAL)
    else {
        return Ok(None);
    };
    Ok(Some(pending_review(app, wait)?))
}

fn pending_review(
    app: &App,
    wait: workflow_runtime::PendingWait,
) -> Result<PendingReview, ApiError> {
    let mut draft = 0u32;
    let mut changes_requested_by: Vec<String> = Vec::new();
    for e in app.engine.trace(&wait.run_id)? {
        match e.kind {
            TraceKind::WaitStarted { signal, .. } if signal == DECISION_SIGNAL => {
                draft = draft.saturating_add(1);
            }
            TraceKind::SignalReceived { payload, .. } => {
                if let Ok(d) = serde_json::from_value::<Decision>(payload)
                    && d.status == DecisionStatus::RequestChanges
                    && !changes_requested_by.contains(&d.reviewer_id)
                {
                    changes_requested_by.push(d.reviewer_id);
                }
            }
            _ => {}
        }
    }
    let m = &wait.metadata;
    let text = |k: &str| m[k].as_str().unwrap_or("").to_owned();
    let ticket_id = text("ticket_id");
    // Reviews drafted before the total was shown with the draft: the helpdesk's record.
    let order_total_cents = m["order_total_cents"]
        .as_u64()
        .unwrap_or_else(|| find_ticket(&ticket_id).map_or(0, |t| t.order_total_cents));
    Ok(PendingReview {
        run_id: wait.run_id,
        wait_id: wait.wait_id,
        draft,
        ticket_id,
        // The name is not in the metadata (it would be traced): the helpdesk's record has it.
        // Reviews drafted before the name was kept out carry it as they were stored.
        customer: find_customer(&text("customer_id"))
            .map_or_else(|| text("customer"), |c| c.name.into_inner()),
        amount_cents: m["amount_cents"].as_u64().unwrap_or(0),
        order_total_cents,
        rule: text("rule"),
        rationale: text("rationale"),
        deadline_ms: wait.deadline_ms,
        changes_requested_by,
    })
}

fn draft_line(p: &PendingReview) -> String {
    format!(
        "the draft waiting now is draft {} (wait {}): {}",
        p.draft,
        p.wait_id,
        super::agent::dollars(p.amount_cents)
    )
}

async fn decide(
    State(app): State<Arc<App>>,
    Reviewer(who): Reviewer,
    path: Result<UrlPath<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<DecisionResponse>, ApiError> {
    let run_id = run_id(path)?;
    let req: DecisionRequest = json_body(&headers, body).await?;
    if req.wait_id.is_empty()
        || req.wait_id.len() > 20
        || !req.wait_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(unprocessable(format!(
            "`wait_id` is the number `pending` shows beside the draft, not `{}`",
            super::api::escape_text(&req.wait_id)
        )));
    }
    let reason = req.reason.trim().to_owned();
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(unprocessable(format!(
            "the reason is {chars} characters long; at most {MAX_REASON_CHARS} are accepted"
        )));
    }
    if req.status != DecisionStatus::Approved && reason.is_empty() {
        return Err(unprocessable(
            "`reason` is required to reject or request changes",
        ));
    }
    if req.status != DecisionStatus::Approved && req.approved_amount_cents.is_some() {
        return Err(unprocessable(
            "`approved_amount_cents` goes only with an approval",
        ));
    }
    // Unknown runs answer 404 before anything is said about drafts.
    app.engine.status(&run_id)?;
    let current = current_review(&app, &run_id)?;
    let mut amount = None;
    if let Some(cur) = current.as_ref().filter(|c| c.wait_id == req.wait_id)
        && req.status == DecisionStatus::Approved
    {
        let cents = req.approved_amount_cents.unwrap_or(cur.amount_cents);
        let d = super::agent::dollars;
        if cents == 0 {
            return Err(unprocessable(
                "an approval must pay more than $0.00; reject the refund instead",
            ));
        }
        if cents > cur.order_total_cents {
            return Err(unprocessable(format!(
                "{} is more than the order total of {}; nothing was approved",
                d(cents),
                d(cur.order_total_cents)
            )));
        }
        if cur.changes_requested_by.contains(&who.reviewer_id) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "four eyes: {} asked for changes on this review, so another reviewer must approve the redraft",
                    who.reviewer_id
                ),
            ));
        }
        if cents > who.approval_limit_cents {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} ({}) may approve up to {}; {} needs a manager",
                    who.reviewer_id,
                    match who.role {
                        Role::Reviewer => "reviewer",
                        Role::Manager => "manager",
                    },
                    d(who.approval_limit_cents),
                    d(cents)
                ),
            ));
        }
        amount = Some(cents);
    }
    let decision = Decision {
        status: req.status,
        reviewer_id: who.reviewer_id.clone(),
        reason,
        approved_amount_cents: amount,
    };
    // The same reviewer repeating the same request on the same draft is one decision; the key
    // holds only what the request says, so a repeat after the run moved on still matches.
    let dedupe = format!(
        "w{}/{}/{}{}",
        req.wait_id,
        who.reviewer_id,
        serde_json::to_value(req.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        req.approved_amount_cents
            .map(|a| format!("/{a}"))
            .unwrap_or_default()
    );
    let not_current = |current: Option<PendingReview>| {
        let now = current.as_ref().map_or_else(
            || "no draft is waiting for a decision now".to_owned(),
            draft_line,
        );
        ApiError {
            code: StatusCode::CONFLICT,
            message: format!(
                "wait {} is not the draft waiting for a decision; {now}. Nothing was decided",
                req.wait_id
            ),
            current: current.map(Box::new),
        }
    };
    let is_current = current.as_ref().is_some_and(|c| c.wait_id == req.wait_id);
    if !is_current {
        // A decision whose checks did not run is never sent, even if its wait came up in the
        // meantime (a guessed wait id); only a repeat of one the run already took is answered.
        let repeated = app.engine.trace(&run_id)?.iter().any(|e| {
            matches!(&e.kind, TraceKind::SignalReceived { dedupe_key: Some(k), .. } if *k == dedupe)
        });
        if repeated {
            return Ok(axum::Json(DecisionResponse {
                run_id,
                reviewer_id: who.reviewer_id,
                status: req.status,
                signal: DecisionResult::Duplicate,
            }));
        }
        let status = app.engine.status(&run_id)?;
        if !is_open(&status) {
            return Err(ended(&app, &run_id, status).await?);
        }
        return Err(not_current(current));
    }
    let signal = Signal::new(DECISION_SIGNAL, &decision)
        .dedupe_key(dedupe)
        .for_wait(req.wait_id.clone());
    let signal_result = match app.engine.send(&run_id, signal).await {
        Ok(SignalOutcome::Delivered) => DecisionResult::Delivered,
        Ok(SignalOutcome::Duplicate) => DecisionResult::Duplicate,
        Ok(SignalOutcome::Stale) | Err(SignalError::UnknownWait { .. }) => {
            return Err(not_current(current_review(&app, &run_id)?));
        }
        Ok(SignalOutcome::Buffered) => {
            return Err(internal("the decision was buffered instead of delivered"));
        }
        Err(SignalError::RunFinished { status, .. }) => {
            return Err(ended(&app, &run_id, status).await?);
        }
        Ok(other) => {
            return Err(internal(format!(
                "the decision had an unknown outcome: {other:?}"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(axum::Json(DecisionResponse {
        run_id,
        reviewer_id: who.reviewer_id,
        status: req.status,
        signal: signal_result,
    }))
}

/// The refusal of a decision on a review that has ended, saying how it ended.
async fn ended(app: &App, run_id: &str, status: RunStatus) -> Result<ApiError, ApiError> {
    let how = match status {
        RunStatus::Completed | RunStatus::Failed { .. } => match finished(app, run_id).await? {
            Ok(outcome) => describe_outcome(&outcome),
            Err(e) => format!("failed: {e}"),
        },
        other => other.to_string(),
    };
    Ok(ApiError::new(
        StatusCode::CONFLICT,
        format!("review `{run_id}` has already ended: {how}"),
    ))
}

async fn review_status(
    State(app): State<Arc<App>>,
    Reviewer(_who): Reviewer,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<axum::Json<ReviewStatus>, ApiError> {
    let run_id = run_id(path)?;
    let mut status = app.engine.status(&run_id)?;
    let (mut outcome, mut error) = (None, None);
    if matches!(status, RunStatus::Completed | RunStatus::Failed { .. }) {
        match finished(&app, &run_id).await? {
            Ok(o) => outcome = Some(o),
            Err(e) => {
                // The engine keeps the workflow's error as JSON; the API speaks one line.
                status = RunStatus::Failed { message: e.clone() };
                error = Some(e);
            }
        }
    }
    Ok(axum::Json(ReviewStatus {
        run_id,
        status,
        outcome,
        error,
    }))
}

async fn trace(
    State(app): State<Arc<App>>,
    Reviewer(_who): Reviewer,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let run_id = run_id(path)?;
    Ok(axum::Json(app.engine.trace(&run_id)?))
}

async fn pending(
    State(app): State<Arc<App>>,
    Reviewer(_who): Reviewer,
) -> Result<axum::Json<Vec<PendingReview>>, ApiError> {
    let mut out = Vec::new();
    for wait in app.engine.pending()? {
        if wait.signal == DECISION_SIGNAL {
            out.push(pending_review(&app, wait)?);
        }
    }
    Ok(axum::Json(out))
}

async fn whoami(Reviewer(who): Reviewer) -> axum::Json<WhoAmI> {
    axum::Json(WhoAmI {
        reviewer_id: who.reviewer_id,
        role: who.role,
        approval_limit_cents: who.approval_limit_cents,
    })
}

async fn ledger(
    State(app): State<Arc<App>>,
    Reviewer(_who): Reviewer,
) -> Result<impl IntoResponse, ApiError> {
    let read = |e: std::io::Error| internal(format!("cannot read a ledger: {e}"));
    let payments: Vec<PaymentEntry> =
        read_entries(&app.data_dir.join("payments.jsonl")).map_err(read)?;
    let steps: Vec<StepExecution> =
        read_entries(&app.data_dir.join("steps.jsonl")).map_err(read)?;
    Ok(axum::Json(json!({ "payments": payments, "steps": steps })))
}

/// The reviewer inbox page: static, it holds no data; its script asks for the token and calls
/// the API like any client.
async fn inbox() -> Response {
    let mut res = Html(include_str!("inbox.html")).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ),
    );
    res
}
