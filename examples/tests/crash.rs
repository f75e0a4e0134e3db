//! The refund-review app under real process deaths: each test spawns the example binary as
//! `serve`, kills it with SIGKILL at the interesting moment, restarts it on the same data
//! directory and checks the outcome and the ledgers. Workers listen on port 0 (the OS picks a
//! free port), so tests run in parallel; every worker is killed when its test ends.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{approve, exe, manager, spawn, wait_outcome, wait_pending};
use examples::refund::api::{DecisionRequest, DecisionResult};
use examples::refund::client::ClientError;
use examples::refund::domain::{DecisionStatus, RefundOutcome};
use examples::refund::ledger::PaymentEvent;
use workflow_runtime::TraceKind;

fn refunded(outcome: &RefundOutcome) -> (u64, &str) {
    match outcome {
        RefundOutcome::Refunded {
            amount_cents,
            reviewer_id,
            ..
        } => (*amount_cents, reviewer_id.as_str()),
        other => panic!("expected a refund, got {other:?}"),
    }
}

#[test]
fn a_worker_killed_while_waiting_resumes_and_pays_once_after_the_approval() {
    let dir = tempfile::tempdir().unwrap();
    let run = "review-T-1001";
    let mut w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "rev-1");
    c.start("T-1001", None).unwrap();
    let pending = wait_pending(&c, run);
    assert_eq!(pending.ticket_id, "T-1001");
    assert_eq!(pending.amount_cents, 12_900);
    assert_eq!(pending.draft, 1);
    w.kill9();

    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "rev-1");
    let after = wait_pending(&c, run);
    assert_eq!(
        (after.wait_id.as_str(), after.deadline_ms),
        (pending.wait_id.as_str(), pending.deadline_ms)
    );
    let answer = c.decide(run, &approve(&after)).unwrap();
    assert_eq!(answer.signal, DecisionResult::Delivered);
    assert_eq!(refunded(&wait_outcome(&c, run)), (12_900, "rev-1"));
    let l = common::ledgers(&c);
    assert_eq!(l.refunds_paid(), 1);
    for step in [
        "load_ticket",
        "load_customer_for_ticket",
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
    let c = manager(&w, &dir, "rev-1");
    // The same approval twice (a double click): one decision.
    c.start("T-1002", None).unwrap();
    let p = wait_pending(&c, "review-T-1002");
    assert_eq!(
        c.decide("review-T-1002", &approve(&p)).unwrap().signal,
        DecisionResult::Delivered
    );
    assert_eq!(
        c.decide("review-T-1002", &approve(&p)).unwrap().signal,
        DecisionResult::Duplicate
    );
    refunded(&wait_outcome(&c, "review-T-1002"));
    // Two reviewers approve the same draft back to back: the second finds it decided.
    let c2 = manager(&w, &dir, "rev-2");
    c.start("T-1003", None).unwrap();
    let p = wait_pending(&c, "review-T-1003");
    assert_eq!(
        c.decide("review-T-1003", &approve(&p)).unwrap().signal,
        DecisionResult::Delivered
    );
    match c2.decide("review-T-1003", &approve(&p)) {
        Err(ClientError::Api {
            status, message, ..
        }) => {
            assert_eq!(status, 409, "{message}");
            assert!(
                message.contains("already ended") || message.contains("not the draft waiting"),
                "{message}"
            );
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    assert_eq!(refunded(&wait_outcome(&c, "review-T-1003")).1, "rev-1");
    let l = common::ledgers(&c);
    assert_eq!(l.refunds_paid(), 2, "one refund per review");
    assert_eq!(l.executions("review-T-1002", "issue_refund_once"), 1);
    assert_eq!(l.executions("review-T-1003", "issue_refund_once"), 1);
}

#[test]
fn a_rejection_stops_before_any_money_moves() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "rev-9");
    c.start("T-1004", None).unwrap();
    let p = wait_pending(&c, "review-T-1004");
    w.kill9();
    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "rev-9");
    let reject = common::decision(&p, DecisionStatus::Rejected, "outside policy");
    assert_eq!(
        c.decide("review-T-1004", &reject).unwrap().signal,
        DecisionResult::Delivered
    );
    assert_eq!(
        wait_outcome(&c, "review-T-1004"),
        RefundOutcome::NotApproved {
            reason: "outside policy".into(),
            reviewer_id: "rev-9".into()
        }
    );
    let l = common::ledgers(&c);
    assert_eq!(l.refunds_paid(), 0);
    assert!(l.payments.is_empty());
    assert_eq!(l.executions("review-T-1004", "issue_refund_once"), 0);
}

#[test]
fn request_changes_then_approval_drafts_twice_and_pays_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = spawn(&dir, &[]);
    let run = "review-T-1001";
    let ana = manager(&w, &dir, "ana");
    ana.start("T-1001", None).unwrap();
    let first = wait_pending(&ana, run);
    let changes = common::decision(&first, DecisionStatus::RequestChanges, "make it $40");
    assert_eq!(
        ana.decide(run, &changes).unwrap().signal,
        DecisionResult::Delivered
    );
    let second = common::wait_redraft(&ana, run, &first);
    assert_eq!((second.amount_cents, second.draft), (4_000, 2));
    assert_eq!(second.changes_requested_by, ["ana"]);
    // A double-clicked "request changes" is the same decision: no second redraft.
    assert_eq!(
        ana.decide(run, &changes).unwrap().signal,
        DecisionResult::Duplicate
    );
    w.kill9();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    assert_eq!(
        max.decide(run, &approve(&second)).unwrap().signal,
        DecisionResult::Delivered
    );
    assert_eq!(refunded(&wait_outcome(&max, run)), (4_000, "max"));
    let l = common::ledgers(&max);
    assert_eq!(l.executions(run, "draft_refund_recommendation"), 2);
    assert_eq!(l.executions(run, "load_ticket"), 1);
    assert_eq!(l.refunds_paid(), 1);
}

#[test]
fn a_kill_after_the_payment_and_before_the_checkpoint_reruns_the_step_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = "review-T-1002";
    let mut w = spawn(&dir, &[("REFUND_REVIEW_FAULT", "after_payment")]);
    let c = manager(&w, &dir, "rev-1");
    c.start("T-1002", None).unwrap();
    let p = wait_pending(&c, run);
    // The approval is acknowledged (its checkpoint is durable), then the refund step pays and
    // the fault point kills the worker before the step's result is checkpointed.
    assert_eq!(
        c.decide(run, &approve(&p)).unwrap().signal,
        DecisionResult::Delivered
    );
    let status = w
        .wait_exit(Duration::from_secs(30))
        .expect("the fault point killed the worker");
    assert!(!status.success());
    drop(w);

    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "rev-1");
    refunded(&wait_outcome(&c, run));
    let l = common::ledgers(&c);
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
    let c = manager(&w, &dir, "rev-1");
    c.start("T-1003", None).unwrap();
    let p = wait_pending(&c, "review-T-1003");
    w.kill9();
    // The deadline was stored when the wait began; a worker whose clock reads 7 days and a
    // second later fires it on startup.
    let w = spawn(&dir, &[("REFUND_REVIEW_CLOCK_OFFSET_SECS", "604801")]);
    let c = manager(&w, &dir, "rev-1");
    assert_eq!(wait_outcome(&c, "review-T-1003"), RefundOutcome::TimedOut);
    assert_eq!(common::ledgers(&c).refunds_paid(), 0);
    assert!(c.pending().unwrap().is_empty());
    // A decision after the timeout says so, in words.
    match c.decide("review-T-1003", &approve(&p)) {
        Err(ClientError::Api {
            status, message, ..
        }) => {
            assert_eq!(status, 409);
            assert!(message.contains("timed out"), "{message}");
            assert!(!message.contains("(completed)"), "{message}");
        }
        other => panic!("expected a 409, got {other:?}"),
    }
}

#[test]
fn the_trace_shows_the_decision_path_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "rev-7");
    let run = "review-T-1005";
    c.start("T-1005", None).unwrap();
    let p = wait_pending(&c, run);
    let goodwill = DecisionRequest {
        status: DecisionStatus::Approved,
        wait_id: p.wait_id.clone(),
        reason: "goodwill".into(),
        approved_amount_cents: Some(1_500),
    };
    c.decide(run, &goodwill).unwrap();
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
                    assert_eq!(out["idempotency_key"], "refund:T-1005:1500");
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
    // The ticket and the customer load in parallel: either may finish first.
    if path.get(2).map(String::as_str) == Some("load_ticket") {
        path.swap(1, 2);
    }
    assert_eq!(
        path,
        [
            "started",
            "load_ticket",
            "load_customer_for_ticket",
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

#[test]
fn the_no_argument_demo_runs_and_exits_zero() {
    let out = Command::new(exe()).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "kill -9",
        "An approval without a token: refused, HTTP 401",
        "needs a manager",
        "four eyes",
        "refused, HTTP 409: wait",
        "signal duplicate, no second redraft",
        "signal duplicate, nothing changes",
        "1 refund(s) paid",
        "GET /admin/runs?waiting_for=refund_decision",
        "review-T-1001  refund_review v2  waiting (refund_decision)",
    ] {
        assert!(stdout.contains(expected), "`{expected}` missing:\n{stdout}");
    }
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
    let c = manager(&first, &dir, "rev-1");
    c.start("T-1001", None).unwrap();
    wait_pending(&c, "review-T-1001");
}
