//! Waiting on several signals: `ctx.wait_for_any::<T>([..], timeout, metadata)` completes with
//! whichever of the named signals comes first, decoded into the variant of the user's enum
//! that stands for it; one timeout covers them all; signals of the names not taken stay
//! buffered for later waits; the engine's unknown-name check knows every listed name.

use serde::{Deserialize, Serialize};
use workflow_runtime::SignalError;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Command, Event, TestEngine, Transition};

const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Review {
    Approve { amount: u64 },
    Reject { reason: String },
    CustomerCancelled,
}

#[workflow]
async fn refund(ctx: &mut WorkflowContext, ticket: String) -> Result<String, WorkflowError> {
    let review = ctx
        .wait_for_any::<Review>(
            ["approve", "reject", "customer_cancelled"],
            DAY,
            json!({ "ticket": ticket }),
        )
        .await;
    let first: String = match review {
        Ok(Review::Approve { amount }) => format!("approved {amount}"),
        Ok(Review::Reject { reason }) => format!("rejected ({reason})"),
        Ok(Review::CustomerCancelled) => "withdrawn".to_owned(),
        Err(WaitError::TimedOut) => return Ok(format!("{ticket}: nobody answered")),
        Err(WaitError::Cancelled) => return Ok(format!("{ticket}: cancelled")),
    };
    // A later wait takes a signal the first one left in the inbox.
    let note = ctx
        .wait_for_signal::<String>("audit_note", DAY, ())
        .await
        .unwrap_or_else(|_| "no note".to_owned());
    Ok(format!("{ticket}: {first}, {note}"))
}

/// Takes the remaining names one by one: a wait on several names, then one on a name the
/// first did not take.
#[workflow]
async fn two_answers(ctx: &mut WorkflowContext) -> Result<String, WorkflowError> {
    let a = ctx
        .wait_for_any::<Review>(["approve", "reject"], DAY, ())
        .await?;
    let b = ctx
        .wait_for_signal::<Review>("customer_cancelled", DAY, ())
        .await;
    let c = ctx.wait_for_signal::<String>("reject", DAY, ()).await;
    Ok(format!("{a:?} / {b:?} / {c:?}"))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mismatched {
    Approve(u64),
}

#[workflow]
async fn misnamed(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    match ctx
        .wait_for_any::<Mismatched>(["approve", "escalate"], DAY, ())
        .await?
    {
        Mismatched::Approve(n) => Ok(n),
    }
}

async fn engine() -> TestEngine {
    TestEngine::builder()
        .register(refund)
        .register(two_answers)
        .register(misnamed)
        .build()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_signal_wins_and_is_decoded_into_its_variant() {
    let te = engine().await;
    let run = te.start(refund, "t-1", "T-1".into()).await.unwrap();
    let pending = te.engine().pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].signal, "approve");
    assert_eq!(
        pending[0].any_of,
        ["approve", "reject", "customer_cancelled"]
    );
    assert_eq!(pending[0].metadata, json!({ "ticket": "T-1" }));
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Waiting { ref signal, .. } if signal == "approve|reject|customer_cancelled"
    ));
    let out = te
        .signal("t-1", "reject", json!({ "reason": "duplicate" }))
        .await
        .unwrap();
    assert_eq!(out, SignalOutcome::Delivered);
    // The run now waits for the audit note; an approval is for a wait that is over, so it is
    // buffered, not delivered.
    let late = te
        .signal("t-1", "approve", json!({ "amount": 5 }))
        .await
        .unwrap();
    assert_eq!(late, SignalOutcome::Buffered);
    te.signal("t-1", "audit_note", "checked").await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("T-1: rejected (duplicate), checked".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_variant_takes_a_signal_without_payload() {
    let te = engine().await;
    let run = te.start(refund, "t-2", "T-2".into()).await.unwrap();
    te.signal("t-2", "customer_cancelled", ()).await.unwrap();
    te.signal("t-2", "audit_note", "ok").await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("T-2: withdrawn, ok".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_timeout_covers_every_name() {
    let te = engine().await;
    let run = te.start(refund, "t-3", "T-3".into()).await.unwrap();
    te.advance(DAY).await;
    assert_eq!(
        run.result().await.unwrap(),
        Ok("T-3: nobody answered".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_signals_answer_in_arrival_order_and_the_rest_stay_buffered() {
    let te = engine().await;
    let run = te.start(two_answers, "b-1", ()).await.unwrap();
    // Sent while the run waits for approve|reject: delivered at once.
    let first = te
        .signal("b-1", "reject", json!({ "reason": "first" }))
        .await
        .unwrap();
    assert_eq!(first, SignalOutcome::Delivered);
    // The run waits for customer_cancelled now: these two are buffered; the second `reject`
    // is for the third wait, and an extra `approve` is never taken.
    te.signal("b-1", "approve", json!({ "amount": 1 }))
        .await
        .unwrap();
    assert_eq!(
        te.signal("b-1", "reject", "late").await.unwrap(),
        SignalOutcome::Buffered
    );
    te.signal("b-1", "customer_cancelled", "customer_cancelled")
        .await
        .unwrap();
    let out = run.result().await.unwrap().unwrap();
    assert_eq!(
        out,
        "Reject { reason: \"first\" } / Ok(CustomerCancelled) / Ok(\"late\")"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_buffered_before_the_wait_answers_it() {
    let te = engine().await;
    // The earliest of the buffered names wins, later ones stay buffered.
    let run = te.start(refund, "t-4", "T-4".into()).await.unwrap();
    te.signal("t-4", "audit_note", "early").await.unwrap();
    te.signal("t-4", "approve", json!({ "amount": 70 }))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("T-4: approved 70, early".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_and_wrong_payloads_are_refused_and_change_nothing() {
    let te = engine().await;
    let run = te.start(refund, "t-5", "T-5".into()).await.unwrap();
    let err = te.signal("t-5", "aprove", ()).await.unwrap_err();
    let SignalError::UnknownSignal { expected, .. } = &err else {
        panic!("expected UnknownSignal, got {err:?}");
    };
    assert_eq!(
        expected,
        &["approve", "audit_note", "customer_cancelled", "reject"]
    );
    // `approve` carries `{ amount }`: a bare number does not decode into that variant.
    let err = te.signal("t-5", "approve", 40).await.unwrap_err();
    assert!(
        matches!(err, SignalError::PayloadMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Review"), "{err}");
    assert!(matches!(run.status().unwrap(), RunStatus::Waiting { .. }));
    // A wrong payload for a name the run does not wait for yet is refused as well.
    let err = te.signal("t-5", "audit_note", 3).await.unwrap_err();
    assert!(matches!(err, SignalError::PayloadMismatch { .. }));
    te.signal("t-5", "approve", json!({ "amount": 40 }))
        .await
        .unwrap();
    te.advance(DAY).await;
    assert_eq!(
        run.result().await.unwrap(),
        Ok("T-5: approved 40, no note".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_without_a_variant_fails_the_run_with_the_variants() {
    let te = engine().await;
    let run = te.start(misnamed, "m-1", ()).await.unwrap();
    let RunStatus::Failed { message } = run.status().unwrap() else {
        panic!("{:?}", run.status());
    };
    assert!(
        message.contains("has no variant named `escalate`") && message.contains("[\"approve\"]"),
        "{message}"
    );
}

#[test]
fn the_state_is_named_after_the_enum_and_takes_a_tagged_signal() {
    let mut ctx = WorkflowContext::new("t-6", 0, 1);
    let Transition::Suspend(state, cmd) = refund::advance(
        refund::State::Start {
            ticket: "T-6".into(),
        },
        Event::Start,
        &mut ctx,
    ) else {
        panic!("the workflow waits first");
    };
    assert!(matches!(state, refund::State::AwaitingReview { .. }));
    assert!(cmd.waits_for("customer_cancelled") && !cmd.waits_for("audit_note"));
    assert_eq!(
        cmd,
        Command::wait_any(
            &["approve", "reject", "customer_cancelled"],
            DAY.as_millis() as u64,
            json!({ "ticket": "T-6" })
        )
    );
    let next = refund::advance(
        state,
        Event::signal(json!({ "approve": { "amount": 9 } })),
        &mut ctx,
    );
    assert!(matches!(
        next,
        Transition::Suspend(refund::State::AwaitingAuditNote { .. }, _)
    ));
    assert!(refund::MERMAID.contains("wait approve | reject | customer_cancelled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_on_several_signals_survive_a_crash_at_every_commit() {
    use workflow_runtime::testing::{Script, crash_test};
    // Buffered before the wait, delivered to it, left over for a later wait, and timed out.
    let scripts = [
        Script::new()
            .signal("audit_note", "early")
            .signal("reject", json!({ "reason": "dup" })),
        Script::new()
            .signal("customer_cancelled", ())
            .signal("approve", json!({ "amount": 3 }))
            .advance(DAY),
        Script::new().advance(DAY),
    ];
    let expected = [
        "T: rejected (dup), early",
        "T: withdrawn, no note",
        "T: nobody answered",
    ];
    for (script, want) in scripts.into_iter().zip(expected) {
        let report = crash_test(
            TestEngine::builder().register(refund),
            refund,
            "T".to_owned(),
            script,
        )
        .await;
        report.assert_ok();
        assert_eq!(report.outcome.as_ref().unwrap(), &json!({ "Ok": want }));
    }
}
