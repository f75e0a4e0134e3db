//! Restarts: shutting down (or dropping) an engine and opening the same file again, versions,
//! and files that are not stores.

mod engine_support;

use std::path::Path;

use engine_support::*;
use workflow_runtime::prelude::*;
use workflow_runtime::{Clock, OpenError, TraceKind};
use workflow_runtime::{ResultError, SignalError};

async fn open(path: &Path, clock: &ManualClock) -> Engine {
    with_all(Engine::builder().clock(clock.clone()))
        .open(path)
        .await
        .expect("store opens")
}

#[tokio::test]
async fn a_waiting_run_survives_a_restart_and_finishes_on_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();

    let engine = open(&path, &clock).await;
    engine
        .start(approval::Def, "r-1", "T-restart".to_owned())
        .await
        .unwrap();
    let wait = wait_id(&engine, "r-1").await;
    let pending = engine.pending().unwrap();
    let trace = engine.trace("r-1").unwrap();
    engine.shutdown().await;
    assert_eq!(
        engine.status("r-1").unwrap_err(),
        EngineError::ShutDown,
        "a shut down engine refuses calls"
    );

    let engine = open(&path, &clock).await;
    assert_eq!(engine.pending().unwrap(), pending);
    assert_eq!(engine.trace("r-1").unwrap(), trace);
    let outcome = engine
        .send(
            "r-1",
            Signal::new("decision", Decision::approve()).for_wait(wait),
        )
        .await
        .unwrap();
    assert_eq!(outcome, SignalOutcome::Delivered);
    let run = engine.handle(approval::Def, "r-1").unwrap();
    assert!(matches!(
        run.result().await.unwrap().unwrap(),
        Outcome::Refunded { .. }
    ));
    assert_eq!(calls("refund:T-restart:90"), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn dropping_the_engine_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    let run = engine
        .start(approval::Def, "r-drop", "T-drop".to_owned())
        .await
        .unwrap();
    wait_id(&engine, "r-drop").await;
    drop(run);
    drop(engine);
    let engine = open(&path, &clock).await;
    assert!(matches!(
        engine.status("r-drop").unwrap(),
        RunStatus::Waiting { .. }
    ));
}

#[tokio::test]
async fn a_deadline_that_passed_while_down_fires_on_open_and_is_never_extended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine
        .start(approval::Def, "r-late", "T-late".to_owned())
        .await
        .unwrap();
    wait_id(&engine, "r-late").await;
    engine.shutdown().await;

    // Six days pass while down: the reopened run still times out one day later, not seven.
    clock.advance(Duration::from_secs(6 * 86_400));
    let engine = open(&path, &clock).await;
    let RunStatus::Waiting { deadline_ms, .. } = engine.status("r-late").unwrap() else {
        panic!("not waiting");
    };
    assert!(deadline_ms - clock.now_ms() <= 86_400_000);
    engine.shutdown().await;

    clock.advance(Duration::from_secs(2 * 86_400));
    let engine = open(&path, &clock).await;
    let run = engine.handle(approval::Def, "r-late").unwrap();
    assert_eq!(run.result().await.unwrap().unwrap(), Outcome::TimedOut);
}

#[tokio::test]
async fn a_step_in_flight_at_shutdown_runs_again_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine
        .start(
            single::Def,
            "r-step",
            (StepKind::SlowOnce, "slow-r".to_owned()),
        )
        .await
        .unwrap();
    eventually("the step to start", || (calls("slow-r") == 1).then_some(())).await;
    engine.shutdown().await;

    let engine = open(&path, &clock).await;
    let run = engine.handle(single::Def, "r-step").unwrap();
    assert_eq!(run.result().await.unwrap().unwrap(), "done:slow-r");
    assert_eq!(calls("slow-r"), 2);
    // One scheduling, so one idempotency key, for both executions.
    let names = event_names(&engine, "r-step");
    assert_eq!(
        names,
        ["started", "step_scheduled", "step_completed", "completed"]
    );
}

#[tokio::test]
async fn registering_after_open_resumes_that_workflows_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine
        .start(
            single::Def,
            "r-late-reg",
            (StepKind::SlowOnce, "slow-reg".to_owned()),
        )
        .await
        .unwrap();
    engine
        .start(approval::Def, "r-wait-reg", "T-reg".to_owned())
        .await
        .unwrap();
    eventually("the step to start", || {
        (calls("slow-reg") == 1).then_some(())
    })
    .await;
    wait_id(&engine, "r-wait-reg").await;
    engine.shutdown().await;

    let engine = Engine::builder()
        .clock(clock.clone())
        .open(&path)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(calls("slow-reg"), 1, "not registered: left alone");
    let e = engine
        .signal("r-wait-reg", "decision", Decision::approve())
        .await
        .unwrap_err();
    assert!(matches!(e, SignalError::NotRegistered { .. }), "{e}");
    let e = engine
        .handle(single::Def, "r-late-reg")
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(matches!(e, ResultError::NotRegistered { .. }), "{e}");

    engine.register(single::Def).await.unwrap();
    engine.register(approval::Def).await.unwrap();
    let run = engine.handle(single::Def, "r-late-reg").unwrap();
    assert_eq!(run.result().await.unwrap().unwrap(), "done:slow-reg");
    clock.advance(WEEK);
    let run = engine.handle(approval::Def, "r-wait-reg").unwrap();
    assert_eq!(run.result().await.unwrap().unwrap(), Outcome::TimedOut);
}

#[tokio::test]
async fn a_run_of_another_layout_is_parked_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine
        .start(approval::Def, "r-v", "T-v".to_owned())
        .await
        .unwrap();
    let wait = wait_id(&engine, "r-v").await;
    engine.shutdown().await;

    // Same name, other layout: `approval::V2` panics if it is ever handed the old state.
    let engine = Engine::builder()
        .clock(clock.clone())
        .register(approval::V2)
        .open(&path)
        .await
        .unwrap();
    let RunStatus::Incompatible { reason } = engine.status("r-v").unwrap() else {
        panic!("{:?}", engine.status("r-v"));
    };
    assert!(
        reason.contains("0000000000000a11") && reason.contains("0000000000000a12"),
        "{reason}"
    );
    let e = engine
        .signal("r-v", "decision", Decision::approve())
        .await
        .unwrap_err();
    assert!(matches!(e, SignalError::Incompatible { .. }), "{e}");
    let e = engine
        .handle(approval::V2, "r-v")
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(matches!(e, ResultError::Incompatible { .. }), "{e}");
    // Its deadline passes: still not driven, only noted in the trace.
    clock.advance(WEEK + Duration::from_secs(1));
    let noted = eventually("the incompatibility to be traced", || {
        let trace = engine.trace("r-v").unwrap();
        matches!(trace.last().unwrap().kind, TraceKind::Incompatible { .. }).then_some(trace)
    })
    .await;
    engine.shutdown().await;

    // The original code finds the record intact and finishes the run.
    let engine = open(&path, &clock).await;
    assert_eq!(
        engine.status("r-v").unwrap(),
        RunStatus::Waiting {
            signal: "decision".into(),
            wait_id: wait,
            deadline_ms: ManualClock::default().now_ms() + WEEK.as_millis() as u64,
        }
    );
    assert_eq!(engine.trace("r-v").unwrap(), noted);
    let run = engine.handle(approval::Def, "r-v").unwrap();
    assert_eq!(run.result().await.unwrap().unwrap(), Outcome::TimedOut);
}

#[tokio::test]
async fn a_state_that_does_not_decode_parks_the_run_as_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine
        .start(approval::Def, "r-liar", "T-liar".to_owned())
        .await
        .unwrap();
    wait_id(&engine, "r-liar").await;
    engine.shutdown().await;

    let engine = Engine::builder()
        .clock(clock.clone())
        .register(liar::Def)
        .open(&path)
        .await
        .unwrap();
    let e = engine
        .signal("r-liar", "decision", Decision::approve())
        .await
        .unwrap_err();
    let SignalError::Incompatible { reason, .. } = &e else {
        panic!("{e}");
    };
    assert!(reason.contains("does not decode"), "{reason}");
    assert_eq!(
        engine.status("r-liar").unwrap(),
        RunStatus::Incompatible {
            reason: reason.clone()
        }
    );
    assert!(engine.pending().unwrap().is_empty());
    let names = event_names(&engine, "r-liar");
    assert_eq!(names.last().unwrap(), "incompatible");
    assert!(!names.contains(&"signal_received".to_owned()));
    let e = engine
        .handle(liar::Def, "r-liar")
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(matches!(e, ResultError::Incompatible { .. }), "{e}");
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(200)).unwrap();
    let e = Engine::open(&text).await.unwrap_err();
    assert!(
        matches!(e, EngineError::Open(OpenError::NotAStore { .. })),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("notes.txt is not a workflow-runtime store"),
        "{e}"
    );
    assert!(
        std::fs::read_to_string(&text)
            .unwrap()
            .starts_with("these are my notes")
    );

    let foreign = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("accounts"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let e = Engine::open(&foreign).await.unwrap_err();
    assert!(
        matches!(e, EngineError::Open(OpenError::NotAStore { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("accounts"), "{e}");
}

#[tokio::test]
async fn the_same_file_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let first = Engine::open(&path).await.unwrap();
    let e = Engine::open(&path).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "store {} is already open by another engine or process",
            path.display()
        )
    );
    first.shutdown().await;
    Engine::open(&path).await.unwrap().shutdown().await;
}

#[tokio::test]
async fn a_damaged_store_is_refused_at_open_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    Engine::open(&path).await.unwrap().shutdown().await;
    // Offsets inside redb 4.6's header and its first tree page; the second makes redb panic,
    // which the engine reports as damage too.
    for offset in [100, 4096] {
        let damaged = dir.path().join(format!("damaged-{offset}.redb"));
        let mut bytes = std::fs::read(&path).unwrap();
        for b in &mut bytes[offset..offset + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&damaged, bytes).unwrap();
        let e = Engine::open(&damaged).await.unwrap_err();
        assert!(
            matches!(e, EngineError::Open(OpenError::Corrupt { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("is damaged"), "{e}");
    }
}

/// redb writes a new file's header first and its magic number last; a process killed in
/// between used to leave a store file that every later open refused. Creation now happens
/// under `<name>.creating`, so such a kill leaves only that file, and the next open creates the
/// store anyway.
#[tokio::test]
async fn a_store_creation_cut_short_by_a_kill_does_not_block_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let partial = dir.path().join("wf.redb.creating");
    // The shape such a kill leaves: a header with a zeroed magic number.
    let mut header = vec![0u8; 73_728];
    header[9..13].copy_from_slice(&[0, 4, 0, 0]);
    std::fs::write(&partial, &header).unwrap();

    let clock = ManualClock::new(1_000);
    let engine = open(&path, &clock).await;
    engine.shutdown().await;
    assert!(!partial.exists(), "the partial file is replaced");
    let engine = open(&path, &clock).await;
    engine.shutdown().await;

    // The same partial file under the store's own name is still refused, untouched: the engine
    // cannot tell it from a foreign file.
    let misplaced = dir.path().join("misplaced.redb");
    std::fs::write(&misplaced, &header).unwrap();
    let e = Engine::open(&misplaced).await.unwrap_err();
    assert!(
        matches!(e, EngineError::Open(OpenError::NotAStore { .. })),
        "{e}"
    );
    assert_eq!(std::fs::read(&misplaced).unwrap(), header);
}
