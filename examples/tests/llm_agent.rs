//! The OpenAI-compatible agent in a real `serve` process, against a fake chat-completions
//! server in the test: a good answer becomes the draft; a rate limit (429), a server error
//! (500) and a stall past the request timeout are retried by the step's policy until a good
//! answer comes; garbage fails the review at once with a clear message, without a retry.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use common::{manager, spawn, wait_pending};
use examples::refund::client::Client;
use examples::refund::worker::{Worker, wait_until};
use serde_json::json;
use workflow_runtime::{RunStatus, TraceKind};

#[derive(Debug, Clone)]
enum Reply {
    Good(u64),
    Garbage,
    Status(u16),
    Stall(Duration),
}

/// A fake chat-completions endpoint answering each request with the next scripted reply (the
/// last one repeats), counting requests.
struct FakeLlm {
    url: String,
    requests: Arc<Mutex<Vec<serde_json::Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeLlm {
    fn start(script: &[Reply]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let replies = Arc::new(Mutex::new(script.iter().cloned().collect::<VecDeque<_>>()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = Router::new().route(
            "/v1/chat/completions",
            post(move |body: axum::Json<serde_json::Value>| {
                let replies = replies.clone();
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(body.0);
                    let reply = {
                        let mut q = replies.lock().unwrap();
                        if q.len() > 1 {
                            q.pop_front().unwrap()
                        } else {
                            q.front().cloned().unwrap()
                        }
                    };
                    match reply {
                        Reply::Good(cents) => {
                            let content = json!({
                                "amount_cents": cents,
                                "rule": "llm-judgement",
                                "rationale": "The photo shows a cracked jug; refund the jug only."
                            })
                            .to_string();
                            axum::Json(json!({
                                "id": "chatcmpl-1",
                                "object": "chat.completion",
                                "choices": [{ "index": 0, "finish_reason": "stop",
                                    "message": { "role": "assistant", "content": content } }]
                            }))
                            .into_response()
                        }
                        Reply::Garbage => {
                            (StatusCode::OK, "<html>upstream proxy error</html>").into_response()
                        }
                        Reply::Status(code) => (
                            StatusCode::from_u16(code).unwrap(),
                            axum::Json(json!({ "error": { "message": "try later" } })),
                        )
                            .into_response(),
                        Reply::Stall(d) => {
                            tokio::time::sleep(d).await;
                            (StatusCode::OK, "too late").into_response()
                        }
                    }
                }
            }),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            requests,
            _runtime: runtime,
        }
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn llm_worker(dir: &tempfile::TempDir, fake: &FakeLlm) -> Worker {
    spawn(
        dir,
        &[
            ("REFUND_REVIEW_AGENT", "openai"),
            ("REFUND_REVIEW_LLM_URL", &fake.url),
            ("REFUND_REVIEW_LLM_MODEL", "fake-model"),
            ("REFUND_REVIEW_LLM_TIMEOUT_SECS", "1"),
        ],
    )
}

fn failed_attempts(c: &Client, run: &str) -> Vec<String> {
    c.trace(run)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            TraceKind::StepAttemptFailed { error, .. } => Some(error.message),
            _ => None,
        })
        .collect()
}

fn drafted_after(script: &[Reply], failure: &str) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start(script);
    let w = llm_worker(&dir, &fake);
    let c = manager(&w, &dir, "max");
    c.start("T-1001", None).unwrap();
    let p = wait_pending(&c, "review-T-1001");
    assert_eq!((p.amount_cents, p.rule.as_str()), (4_200, "llm-judgement"));
    assert!(
        p.rationale.starts_with("$42.00: The photo"),
        "{}",
        p.rationale
    );
    assert_eq!(fake.count(), script.len());
    let failures = failed_attempts(&c, "review-T-1001");
    assert_eq!(failures.len(), script.len() - 1, "{failures:?}");
    for f in &failures {
        assert!(f.contains(failure), "{f}");
    }
    let asked = &fake.requests.lock().unwrap()[0];
    assert_eq!(asked["model"], "fake-model");
    assert!(
        asked["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("cracked jug")
    );
}

#[test]
fn a_good_answer_becomes_the_draft() {
    drafted_after(&[Reply::Good(4_200)], "");
}

#[test]
fn a_rate_limit_is_retried() {
    drafted_after(
        &[Reply::Status(429), Reply::Good(4_200)],
        "rate-limited (429)",
    );
}

#[test]
fn a_server_error_is_retried() {
    drafted_after(&[Reply::Status(500), Reply::Good(4_200)], "failed (500)");
}

#[test]
fn a_stall_is_cut_off_and_retried() {
    drafted_after(
        &[Reply::Stall(Duration::from_secs(5)), Reply::Good(4_200)],
        "did not answer",
    );
}

#[test]
fn garbage_fails_the_review_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start(&[Reply::Garbage]);
    let w = llm_worker(&dir, &fake);
    let c = manager(&w, &dir, "max");
    c.start("T-1001", None).unwrap();
    let status = wait_until("the review to fail", || {
        let s = c.status("review-T-1001").ok()?;
        matches!(s.status, RunStatus::Failed { .. }).then_some(s)
    })
    .unwrap();
    let error = status.error.unwrap();
    assert!(error.contains("not a valid recommendation"), "{error}");
    // One line of text, not JSON inside JSON.
    assert!(!error.starts_with('{'), "{error}");
    assert_eq!(fake.count(), 1, "garbage is not retried");
    assert!(c.pending().unwrap().is_empty());
}

#[test]
fn an_answer_above_the_order_total_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start(&[Reply::Good(1_000_000)]);
    let w = llm_worker(&dir, &fake);
    let c = manager(&w, &dir, "max");
    c.start("T-1001", None).unwrap();
    let status = wait_until("the review to fail", || {
        let s = c.status("review-T-1001").ok()?;
        matches!(s.status, RunStatus::Failed { .. }).then_some(s)
    })
    .unwrap();
    assert!(
        status
            .error
            .unwrap()
            .contains("$10000.00 is more than the order total of $129.00")
    );
    assert!(c.ledgers().unwrap().payments.is_empty());
}

#[test]
fn a_bad_agent_configuration_stops_serve_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::exe())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("REFUND_REVIEW_AGENT", "openai")
        .env_remove("REFUND_REVIEW_LLM_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REFUND_REVIEW_LLM_URL"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
