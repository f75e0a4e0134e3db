//! The refund-review app under real process deaths: each test spawns the example binary as
//! `serve`, kills it with SIGKILL at the interesting moment, restarts it on the same data
//! directory and checks the outcome and the ledgers. Workers listen on port 0 (the OS picks a
//! free port), so tests run in parallel; every worker is killed when its test ends.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use examples::refund::client::{Client, ClientError, Ledgers};
use examples::refund::ledger::PaymentEvent;
use examples::refund::worker::{Worker, wait_until};
use serde_json::{Value, json};
use workflow_runtime::TraceKind;

/// The example binary, built by `cargo test` beside the test executables (and built here if a
/// test is run on its own).
fn exe() -> &'static PathBuf {
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
        if !exe.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "examples", "--example", "refund_review"])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the example failed");
        }
        exe
    })
}

fn spawn(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Worker {
    Worker::spawn(exe(), dir.path(), env).expect("the worker starts")
}

fn wait_pending(client: &Client, run: &str) -> workflow_runtime::PendingWait {
    wait_until("the review to wait for a decision", || {
        client.pending().ok()?.into_iter().find(|p| p.run_id == run)
    })
    .unwrap()
}

fn wait_outcome(client: &Client, run: &str) -> Value {
    wait_until("the review to finish", || {
        let s = client.status(run).ok()?;
        (!s["outcome"].is_null()).then(|| s["outcome"].clone())
    })
    .unwrap()
}

fn approve(reviewer: &str) -> Value {
    json!({ "status": "approved", "reviewer_id": reviewer, "reason": "ok" })
}

fn ledgers(client: &Client) -> Ledgers {
    client.ledgers().unwrap()
}

#[test]
fn a_worker_killed_while_waiting_resumes_and_pays_once_after_the_approval() {
    let dir = tempfile::tempdir().unwrap();
    let run = "review-T-1001";
    let mut w = spawn(&dir, &[]);
    w.client().start("T-1001", None).unwrap();
    let pending = wait_pending(&w.client(), run);
    assert_eq!(pending.metadata["ticket_id"], "T-1001");
    assert_eq!(pending.metadata["amount_cents"], 12_900);
    w.kill9();

    let w = spawn(&dir, &[]);
    let c = w.client();
    let after = wait_pending(&c, run);
    assert_eq!(
        (after.wait_id.as_str(), after.deadline_ms),
        (pending.wait_id.as_str(), pending.deadline_ms)
    );
    let answer = c.decide(run, &approve("rev-1")).unwrap();
    assert_eq!(answer["signal"], "delivered");
    let outcome = wait_outcome(&c, run);
    assert_eq!(outcome["outcome"], "refunded");
    assert_eq!(outcome["amount_cents"], 12_900);
    let l = ledgers(&c);
    assert_eq!(l.refunds_paid(), 1);
    for step in [
        "load_ticket",
        "load_customer",
        "draft_refund_recommendation",
        "issue_refund_once",
    ] {
        assert_eq!(
            l.executions(run, step),
            1,
            "{step} ran exactly once across the restart"
        );
    }
}

#[test]
fn duplicate_approvals_pay_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let c = w.client();
    // The same dedupe key twice.
    c.start("T-1002", None).unwrap();
    wait_pending(&c, "review-T-1002");
    let keyed = json!({ "status": "approved", "reviewer_id": "rev-1", "dedupe_key": "click-1" });
    assert_eq!(
        c.decide("review-T-1002", &keyed).unwrap()["signal"],
        "delivered"
    );
    assert_eq!(
        c.decide("review-T-1002", &keyed).unwrap()["signal"],
        "duplicate"
    );
    assert_eq!(wait_outcome(&c, "review-T-1002")["outcome"], "refunded");
    // Two approvals without a key, back to back: the second finds the wait consumed.
    c.start("T-1003", None).unwrap();
    wait_pending(&c, "review-T-1003");
    assert_eq!(
        c.decide("review-T-1003", &approve("rev-1")).unwrap()["signal"],
        "delivered"
    );
    match c.decide("review-T-1003", &approve("rev-2")) {
        Ok(v) => assert_eq!(v["signal"], "buffered", "{v}"),
        Err(ClientError::Api { status, message }) => {
            assert_eq!(status, 409, "{message}");
            assert!(message.contains("already finished"), "{message}");
        }
        Err(e) => panic!("{e}"),
    }
    assert_eq!(wait_outcome(&c, "review-T-1003")["reviewer_id"], "rev-1");
    let l = ledgers(&c);
    assert_eq!(l.refunds_paid(), 2, "one refund per review");
    assert_eq!(l.executions("review-T-1002", "issue_refund_once"), 1);
    assert_eq!(l.executions("review-T-1003", "issue_refund_once"), 1);
}

#[test]
fn a_rejection_stops_before_any_money_moves() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = spawn(&dir, &[]);
    w.client().start("T-1004", None).unwrap();
    wait_pending(&w.client(), "review-T-1004");
    w.kill9();
    let w = spawn(&dir, &[]);
    let c = w.client();
    let reject =
        json!({ "status": "rejected", "reviewer_id": "rev-9", "reason": "outside policy" });
    assert_eq!(
        c.decide("review-T-1004", &reject).unwrap()["signal"],
        "delivered"
    );
    let outcome = wait_outcome(&c, "review-T-1004");
    assert_eq!(
        outcome,
        json!({ "outcome": "not_approved", "reason": "outside policy", "reviewer_id": "rev-9" })
    );
    let l = ledgers(&c);
    assert_eq!(l.refunds_paid(), 0);
    assert!(l.payments.is_empty());
    assert_eq!(l.executions("review-T-1004", "issue_refund_once"), 0);
}

#[test]
fn request_changes_then_approval_drafts_twice_and_pays_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = spawn(&dir, &[]);
    let run = "review-T-1001";
    w.client().start("T-1001", None).unwrap();
    let first = wait_pending(&w.client(), run);
    let changes = json!({ "status": "request_changes", "reviewer_id": "rev-1", "reason": "make it $40", "wait_id": first.wait_id });
    assert_eq!(
        w.client().decide(run, &changes).unwrap()["signal"],
        "delivered"
    );
    let second = wait_until("the redraft", || {
        w.client()
            .pending()
            .ok()?
            .into_iter()
            .find(|p| p.run_id == run && p.wait_id != first.wait_id)
    })
    .unwrap();
    assert_eq!(second.metadata["amount_cents"], 4_000);
    // A double-clicked "request changes" names the first wait: stale, it does not answer round two.
    assert_eq!(w.client().decide(run, &changes).unwrap()["signal"], "stale");
    w.kill9();
    let w = spawn(&dir, &[]);
    let c = w.client();
    let approval =
        json!({ "status": "approved", "reviewer_id": "rev-1", "wait_id": second.wait_id });
    assert_eq!(c.decide(run, &approval).unwrap()["signal"], "delivered");
    let outcome = wait_outcome(&c, run);
    assert_eq!(
        (
            outcome["outcome"].as_str(),
            outcome["amount_cents"].as_u64()
        ),
        (Some("refunded"), Some(4_000))
    );
    let l = ledgers(&c);
    assert_eq!(l.executions(run, "draft_refund_recommendation"), 2);
    assert_eq!(l.executions(run, "load_ticket"), 1);
    assert_eq!(l.refunds_paid(), 1);
}

#[test]
fn a_kill_after_the_payment_and_before_the_checkpoint_reruns_the_step_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = "review-T-1002";
    let mut w = spawn(&dir, &[("REFUND_REVIEW_FAULT", "after_payment")]);
    w.client().start("T-1002", None).unwrap();
    wait_pending(&w.client(), run);
    // The approval is acknowledged (its checkpoint is durable), then the refund step pays and
    // the fault point kills the worker before the step's result is checkpointed.
    assert_eq!(
        w.client().decide(run, &approve("rev-1")).unwrap()["signal"],
        "delivered"
    );
    let status = w
        .wait_exit(Duration::from_secs(30))
        .expect("the fault point killed the worker");
    assert!(!status.success());
    drop(w);

    let w = spawn(&dir, &[]);
    let c = w.client();
    let outcome = wait_outcome(&c, run);
    assert_eq!(outcome["outcome"], "refunded");
    let l = ledgers(&c);
    let keys: Vec<&str> = l
        .steps
        .iter()
        .filter(|s| s.step == "issue_refund_once")
        .map(|s| s.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), 2, "the refund step ran again after the restart");
    assert_eq!(keys[0], keys[1], "with the same idempotency key");
    let events: Vec<PaymentEvent> = l.payments.iter().map(|p| p.event).collect();
    assert_eq!(events, [PaymentEvent::Paid, PaymentEvent::DuplicateRefused]);
    assert_eq!(l.refunds_paid(), 1);
}

#[test]
fn seven_days_without_a_decision_end_as_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = spawn(&dir, &[]);
    w.client().start("T-1003", None).unwrap();
    wait_pending(&w.client(), "review-T-1003");
    w.kill9();
    // The deadline was stored when the wait began; a worker whose clock reads 7 days and a
    // second later fires it on startup.
    let w = spawn(&dir, &[("REFUND_REVIEW_CLOCK_OFFSET_SECS", "604801")]);
    let c = w.client();
    assert_eq!(
        wait_outcome(&c, "review-T-1003"),
        json!({ "outcome": "timed_out" })
    );
    assert_eq!(ledgers(&c).refunds_paid(), 0);
    assert!(c.pending().unwrap().is_empty());
}

#[test]
fn the_trace_shows_the_decision_path_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let c = w.client();
    let run = "review-T-1005";
    c.start("T-1005", None).unwrap();
    wait_pending(&c, run);
    c.decide(run, &json!({ "status": "approved", "reviewer_id": "rev-7", "reason": "goodwill", "approved_amount_cents": 1_500 }))
        .unwrap();
    wait_outcome(&c, run);
    let trace = c.trace(run).unwrap();
    let mut path = Vec::new();
    for e in &trace {
        match &e.kind {
            TraceKind::Started { .. } => path.push("started".to_owned()),
            TraceKind::StepCompleted {
                step,
                result: Ok(out),
                ..
            } => {
                if step == "draft_refund_recommendation" {
                    assert!(
                        out["rationale"]
                            .as_str()
                            .unwrap()
                            .contains("outside the 30-day window"),
                        "{out}"
                    );
                }
                if step == "issue_refund_once" {
                    assert_eq!(out["amount_cents"], 1_500);
                    assert!(out["receipt_id"].as_str().unwrap().starts_with("re_"));
                }
                path.push(step.clone());
            }
            TraceKind::WaitStarted { metadata, .. } => {
                assert_eq!(metadata["ticket_id"], "T-1005");
                path.push("wait".to_owned());
            }
            TraceKind::SignalReceived { payload, .. } => {
                assert_eq!(
                    (payload["reviewer_id"].as_str(), payload["reason"].as_str()),
                    (Some("rev-7"), Some("goodwill"))
                );
                path.push("decision".to_owned());
            }
            TraceKind::Completed { .. } => path.push("completed".to_owned()),
            _ => {}
        }
    }
    assert_eq!(
        path,
        [
            "started",
            "load_ticket",
            "load_customer",
            "draft_refund_recommendation",
            "wait",
            "decision",
            "issue_refund_once",
            "completed"
        ]
    );
    assert!(
        trace
            .windows(2)
            .all(|p| p[0].at_ms <= p[1].at_ms && p[0].seq < p[1].seq)
    );
}

fn cli(addr: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(exe())
        .args(["--addr", addr])
        .args(args)
        .output()
        .expect("the cli runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_prints_one_clear_line_for_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let addr = &w.addr().to_owned();
    let (ok, out, _) = cli(addr, &["start", "T-1001"]);
    assert!(ok && out.contains("started review-T-1001"), "{out}");
    wait_pending(&w.client(), "review-T-1001");
    let (ok, out, _) = cli(addr, &["pending"]);
    assert!(
        ok && out.contains("review-T-1001") && out.contains("$129.00"),
        "{out}"
    );

    let cases: [(&[&str], &str); 5] = [
        (&["status", "no-such-run"], "no run with id `no-such-run`"),
        (&["approve", "review-T-1001"], "--reviewer"),
        (
            &["reject", "review-T-1001", "--reviewer", "r1"],
            "`reason` is required",
        ),
        (
            &[
                "approve",
                "review-T-1001",
                "--reviewer",
                "r1",
                "--amount",
                "lots",
            ],
            "whole number of cents",
        ),
        (&["frobnicate"], "unknown command"),
    ];
    for (args, expected) in cases {
        let (ok, _, err) = cli(addr, args);
        assert!(!ok, "{args:?} should fail");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // A payload of the wrong shape sent straight to the API is refused, the run untouched.
    let bad = w.client().decide(
        "review-T-1001",
        &json!({ "status": "approved", "reviewer_id": "r1", "approved_amount_cents": "lots" }),
    );
    match bad {
        Err(ClientError::Api {
            status: 422,
            message,
        }) => assert!(message.contains("does not decode"), "{message}"),
        other => panic!("expected a 422, got {other:?}"),
    }
    let (ok, out, _) = cli(addr, &["approve", "review-T-1001", "--reviewer", "r1"]);
    assert!(ok && out.contains("delivered"), "{out}");
    wait_outcome(&w.client(), "review-T-1001");
    let (ok, _, err) = cli(addr, &["approve", "review-T-1001", "--reviewer", "r2"]);
    assert!(!ok && err.contains("already finished"), "{err}");
    drop(w);
    let (ok, _, err) = cli(addr, &["status", "review-T-1001"]);
    assert!(
        !ok && err.contains("is `refund_review serve` running?"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn the_no_argument_demo_runs_and_exits_zero() {
    let out = Command::new(exe()).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kill -9"), "{stdout}");
    assert!(stdout.contains("signal duplicate"), "{stdout}");
    assert!(stdout.contains("1 refund(s) paid"), "{stdout}");
}

#[test]
fn a_second_worker_on_the_same_store_exits_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn(&dir, &[]);
    let out = Command::new(exe())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("the second worker runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is already open by another engine or process"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The first worker is unaffected.
    first.client().start("T-1001", None).unwrap();
    wait_pending(&first.client(), "review-T-1001");
}

#[test]
fn a_run_id_that_is_not_utf8_gets_a_clear_answer() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    match w.client().status("%FF%FE") {
        Err(ClientError::Api { status, message }) => {
            assert_eq!(status, 400, "{message}");
            assert!(message.to_lowercase().contains("utf-8"), "{message}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}
