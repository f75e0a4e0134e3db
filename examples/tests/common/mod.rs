//! Helpers shared by the real-process tests: the example binary, workers with credentials,
//! waiting for drafts and outcomes, raw HTTP requests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use examples::refund::api::{DecisionRequest, PendingReview};
use examples::refund::auth::{Role, issue_token};
use examples::refund::client::{Client, Ledgers};
use examples::refund::domain::{DecisionStatus, RefundOutcome};
use examples::refund::worker::{Worker, wait_until};

/// The example binary beside the test executables, brought up to date first: `cargo test`
/// builds examples, but `cargo test --test api` alone does not, and a stale binary would test
/// old code.
pub fn exe() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let deps = std::env::current_exe()
            .expect("test exe")
            .parent()
            .expect("deps dir")
            .to_owned();
        let exe = deps
            .parent()
            .expect("profile dir")
            .join("examples")
            .join("refund_review");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "examples", "--example", "refund_review"]);
        if deps.parent().and_then(|p| p.file_name()) == Some("release".as_ref()) {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the example failed");
        assert!(exe.exists(), "{} was not built", exe.display());
        exe
    })
}

pub fn spawn(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Worker {
    Worker::spawn(exe(), dir.path(), env).expect("the worker starts")
}

/// A client of `w` holding a fresh token for `reviewer` with `role`.
pub fn as_reviewer(w: &Worker, dir: &tempfile::TempDir, reviewer: &str, role: Role) -> Client {
    let token = issue_token(dir.path(), reviewer, role, None).expect("a token");
    w.client().with_token(token)
}

/// A fresh reviewer token for `reviewer`.
pub fn issue(dir: &tempfile::TempDir, reviewer: &str) -> String {
    issue_token(dir.path(), reviewer, Role::Reviewer, None).expect("a token")
}

/// A manager's client: approves any amount.
pub fn manager(w: &Worker, dir: &tempfile::TempDir, reviewer: &str) -> Client {
    as_reviewer(w, dir, reviewer, Role::Manager)
}

pub fn wait_pending(client: &Client, run: &str) -> PendingReview {
    wait_until("the review to wait for a decision", || {
        client.pending().ok()?.into_iter().find(|p| p.run_id == run)
    })
    .unwrap()
}

/// Waits for a draft of `run` other than `seen`.
pub fn wait_redraft(client: &Client, run: &str, seen: &PendingReview) -> PendingReview {
    wait_until("the redraft", || {
        client
            .pending()
            .ok()?
            .into_iter()
            .find(|p| p.run_id == run && p.wait_id != seen.wait_id)
    })
    .unwrap()
}

pub fn wait_outcome(client: &Client, run: &str) -> RefundOutcome {
    wait_until("the review to finish", || client.status(run).ok()?.outcome).unwrap()
}

pub fn approve(wait: &PendingReview) -> DecisionRequest {
    DecisionRequest {
        status: DecisionStatus::Approved,
        wait_id: wait.wait_id.clone(),
        reason: "ok".into(),
        approved_amount_cents: None,
    }
}

pub fn decision(wait: &PendingReview, status: DecisionStatus, reason: &str) -> DecisionRequest {
    DecisionRequest {
        status,
        wait_id: wait.wait_id.clone(),
        reason: reason.into(),
        approved_amount_cents: None,
    }
}

pub fn ledgers(client: &Client) -> Ledgers {
    client.ledgers().unwrap()
}

/// Runs the CLI against `addr` with `token`: (success, stdout, stderr).
pub fn cli(addr: &str, token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(exe());
    cmd.env_remove("REFUND_REVIEW_TOKEN")
        .env_remove("REFUND_REVIEW_ADDR")
        .args(["--addr", addr]);
    if let Some(t) = token {
        cmd.env("REFUND_REVIEW_TOKEN", t);
    }
    let out = cmd.args(args).output().expect("the cli runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A raw HTTP request, for what the typed client never sends: (status, body as JSON or text).
pub fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{addr}{path}");
    let req = ureq::http::Request::builder().method(method).uri(&url);
    let req = headers.iter().fold(req, |r, (k, v)| r.header(*k, *v));
    let res = match body {
        Some(b) => agent.run(req.body(b.to_vec()).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    };
    let mut res = res.expect("the server answers");
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, value)
}
