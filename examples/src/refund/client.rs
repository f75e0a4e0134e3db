//! A blocking client for the `serve` API, used by the CLI subcommands, the demo and the tests.

use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use workflow_runtime::TraceEvent;

use super::api::{
    DecisionRequest, DecisionResponse, ErrorBody, PendingReview, ReviewStatus, StartRequest,
    StartResponse, WhoAmI, escape_text,
};
use super::ledger::{PaymentEntry, StepExecution};

/// Everything but RFC 3986's unreserved characters is escaped in a path segment, so a run id
/// holding `/`, `?`, `#` or a space reaches the server as the id it is.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A run id as one URL path segment.
pub fn segment(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// Why a request failed, as one line.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing answered at the address.
    Unreachable {
        /// The server address tried.
        addr: String,
        /// The transport error.
        detail: String,
    },
    /// The server refused the request.
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// For a decision on a draft that is not the current one: the current draft.
        current: Option<Box<PendingReview>>,
    },
    /// The answer could not be read.
    Decode(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable { addr, detail } => {
                write!(
                    f,
                    "cannot reach the refund_review server at {} ({}); is `refund_review serve` running?",
                    escape_text(addr),
                    escape_text(detail)
                )
            }
            ClientError::Api { message, .. } => f.write_str(&escape_text(message)),
            ClientError::Decode(e) => {
                write!(f, "unexpected answer from the server: {}", escape_text(e))
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Both ledgers, as `GET /ledger` returns them.
#[derive(Debug, Clone, Deserialize)]
pub struct Ledgers {
    /// Every request the payment provider saw.
    pub payments: Vec<PaymentEntry>,
    /// Every step execution.
    pub steps: Vec<StepExecution>,
}

impl Ledgers {
    /// How many times money moved.
    pub fn refunds_paid(&self) -> usize {
        self.payments
            .iter()
            .filter(|p| p.event == super::ledger::PaymentEvent::Paid)
            .count()
    }

    /// How many times `step` ran for `run_id`.
    pub fn executions(&self, run_id: &str, step: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| s.run_id == run_id && s.step == step)
            .count()
    }
}

/// A client of one server, speaking for the reviewer whose token it carries.
#[derive(Debug, Clone)]
pub struct Client {
    addr: String,
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `addr` (`127.0.0.1:3000` or `http://127.0.0.1:3000`), without
    /// a token.
    pub fn new(addr: &str) -> Self {
        let base = if addr.starts_with("http://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            addr: addr.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            agent,
        }
    }

    /// The same client, sending `token` as its bearer credential.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    fn answer<T: DeserializeOwned>(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let mut res = res.map_err(|e| ClientError::Unreachable {
            addr: self.addr.clone(),
            detail: e.to_string(),
        })?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => ClientError::Api {
                    status,
                    message: body.error,
                    current: body.current.map(Box::new),
                },
                Err(_) => ClientError::Api {
                    status,
                    message: format!("HTTP {status}: {text}"),
                    current: None,
                },
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        self.answer(req.call())
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let mut req = self.agent.post(&format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        self.answer(req.send_json(body))
    }

    /// Starts the review of a ticket (or finds the open one with that run id).
    ///
    /// # Errors
    /// As the server answers.
    pub fn start(
        &self,
        ticket_id: &str,
        run_id: Option<&str>,
    ) -> Result<StartResponse, ClientError> {
        self.post(
            "/reviews",
            &StartRequest {
                ticket_id: ticket_id.to_owned(),
                run_id: run_id.map(str::to_owned),
            },
        )
    }

    /// Sends this client's reviewer's decision on the draft named by `decision.wait_id`.
    ///
    /// # Errors
    /// As the server answers.
    pub fn decide(
        &self,
        run_id: &str,
        decision: &DecisionRequest,
    ) -> Result<DecisionResponse, ClientError> {
        self.post(&format!("/reviews/{}/decision", segment(run_id)), decision)
    }

    /// A review's status and, when finished, its outcome.
    ///
    /// # Errors
    /// As the server answers.
    pub fn status(&self, run_id: &str) -> Result<ReviewStatus, ClientError> {
        self.get(&format!("/reviews/{}", segment(run_id)))
    }

    /// A review's trace.
    ///
    /// # Errors
    /// As the server answers.
    pub fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, ClientError> {
        self.get(&format!("/reviews/{}/trace", segment(run_id)))
    }

    /// Drafts waiting for a decision.
    ///
    /// # Errors
    /// As the server answers.
    pub fn pending(&self) -> Result<Vec<PendingReview>, ClientError> {
        self.get("/pending")
    }

    /// The payment and step ledgers.
    ///
    /// # Errors
    /// As the server answers.
    pub fn ledgers(&self) -> Result<Ledgers, ClientError> {
        self.get("/ledger")
    }

    /// Who the token belongs to.
    ///
    /// # Errors
    /// As the server answers.
    pub fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.get("/whoami")
    }
}
