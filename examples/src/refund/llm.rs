//! A drafting agent backed by a language model behind an OpenAI-compatible chat-completions
//! endpoint (`POST {base}/chat/completions`), chosen by configuration; the deterministic
//! [`PolicyAgent`](super::agent::PolicyAgent) stays the default and needs no network.
//!
//! The model is asked for a JSON object `{"amount_cents", "rule", "rationale"}` and its answer
//! is validated before it becomes a draft: the amount must be a whole number of cents no larger
//! than the order total, the rule and the rationale short, non-empty text. How failures reach
//! the step's retry policy (4 attempts, growing backoff, 2-minute cut-off per attempt):
//!
//! | what the endpoint does                 | error                            |
//! |----------------------------------------|----------------------------------|
//! | rate-limits (429), fails (5xx)         | retryable                        |
//! | cannot be reached, or stalls past the request timeout | retryable        |
//! | refuses the request otherwise (4xx)    | permanent (a retry sends the same request) |
//! | answers something that is not a valid recommendation | permanent       |

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use workflow_runtime::StepError;

use super::agent::{Draft, RefundAgent, dollars};
use super::domain::{Customer, Recommendation, Ticket};

/// `REFUND_REVIEW_AGENT`: `policy` (default) or `openai`.
pub const AGENT_ENV: &str = "REFUND_REVIEW_AGENT";
/// `REFUND_REVIEW_LLM_URL`: the endpoint's base URL, like `http://127.0.0.1:8080/v1`.
pub const URL_ENV: &str = "REFUND_REVIEW_LLM_URL";
/// `REFUND_REVIEW_LLM_MODEL`: the model name sent with each request.
pub const MODEL_ENV: &str = "REFUND_REVIEW_LLM_MODEL";
/// `REFUND_REVIEW_LLM_API_KEY`: sent as a bearer token when set.
pub const KEY_ENV: &str = "REFUND_REVIEW_LLM_API_KEY";
/// `REFUND_REVIEW_LLM_TIMEOUT_SECS`: how long one request may take (default 60).
pub const TIMEOUT_ENV: &str = "REFUND_REVIEW_LLM_TIMEOUT_SECS";

/// The longest rule name and rationale accepted from the model.
const MAX_RULE_CHARS: usize = 64;
const MAX_RATIONALE_CHARS: usize = 2_000;

/// How to reach the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// Base URL; `/chat/completions` is appended.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Bearer key, if the endpoint wants one.
    pub api_key: Option<String>,
    /// Time allowed for one request.
    pub timeout: Duration,
}

impl LlmConfig {
    /// The configuration in the environment: `None` when `REFUND_REVIEW_AGENT` is unset or
    /// `policy`.
    ///
    /// # Errors
    /// An unknown agent name, a missing URL or model, or a bad timeout.
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match var(AGENT_ENV).as_deref() {
            None | Some("policy") => return Ok(None),
            Some("openai") => {}
            Some(other) => {
                return Err(format!(
                    "{AGENT_ENV} is `policy` or `openai`, not `{other}`"
                ));
            }
        }
        let timeout = match var(TIMEOUT_ENV) {
            None => 60,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{TIMEOUT_ENV} is a whole number of seconds, not `{v}`"))?,
        };
        Ok(Some(Self {
            base_url: var(URL_ENV)
                .ok_or_else(|| format!("{AGENT_ENV}=openai needs {URL_ENV}"))?
                .trim_end_matches('/')
                .to_owned(),
            model: var(MODEL_ENV).ok_or_else(|| format!("{AGENT_ENV}=openai needs {MODEL_ENV}"))?,
            api_key: var(KEY_ENV),
            timeout: Duration::from_secs(timeout),
        }))
    }
}

/// A [`RefundAgent`] that asks a chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiAgent {
    config: LlmConfig,
    http: ureq::Agent,
}

impl OpenAiAgent {
    /// An agent for `config`.
    pub fn new(config: LlmConfig) -> Self {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .build()
            .into();
        Self { config, http }
    }

    fn prompt(ticket: &Ticket, customer: &Customer, notes: Option<&str>) -> Value {
        let system = "You draft refund recommendations for a support team. Answer with one JSON \
                      object and nothing else: {\"amount_cents\": <whole number of cents, at most \
                      the order total>, \"rule\": <short kebab-case policy name>, \"rationale\": \
                      <one or two sentences a reviewer can check>}.";
        let mut user = json!({
            "ticket": ticket,
            "customer": customer,
            "reviewer_notes": notes,
        });
        // The model needs the customer's words and name; only stored copies are marked.
        workflow_runtime::secret::reveal(&mut user);
        json!([
            { "role": "system", "content": system },
            { "role": "user", "content": user.to_string() },
        ])
    }

    /// One blocking request; its errors already say whether to retry.
    fn ask(&self, messages: Value, order_total_cents: u64) -> Result<Recommendation, StepError> {
        let url = format!("{}/chat/completions", self.config.base_url);
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "response_format": { "type": "json_object" },
        });
        let mut req = self.http.post(&url);
        if let Some(key) = &self.config.api_key {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        let mut res = req.send_json(&body).map_err(|e| {
            StepError::retryable(format!("the language model at {url} did not answer: {e}"))
        })?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| {
                StepError::retryable(format!("the language model's answer was cut off: {e}"))
            })?;
        let excerpt: String = text.chars().take(200).collect();
        match status {
            200..=299 => {}
            429 => {
                return Err(StepError::retryable(format!(
                    "the language model is rate-limited (429): {excerpt}"
                )));
            }
            500..=599 => {
                return Err(StepError::retryable(format!(
                    "the language model failed ({status}): {excerpt}"
                )));
            }
            _ => {
                return Err(StepError::permanent(format!(
                    "the language model refused the request ({status}): {excerpt}"
                )));
            }
        }
        parse_answer(&text, order_total_cents)
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Proposed {
    amount_cents: u64,
    rule: String,
    rationale: String,
}

/// Turns a chat-completions answer into a validated recommendation.
fn parse_answer(text: &str, order_total_cents: u64) -> Result<Recommendation, StepError> {
    let bad = |why: String| {
        StepError::permanent(format!(
            "the language model's answer is not a valid recommendation: {why}"
        ))
    };
    let completion: Completion =
        serde_json::from_str(text).map_err(|e| bad(format!("not a chat completion ({e})")))?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| bad("no message content".into()))?;
    // Some models wrap JSON in a fenced block despite the instructions.
    let trimmed = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let p: Proposed = serde_json::from_str(trimmed).map_err(|e| bad(e.to_string()))?;
    if p.amount_cents > order_total_cents {
        return Err(bad(format!(
            "{} is more than the order total of {}",
            dollars(p.amount_cents),
            dollars(order_total_cents)
        )));
    }
    let rule = p.rule.trim();
    let rationale = p.rationale.trim();
    if rule.is_empty() || rule.chars().count() > MAX_RULE_CHARS {
        return Err(bad(format!(
            "the rule must be 1 to {MAX_RULE_CHARS} characters"
        )));
    }
    if rationale.is_empty() || rationale.chars().count() > MAX_RATIONALE_CHARS {
        return Err(bad(format!(
            "the rationale must be 1 to {MAX_RATIONALE_CHARS} characters"
        )));
    }
    if rule.chars().chain(rationale.chars()).any(char::is_control) {
        return Err(bad("control characters in the rule or rationale".into()));
    }
    Ok(Recommendation {
        amount_cents: p.amount_cents,
        rule: rule.to_owned(),
        rationale: format!("{}: {rationale}", dollars(p.amount_cents)),
    })
}

impl RefundAgent for OpenAiAgent {
    fn draft<'a>(
        &'a self,
        ticket: &'a Ticket,
        customer: &'a Customer,
        reviewer_notes: Option<&'a str>,
    ) -> Draft<'a> {
        let messages = Self::prompt(ticket, customer, reviewer_notes);
        let total = ticket.order_total_cents;
        let me = self.clone();
        Box::pin(async move {
            // ureq blocks; the request runs on tokio's blocking pool, bounded by its timeout.
            tokio::task::spawn_blocking(move || me.ask(messages, total))
                .await
                .map_err(|e| StepError::retryable(format!("the model request was lost: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content: &str) -> String {
        json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] })
            .to_string()
    }

    #[test]
    fn a_good_answer_becomes_a_draft() {
        let r = parse_answer(
            &answer(r#"{"amount_cents": 4000, "rule": "damaged-partial", "rationale": "The jug cracked."}"#),
            12_900,
        )
        .unwrap();
        assert_eq!(
            (r.amount_cents, r.rule.as_str()),
            (4_000, "damaged-partial")
        );
        assert_eq!(r.rationale, "$40.00: The jug cracked.");
    }

    #[test]
    fn bad_answers_are_permanent_errors() {
        for text in [
            "<html>oops</html>".to_owned(),
            answer("I think a refund is fair."),
            answer(r#"{"amount_cents": 20000, "rule": "x", "rationale": "y"}"#),
            answer(r#"{"amount_cents": -5, "rule": "x", "rationale": "y"}"#),
            answer(r#"{"amount_cents": 10, "rule": "", "rationale": "y"}"#),
            answer(r#"{"amount_cents": 10, "rule": "x", "rationale": "y", "pay_now": true}"#),
            answer("{\"amount_cents\": 10, \"rule\": \"x\", \"rationale\": \"\\u001b[2K\"}"),
        ] {
            let e = parse_answer(&text, 12_900).unwrap_err();
            assert!(!e.is_retryable(), "{text}: {e:?}");
            assert!(
                e.message.contains("not a valid recommendation"),
                "{}",
                e.message
            );
        }
    }
}
