//! A blocking client for the `serve` API, used by the CLI subcommands, the demo and the tests.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use workflow_runtime::{PendingWait, TraceEvent};

use super::ledger::{PaymentEntry, StepExecution};

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
                    "cannot reach the refund_review server at {addr} ({detail}); is `refund_review serve` running?"
                )
            }
            ClientError::Api { message, .. } => f.write_str(message),
            ClientError::Decode(e) => write!(f, "unexpected answer from the server: {e}"),
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

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    addr: String,
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `addr` (`127.0.0.1:3000` or `http://127.0.0.1:3000`).
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
            agent,
        }
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
            .read_to_string()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}: {text}"));
            return Err(ClientError::Api { status, message });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.answer(self.agent.get(&format!("{}{path}", self.base)).call())
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, ClientError> {
        self.answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .send_json(body),
        )
    }

    /// Starts (or finds) the review of a ticket.
    ///
    /// # Errors
    /// As the server answers.
    pub fn start(&self, ticket_id: &str, run_id: Option<&str>) -> Result<Value, ClientError> {
        self.post(
            "/reviews",
            &serde_json::json!({ "ticket_id": ticket_id, "run_id": run_id }),
        )
    }

    /// Sends a decision (`status`, `reviewer_id`, `reason`, optional `approved_amount_cents`,
    /// `dedupe_key`, `wait_id`).
    ///
    /// # Errors
    /// As the server answers.
    pub fn decide(&self, run_id: &str, decision: &Value) -> Result<Value, ClientError> {
        self.post(&format!("/reviews/{run_id}/decision"), decision)
    }

    /// A review's status and, when finished, its outcome.
    ///
    /// # Errors
    /// As the server answers.
    pub fn status(&self, run_id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/reviews/{run_id}"))
    }

    /// A review's trace.
    ///
    /// # Errors
    /// As the server answers.
    pub fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, ClientError> {
        self.get(&format!("/reviews/{run_id}/trace"))
    }

    /// Reviews waiting for a decision.
    ///
    /// # Errors
    /// As the server answers.
    pub fn pending(&self) -> Result<Vec<PendingWait>, ClientError> {
        self.get("/pending")
    }

    /// The payment and step ledgers.
    ///
    /// # Errors
    /// As the server answers.
    pub fn ledgers(&self) -> Result<Ledgers, ClientError> {
        self.get("/ledger")
    }
}
