//! A blocking client of the admin API, as the `workflow-admin` CLI uses it.

use std::time::Duration;

use serde_json::Value;

/// Why a call failed, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server could not be reached.
    Unreachable(String),
    /// The server answered with an error.
    Api {
        /// The HTTP status.
        status: u16,
        /// The error's code (`unknown_run`, ...).
        code: String,
        /// The error's message.
        message: String,
    },
    /// The answer was not what the API sends.
    Decode(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(e) => write!(f, "cannot reach the admin API: {e}"),
            ClientError::Api {
                status,
                code,
                message,
            } => write!(f, "{message} ({code}, HTTP {status})"),
            ClientError::Decode(e) => write!(f, "unexpected answer from the admin API: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A client of one admin API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the API at `base` (`http://127.0.0.1:7070`, or with a mount prefix).
    pub fn new(base: &str, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
            agent,
        }
    }

    fn answer(
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(String, bool), ClientError> {
        let mut res = res.map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok((text, true));
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let field = |k: &str| v["error"][k].as_str().map(str::to_owned);
        Err(ClientError::Api {
            status,
            code: field("code").unwrap_or_else(|| "http".to_owned()),
            message: field("message").unwrap_or(text),
        })
    }

    /// `GET path` as text.
    ///
    /// # Errors
    /// As the server answers.
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let res = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .call();
        Self::answer(res).map(|(t, _)| t)
    }

    /// `GET path` as JSON.
    ///
    /// # Errors
    /// As the server answers.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        let text = self.get_text(path)?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// As the server answers.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let res = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .send_json(body);
        let (text, _) = Self::answer(res)?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// Escapes a run id or name for a URL path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
