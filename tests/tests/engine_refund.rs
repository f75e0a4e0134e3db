//! The refund workflow of DESIGN.md on the real engine and a real redb file: restarts at
//! every suspension point, the request-changes loop, rejection, the 7-day timeout, early,
//! duplicate, stale and wrong-typed signals, and many concurrent runs.
//!
//! A restart here is `shutdown()` plus reopening the same file in the same process; the
//! example's tests kill real processes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;
use workflow_runtime::{Clock, Engine, RunStatus, Signal, SignalOutcome};
use workflow_runtime::{SignalError, StartError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ticket {
    id: String,
    customer_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rec {
    amount: u64,
    draft: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Approved,
    Rejected,
    RequestChanges,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Decision {
    status: Status,
    reviewer: String,
    reason: String,
    amount: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Outcome {
    Refunded { receipt: String, amount: u64 },
    NotApproved { reason: String },
    TimedOut,
}

/// Steps that a test holds: `(run_id, step)` pairs block until released, like a slow API.
fn held() -> &'static Mutex<HashSet<(String, &'static str)>> {
    static HELD: OnceLock<Mutex<HashSet<(String, &'static str)>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// Every step execution and every refund, per run.
fn effects() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static EFFECTS: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    EFFECTS.get_or_init(Default::default)
}

async fn gate(ctx: &StepContext, step: &'static str) {
    effects()
        .lock()
        .unwrap()
        .entry(ctx.run_id().to_owned())
        .or_default()
        .push(step.to_owned());
    while held()
        .lock()
        .unwrap()
        .contains(&(ctx.run_id().to_owned(), step))
    {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn hold(run: &str, step: &'static str) {
    held().lock().unwrap().insert((run.to_owned(), step));
}

fn release(run: &str, step: &'static str) {
    held().lock().unwrap().remove(&(run.to_owned(), step));
}

fn count(run: &str, what: &str) -> usize {
    effects()
        .lock()
        .unwrap()
        .get(run)
        .map_or(0, |v| v.iter().filter(|e| *e == what).count())
}

#[function]
async fn load_ticket(ctx: StepContext, ticket_id: String) -> Result<Ticket, StepError> {
    gate(&ctx, "load_ticket").await;
    Ok(Ticket {
        id: ticket_id,
        customer_id: "C-1".into(),
    })
}

#[function]
async fn load_customer(ctx: StepContext, customer_id: String) -> Result<String, StepError> {
    gate(&ctx, "load_customer").await;
    Ok(format!("customer {customer_id}"))
}

#[function]
async fn draft(
    ctx: StepContext,
    ticket: Ticket,
    notes: Option<String>,
    round: u32,
) -> Result<Rec, StepError> {
    gate(&ctx, "draft").await;
    let _ = ticket;
    Ok(Rec {
        amount: if notes.is_some() { 4_000 } else { 5_000 },
        draft: round,
    })
}

/// Pays once per idempotency key, like a real provider.
#[function]
async fn issue_refund_once(
    ctx: StepContext,
    ticket_id: String,
    amount: u64,
) -> Result<String, StepError> {
    gate(&ctx, "issue_refund_once").await;
    let key = ctx.idempotency_key();
    let mut e = effects().lock().unwrap();
    let paid = e.entry(format!("paid:{key}")).or_default();
    if paid.is_empty() {
        paid.push(amount.to_string());
        e.entry(ctx.run_id().to_owned())
            .or_default()
            .push("money_moved".into());
    }
    Ok(format!("receipt-{ticket_id}-{amount}"))
}

#[workflow]
async fn refund_review(
    ctx: &mut WorkflowContext,
    ticket_id: String,
) -> Result<Outcome, WorkflowError> {
    let ticket = ctx.step(load_ticket, ticket_id).await?;
    let customer = ctx.step(load_customer, ticket.customer_id.clone()).await?;
    let _ = customer;
    let mut notes: Option<String> = None;
    let mut round: u32 = 0;
    loop {
        round += 1;
        let rec = ctx
            .step(draft, (ticket.clone(), notes.clone(), round))
            .await?;
        let decision = match ctx
            .wait_for_signal::<Decision>(
                "refund_decision",
                Duration::from_secs(7 * 86_400),
                json!({"ticket_id": ticket.id, "amount": rec.amount, "draft": rec.draft}),
            )
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok(Outcome::TimedOut),
        };
        match decision.status {
            Status::Approved => {
                let receipt = ctx
                    .step(issue_refund_once, (ticket.id.clone(), decision.amount))
                    .await?;
                return Ok(Outcome::Refunded {
                    receipt,
                    amount: decision.amount,
                });
            }
            Status::Rejected => {
                return Ok(Outcome::NotApproved {
                    reason: decision.reason,
                });
            }
            Status::RequestChanges => notes = Some(decision.reason),
        }
    }
}

fn decision(status: Status, amount: u64) -> Decision {
    Decision {
        status,
        reviewer: "rev-1".into(),
        reason: "because".into(),
        amount,
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: ManualClock,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::default(),
        }
    }

    async fn open(&self) -> Engine {
        Engine::builder()
            .register(refund_review)
            .clock(self.clock.clone())
            .open(self.dir.path().join("store.redb"))
            .await
            .expect("the store opens")
    }
}

async fn wait_for(engine: &Engine, run: &str, pred: impl Fn(&RunStatus) -> bool) -> RunStatus {
    for _ in 0..2_000 {
        let s = engine.status(run).unwrap();
        if pred(&s) {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!(
        "run {run} never reached the expected status; it is {:?}",
        engine.status(run)
    );
}

fn waiting(s: &RunStatus) -> bool {
    matches!(s, RunStatus::Waiting { .. })
}

async fn wait_for_step(run: &str, step: &str, n: usize) {
    for _ in 0..2_000 {
        if count(run, step) >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("step {step} of {run} did not run {n} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_restart_at_each_suspension_point() {
    for (point, step) in [
        ("LoadTicket", "load_ticket"),
        ("LoadCustomer", "load_customer"),
        ("Draft", "draft"),
        ("IssueRefundOnce", "issue_refund_once"),
    ] {
        let fx = Fixture::new();
        let run = format!("restart-at-{point}");
        hold(&run, step);
        let engine = fx.open().await;
        let h = engine
            .start(refund_review, run.clone(), "T-1".to_owned())
            .await
            .unwrap();
        if step == "issue_refund_once" {
            wait_for(&engine, &run, waiting).await;
            engine
                .signal(&run, "refund_decision", decision(Status::Approved, 4_200))
                .await
                .unwrap();
        }
        wait_for_step(&run, step, 1).await;
        drop(h);
        engine.shutdown().await;
        release(&run, step);
        let engine = fx.open().await;
        if step != "issue_refund_once" {
            wait_for(&engine, &run, waiting).await;
            engine
                .signal(&run, "refund_decision", decision(Status::Approved, 4_200))
                .await
                .unwrap();
        }
        let out = engine
            .handle(refund_review, &run)
            .unwrap()
            .result()
            .await
            .unwrap();
        assert_eq!(
            out,
            Ok(Outcome::Refunded {
                receipt: "receipt-T-1-4200".into(),
                amount: 4_200
            }),
            "{point}"
        );
        // The held step ran again after the restart (at least once); the others exactly once.
        for other in ["load_ticket", "load_customer", "draft", "issue_refund_once"] {
            let expected = if other == step { 2 } else { 1 };
            assert_eq!(
                count(&run, other),
                expected,
                "{other} after a restart at {point}"
            );
        }
        assert_eq!(count(&run, "money_moved"), 1, "{point}");
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_waiting_then_an_approval_refunds_once() {
    let fx = Fixture::new();
    let run = "wait-restart";
    let engine = fx.open().await;
    engine
        .start(refund_review, run, "T-2".to_owned())
        .await
        .unwrap();
    wait_for(&engine, run, waiting).await;
    let pending = engine.pending().unwrap();
    let p = pending
        .iter()
        .find(|p| p.run_id == run)
        .expect("the run is listed as pending");
    assert_eq!(
        p.metadata,
        json!({"ticket_id": "T-2", "amount": 5_000, "draft": 1})
    );
    assert_eq!(p.deadline_ms, fx.clock.now_ms() + 7 * 86_400_000);
    engine.shutdown().await;

    let engine = fx.open().await;
    assert!(waiting(&engine.status(run).unwrap()));
    let approve =
        Signal::new("refund_decision", decision(Status::Approved, 5_000)).dedupe_key("click-1");
    assert_eq!(
        engine.send(run, approve.clone()).await.unwrap(),
        SignalOutcome::Delivered
    );
    assert_eq!(
        engine.send(run, approve).await.unwrap(),
        SignalOutcome::Duplicate
    );
    let out = engine
        .handle(refund_review, run)
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(
        out,
        Ok(Outcome::Refunded {
            receipt: "receipt-T-2-5000".into(),
            amount: 5_000
        })
    );
    // A second approval without a dedupe key reaches a finished run: an error, no payment.
    let again = engine
        .signal(run, "refund_decision", decision(Status::Approved, 5_000))
        .await;
    assert!(
        matches!(again, Err(SignalError::RunFinished { .. })),
        "{again:?}"
    );
    assert_eq!(count(run, "money_moved"), 1);
    assert_eq!((count(run, "load_ticket"), count(run, "draft")), (1, 1));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_changes_redrafts_and_a_double_click_does_not_answer_the_next_round() {
    let fx = Fixture::new();
    let run = "changes";
    let engine = fx.open().await;
    engine
        .start(refund_review, run, "T-3".to_owned())
        .await
        .unwrap();
    let RunStatus::Waiting { wait_id: first, .. } = wait_for(&engine, run, waiting).await else {
        unreachable!()
    };
    let changes =
        Signal::new("refund_decision", decision(Status::RequestChanges, 0)).for_wait(first.clone());
    assert_eq!(
        engine.send(run, changes.clone()).await.unwrap(),
        SignalOutcome::Delivered
    );
    let RunStatus::Waiting {
        wait_id: second, ..
    } = wait_for(
        &engine,
        run,
        |s| matches!(s, RunStatus::Waiting { wait_id, .. } if *wait_id != first),
    )
    .await
    else {
        unreachable!()
    };
    // The double click names the first wait: stale, not buffered for the second round.
    assert_eq!(
        engine.send(run, changes).await.unwrap(),
        SignalOutcome::Stale
    );
    let p = engine
        .pending()
        .unwrap()
        .into_iter()
        .find(|p| p.run_id == run)
        .unwrap();
    assert_eq!(p.metadata["amount"], 4_000);
    assert_eq!(p.metadata["draft"], 2);
    let approve =
        Signal::new("refund_decision", decision(Status::Approved, 4_000)).for_wait(second);
    assert_eq!(
        engine.send(run, approve).await.unwrap(),
        SignalOutcome::Delivered
    );
    let out = engine
        .handle(refund_review, run)
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(
        out,
        Ok(Outcome::Refunded {
            receipt: "receipt-T-3-4000".into(),
            amount: 4_000
        })
    );
    assert_eq!((count(run, "draft"), count(run, "money_moved")), (2, 1));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_returns_early_without_paying() {
    let fx = Fixture::new();
    let run = "rejected";
    let engine = fx.open().await;
    let h = engine
        .start(refund_review, run, "T-4".to_owned())
        .await
        .unwrap();
    wait_for(&engine, run, waiting).await;
    engine
        .signal(run, "refund_decision", decision(Status::Rejected, 0))
        .await
        .unwrap();
    assert_eq!(
        h.result().await.unwrap(),
        Ok(Outcome::NotApproved {
            reason: "because".into()
        })
    );
    assert_eq!(
        (count(run, "issue_refund_once"), count(run, "money_moved")),
        (0, 0)
    );
    assert_eq!(h.status().unwrap(), RunStatus::Completed);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_days_without_a_decision_time_out_even_across_a_restart() {
    let fx = Fixture::new();
    let run = "timeout";
    let engine = fx.open().await;
    engine
        .start(refund_review, run, "T-5".to_owned())
        .await
        .unwrap();
    wait_for(&engine, run, waiting).await;
    fx.clock.advance(Duration::from_secs(6 * 86_400));
    engine.shutdown().await;
    // The deadline was fixed when the wait began; the restart does not extend it.
    let engine = fx.open().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(waiting(&engine.status(run).unwrap()));
    fx.clock.advance(Duration::from_secs(86_400));
    let out = engine
        .handle(refund_review, run)
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, Ok(Outcome::TimedOut));
    assert_eq!(count(run, "money_moved"), 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_sent_before_the_wait_is_buffered_then_consumed_once() {
    let fx = Fixture::new();
    let run = "early";
    hold(run, "draft");
    let engine = fx.open().await;
    let h = engine
        .start(refund_review, run, "T-6".to_owned())
        .await
        .unwrap();
    wait_for_step(run, "draft", 1).await;
    let early =
        Signal::new("refund_decision", decision(Status::Approved, 1_234)).dedupe_key("early-1");
    assert_eq!(
        engine.send(run, early.clone()).await.unwrap(),
        SignalOutcome::Buffered
    );
    assert_eq!(
        engine.send(run, early).await.unwrap(),
        SignalOutcome::Duplicate
    );
    release(run, "draft");
    assert_eq!(
        h.result().await.unwrap(),
        Ok(Outcome::Refunded {
            receipt: "receipt-T-6-1234".into(),
            amount: 1_234
        })
    );
    assert_eq!(count(run, "money_moved"), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_payload_is_refused_and_changes_nothing() {
    let fx = Fixture::new();
    let run = "wrong-shape";
    let engine = fx.open().await;
    let h = engine
        .start(refund_review, run, "T-7".to_owned())
        .await
        .unwrap();
    let before = wait_for(&engine, run, waiting).await;
    let trace_before = engine.trace(run).unwrap().len();
    let bad = engine
        .signal(
            run,
            "refund_decision",
            json!({"status": "approved", "amount": "lots"}),
        )
        .await;
    let Err(SignalError::PayloadMismatch { message, .. }) = bad else {
        panic!("expected a payload error, got {bad:?}")
    };
    assert!(
        message.contains("does not decode into") && message.contains("expected u64"),
        "{message}"
    );
    assert_eq!(engine.status(run).unwrap(), before);
    assert_eq!(engine.trace(run).unwrap().len(), trace_before);
    engine
        .signal(run, "refund_decision", decision(Status::Rejected, 0))
        .await
        .unwrap();
    assert_eq!(
        h.result().await.unwrap(),
        Ok(Outcome::NotApproved {
            reason: "because".into()
        })
    );
    // Unknown and finished runs get clear errors.
    let unknown = engine
        .signal(
            "no-such-run",
            "refund_decision",
            decision(Status::Approved, 1),
        )
        .await;
    assert!(
        matches!(unknown, Err(SignalError::UnknownRun { .. })),
        "{unknown:?}"
    );
    let finished = engine
        .signal(run, "refund_decision", decision(Status::Approved, 1))
        .await;
    assert!(
        matches!(finished, Err(SignalError::RunFinished { .. })),
        "{finished:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_is_idempotent_on_the_run_id() {
    let fx = Fixture::new();
    let engine = fx.open().await;
    engine
        .start(refund_review, "same", "T-8".to_owned())
        .await
        .unwrap();
    engine
        .start(refund_review, "same", "T-8".to_owned())
        .await
        .unwrap();
    wait_for(&engine, "same", waiting).await;
    assert_eq!(count("same", "load_ticket"), 1);
    let conflict = engine.start(refund_review, "same", "T-9".to_owned()).await;
    assert!(
        matches!(conflict, Err(StartError::Conflict { .. })),
        "{conflict:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_runs_complete_with_their_own_outputs() {
    let fx = Fixture::new();
    let engine = fx.open().await;
    let n = 200u64;
    let mut handles = Vec::new();
    for i in 0..n {
        let engine = engine.clone();
        handles.push(tokio::spawn(async move {
            engine
                .start(refund_review, format!("many-{i}"), format!("T-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.unwrap());
    }
    for i in 0..n {
        wait_for(&engine, &format!("many-{i}"), waiting).await;
    }
    let engine2 = engine.clone();
    let sends = (0..n).map(move |i| {
        let engine = engine2.clone();
        tokio::spawn(async move {
            let status = if i.is_multiple_of(3) {
                Status::Rejected
            } else {
                Status::Approved
            };
            engine
                .signal(
                    &format!("many-{i}"),
                    "refund_decision",
                    decision(status, i * 10),
                )
                .await
                .unwrap()
        })
    });
    for s in sends.collect::<Vec<_>>() {
        assert_eq!(s.await.unwrap(), SignalOutcome::Delivered);
    }
    for (i, h) in runs.into_iter().enumerate() {
        let i = i as u64;
        let expected = if i.is_multiple_of(3) {
            Outcome::NotApproved {
                reason: "because".into(),
            }
        } else {
            Outcome::Refunded {
                receipt: format!("receipt-T-{i}-{}", i * 10),
                amount: i * 10,
            }
        };
        assert_eq!(h.result().await.unwrap(), Ok(expected));
    }
    let commits = engine.commit_count();
    // 200 runs x (start + 3 steps + signal + maybe a refund) transitions; group commit batches them.
    assert!(commits < 5 * n, "{commits} commits for {} runs", n);
    engine.shutdown().await;
}

#[allow(dead_code)]
fn _assert_send(e: Engine) -> Arc<Engine> {
    Arc::new(e)
}
