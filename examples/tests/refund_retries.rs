//! The refund step retried after a transient provider error still pays once: the provider
//! pays, the response is lost (a retryable error), the engine waits out a durable backoff and
//! retries with the same idempotency key, and the provider returns the original receipt.

use examples::refund::domain::{Decision, DecisionStatus, RefundOutcome};
use examples::refund::ledger::{PaymentEntry, PaymentEvent, StepExecution, read_entries};
use examples::refund::{Services, issue_refund_once, refund_key, refund_review};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Script, TestEngine, crash_test};
use workflow_runtime::{Function, TraceKind};

/// Ledgers in a fresh directory, and the services over them for the engine.
fn ledgers() -> (tempfile::TempDir, Services) {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::in_dir(dir.path()).unwrap();
    (dir, services)
}

fn approve() -> Decision {
    Decision {
        status: DecisionStatus::Approved,
        reviewer_id: "rev-ana".into(),
        reason: "photo attached".into(),
        approved_amount_cents: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refund_retried_after_a_lost_response_pays_once() {
    let (dir, services) = ledgers();
    let dir = dir.path();
    // The real step; its first attempt loses the provider's answer after the money moved.
    let te = TestEngine::builder()
        .register(refund_review)
        .data(services)
        .replace_async::<issue_refund_once, _>(|ctx, (ticket, amount)| async move {
            let attempt = ctx.attempt();
            let receipt = issue_refund_once(ctx, ticket, amount).await?;
            if attempt == 1 {
                return Err(StepError::retryable(
                    "payment provider: connection reset before the response arrived",
                ));
            }
            Ok(receipt)
        })
        .build()
        .await;
    let run = te
        .start(refund_review, "review-T-1001", "T-1001".into())
        .await
        .unwrap();
    te.signal("review-T-1001", "refund_decision", approve())
        .await
        .unwrap();
    // Paid, but the step does not know it: the run waits out its backoff.
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { ref step, attempt: 2, .. } if step == "issue_refund_once"
    ));
    let initial = <issue_refund_once as Function>::RETRY.initial_backoff;
    te.advance(initial).await;

    let Ok(RefundOutcome::Refunded {
        receipt_id,
        amount_cents,
        ..
    }) = run.result().await.unwrap()
    else {
        panic!("expected a refund");
    };
    assert_eq!(amount_cents, 12_900);
    let key = refund_key("T-1001", 12_900);
    let payments: Vec<PaymentEntry> = read_entries::<PaymentEntry>(&dir.join("payments.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|e| e.idempotency_key == key)
        .collect();
    let events: Vec<PaymentEvent> = payments.iter().map(|e| e.event).collect();
    assert_eq!(
        events,
        [PaymentEvent::Paid, PaymentEvent::DuplicateRefused],
        "one payment, and the retry refused as a duplicate"
    );
    assert!(payments.iter().all(|e| e.receipt_id == receipt_id));
    // Both attempts ran under the same step key, and the trace shows both.
    let steps: Vec<(u32, String)> = read_entries::<StepExecution>(&dir.join("steps.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|e| e.run_id == "review-T-1001" && e.step == "issue_refund_once")
        .map(|e| (e.attempt, e.idempotency_key))
        .collect();
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].0, steps[1].0), (1, 2));
    assert_eq!(steps[0].1, steps[1].1);
    let trace = te.engine().trace("review-T-1001").unwrap();
    assert!(trace.iter().any(|e| matches!(
        &e.kind,
        TraceKind::StepAttemptFailed { step, attempt: 1, .. } if step == "issue_refund_once"
    )));
    assert!(trace.iter().any(|e| matches!(
        &e.kind,
        TraceKind::StepCompleted { step, attempt: 2, result: Ok(_), .. } if step == "issue_refund_once"
    )));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retried_refund_survives_a_crash_at_every_commit() {
    let (dir, services) = ledgers();
    let dir = dir.path();
    let report = crash_test(
        TestEngine::builder()
            .register(refund_review)
            .data(services)
            .replace_async::<issue_refund_once, _>(|ctx, (ticket, amount)| async move {
                let attempt = ctx.attempt();
                let receipt = issue_refund_once(ctx, ticket, amount).await?;
                if attempt == 1 {
                    return Err(StepError::retryable("payment provider: connection reset"));
                }
                Ok(receipt)
            }),
        refund_review,
        "T-1002".into(),
        Script::new()
            .signal("refund_decision", approve())
            .advance(Duration::from_secs(1)),
    )
    .await;
    report.assert_ok();
    let paid = read_entries::<PaymentEntry>(&dir.join("payments.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|e| {
            // T-1002: a late delivery to a gold customer, 20% + 10% of $45.00.
            e.idempotency_key == refund_key("T-1002", 1_350) && e.event == PaymentEvent::Paid
        })
        .count();
    assert_eq!(paid, 1, "{report}");
}
