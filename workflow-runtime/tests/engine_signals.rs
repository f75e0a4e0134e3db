//! Signal delivery: waits, the inbox, de-duplication, stale waits and refused payloads.

mod engine_support;

use engine_support::*;
use serde_json::json;
use workflow_runtime::SignalError;
use workflow_runtime::prelude::*;
use workflow_runtime::{Clock, TraceKind};

#[tokio::test]
async fn a_waiting_run_is_listed_and_a_signal_completes_it() {
    let clock = ManualClock::default();
    let engine = memory_engine(&clock).await;
    let run = engine
        .start(approval::Def, "a-1", "T-17".to_owned())
        .await
        .unwrap();
    let wait = wait_id(&engine, "a-1").await;
    let deadline = clock.now_ms() + WEEK.as_millis() as u64;
    assert_eq!(
        run.status().unwrap(),
        RunStatus::Waiting {
            signal: "decision".into(),
            wait_id: wait.clone(),
            deadline_ms: deadline,
        }
    );
    assert_eq!(
        engine.pending().unwrap(),
        [PendingWait {
            run_id: "a-1".into(),
            workflow: "approval".into(),
            wait_id: wait.clone(),
            signal: "decision".into(),
            metadata: json!({"ticket": "T-17", "amount": 40}),
            deadline_ms: deadline,
            any_of: Vec::new(),
        }]
    );

    let outcome = engine
        .signal("a-1", "decision", Decision::approve())
        .await
        .unwrap();
    assert_eq!(outcome, SignalOutcome::Delivered);
    assert!(engine.pending().unwrap().is_empty());
    let Outcome::Refunded { receipt } = run.result().await.unwrap().unwrap() else {
        panic!("not refunded");
    };
    assert_eq!(receipt, format!("receipt:a-1:record_effect:{}", 3));
    assert_eq!(calls("refund:T-17:40"), 1);
    let trace = engine.trace("a-1").unwrap();
    let received = trace
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::SignalReceived {
                wait_id,
                from_inbox,
                payload,
                ..
            } => Some((wait_id.clone(), *from_inbox, payload.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        received,
        (wait, false, json!({"verdict": "Approve", "reason": "ok"}))
    );
}

#[tokio::test]
async fn a_signal_before_its_wait_is_buffered_then_consumed() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Def, "early", "gated-early".to_owned())
        .await
        .unwrap();
    assert_eq!(run.status().unwrap(), RunStatus::Running);
    let outcome = engine
        .send(
            "early",
            Signal::new("decision", Decision::reject("no")).dedupe_key("d1"),
        )
        .await
        .unwrap();
    assert_eq!(outcome, SignalOutcome::Buffered);
    // Durable and de-duplicated while buffered.
    let again = engine
        .send(
            "early",
            Signal::new("decision", Decision::approve()).dedupe_key("d1"),
        )
        .await
        .unwrap();
    assert_eq!(again, SignalOutcome::Duplicate);
    open_gate("gated-early");
    assert_eq!(
        run.result().await.unwrap().unwrap(),
        Outcome::Rejected {
            reason: "no".into()
        }
    );
    assert_eq!(
        event_names(&engine, "early"),
        [
            "started",
            "step_scheduled",
            "signal_buffered",
            "signal_duplicate",
            "step_completed",
            "wait_started",
            "signal_received",
            "completed"
        ]
    );
    let trace = engine.trace("early").unwrap();
    assert!(matches!(
        trace[6].kind,
        TraceKind::SignalReceived {
            from_inbox: true,
            ..
        }
    ));
}

#[tokio::test]
async fn each_wait_consumes_exactly_one_buffered_signal() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Def, "two", "gated-two".to_owned())
        .await
        .unwrap();
    for _ in 0..2 {
        let outcome = engine
            .signal("two", "decision", Decision::changes())
            .await
            .unwrap();
        assert_eq!(outcome, SignalOutcome::Buffered);
    }
    // A name no wait uses statically is buffered too: names may be dynamic.
    assert_eq!(
        engine.signal("two", "note", "hello").await.unwrap(),
        SignalOutcome::Buffered
    );
    open_gate("gated-two");
    let third_wait = wait_id(&engine, "two").await;
    let names = event_names(&engine, "two");
    assert_eq!(
        names.iter().filter(|n| *n == "signal_received").count(),
        2,
        "{names:?}"
    );
    assert_eq!(names.iter().filter(|n| *n == "wait_started").count(), 3);
    assert_eq!(engine.pending().unwrap().len(), 1);
    assert_eq!(engine.pending().unwrap()[0].wait_id, third_wait);
    engine
        .signal("two", "decision", Decision::reject("enough"))
        .await
        .unwrap();
    assert!(matches!(
        run.result().await.unwrap().unwrap(),
        Outcome::Rejected { .. }
    ));
}

#[tokio::test]
async fn a_buffered_signal_the_wait_refuses_is_dropped_and_the_next_one_is_offered() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Unchecked, "dyn", "gated-dyn".to_owned())
        .await
        .unwrap();
    // Without a static check, a payload of the wrong shape can only be refused by the wait.
    assert_eq!(
        engine.signal("dyn", "decision", 42).await.unwrap(),
        SignalOutcome::Buffered
    );
    assert_eq!(
        engine
            .signal("dyn", "decision", Decision::approve())
            .await
            .unwrap(),
        SignalOutcome::Buffered
    );
    open_gate("gated-dyn");
    assert!(matches!(
        run.result().await.unwrap().unwrap(),
        Outcome::Refunded { .. }
    ));
    let names = event_names(&engine, "dyn");
    assert_eq!(
        names[4..8],
        [
            "step_completed",
            "wait_started",
            "signal_rejected",
            "signal_received"
        ]
    );
    let trace = engine.trace("dyn").unwrap();
    let TraceKind::SignalRejected {
        payload, message, ..
    } = &trace[6].kind
    else {
        panic!("{}", trace[6]);
    };
    assert_eq!(payload, &json!(42));
    assert!(message.contains("Decision"), "{message}");
}

#[tokio::test]
async fn a_repeated_dedupe_key_changes_nothing() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Def, "dup", "T-dup".to_owned())
        .await
        .unwrap();
    wait_id(&engine, "dup").await;
    let approve = || Signal::new("decision", Decision::approve()).dedupe_key("review-1");
    assert_eq!(
        engine.send("dup", approve()).await.unwrap(),
        SignalOutcome::Delivered
    );
    assert_eq!(
        engine.send("dup", approve()).await.unwrap(),
        SignalOutcome::Duplicate
    );
    run.result().await.unwrap().unwrap();
    // Still a duplicate after the run finished, since the key check comes first.
    assert_eq!(
        engine.send("dup", approve()).await.unwrap(),
        SignalOutcome::Duplicate
    );
    assert_eq!(calls("refund:T-dup:50"), 1);
    let names = event_names(&engine, "dup");
    assert_eq!(names.iter().filter(|n| *n == "signal_received").count(), 1);
    assert_eq!(names.iter().filter(|n| *n == "signal_duplicate").count(), 2);
}

#[tokio::test]
async fn a_signal_for_an_earlier_wait_is_stale() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Def, "stale", "T-stale".to_owned())
        .await
        .unwrap();
    let first = wait_id(&engine, "stale").await;
    let changes = Signal::new("decision", Decision::changes()).for_wait(first.clone());
    assert_eq!(
        engine.send("stale", changes).await.unwrap(),
        SignalOutcome::Delivered
    );
    let second = wait_id(&engine, "stale").await;
    assert_ne!(first, second);
    let trace_len = engine.trace("stale").unwrap().len();

    let late = Signal::new("decision", Decision::approve()).for_wait(first.clone());
    assert_eq!(
        engine.send("stale", late).await.unwrap(),
        SignalOutcome::Stale
    );
    assert_eq!(engine.trace("stale").unwrap().len(), trace_len);
    assert_eq!(wait_id(&engine, "stale").await, second);

    let unknown = Signal::new("decision", Decision::approve()).for_wait("999");
    let e = engine.send("stale", unknown).await.unwrap_err();
    assert!(matches!(e, SignalError::UnknownWait { .. }), "{e}");
    let wrong = Signal::new("other", 1).for_wait(second.clone());
    let e = engine.send("stale", wrong).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("wait `{second}` of run `stale` waits for signal `decision`, not `other`")
    );

    let reject = Signal::new("decision", Decision::reject("late")).for_wait(second);
    assert_eq!(
        engine.send("stale", reject).await.unwrap(),
        SignalOutcome::Delivered
    );
    assert!(matches!(
        run.result().await.unwrap().unwrap(),
        Outcome::Rejected { .. }
    ));
}

#[tokio::test]
async fn a_payload_of_the_wrong_shape_is_refused_and_changes_nothing() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Def, "shape", "T-shape".to_owned())
        .await
        .unwrap();
    wait_id(&engine, "shape").await;
    let status = run.status().unwrap();
    let trace = engine.trace("shape").unwrap();
    let e = engine
        .send(
            "shape",
            Signal::new("decision", json!({"verdict": "Maybe"})).dedupe_key("k"),
        )
        .await
        .unwrap_err();
    let SignalError::PayloadMismatch {
        run_id,
        signal,
        message,
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!((run_id.as_str(), signal.as_str()), ("shape", "decision"));
    assert!(message.contains("Decision"), "{message}");
    assert_eq!(run.status().unwrap(), status);
    assert_eq!(engine.trace("shape").unwrap(), trace);
    // The refused signal's dedupe key was not recorded either.
    let ok = Signal::new("decision", Decision::approve()).dedupe_key("k");
    assert_eq!(
        engine.send("shape", ok).await.unwrap(),
        SignalOutcome::Delivered
    );
    assert!(matches!(
        run.result().await.unwrap().unwrap(),
        Outcome::Refunded { .. }
    ));
}

#[tokio::test]
async fn a_payload_of_the_wrong_shape_is_refused_before_buffering() {
    let engine = memory_engine(&ManualClock::default()).await;
    engine
        .start(approval::Def, "shape2", "gated-shape2".to_owned())
        .await
        .unwrap();
    let e = engine.signal("shape2", "decision", 42).await.unwrap_err();
    assert!(matches!(e, SignalError::PayloadMismatch { .. }), "{e}");
    assert!(!event_names(&engine, "shape2").contains(&"signal_buffered".to_owned()));
    open_gate("gated-shape2");
}

#[tokio::test]
async fn a_finished_run_refuses_signals_with_its_status() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine
        .start(approval::Def, "done", "T-done".to_owned())
        .await
        .unwrap();
    wait_id(&engine, "done").await;
    engine
        .signal("done", "decision", Decision::reject("nope"))
        .await
        .unwrap();
    run.result().await.unwrap().unwrap();
    let e = engine
        .signal("done", "decision", Decision::approve())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        SignalError::RunFinished {
            run_id: "done".into(),
            status: RunStatus::Completed
        }
    );
    assert_eq!(e.to_string(), "run `done` has already finished (completed)");
}
