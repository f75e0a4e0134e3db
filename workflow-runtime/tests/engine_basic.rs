//! Starting runs, steps, results, statuses, traces, timers and group commit.

mod engine_support;

use engine_support::*;
use workflow_runtime::prelude::*;
use workflow_runtime::{Clock, TraceKind};
use workflow_runtime::{ResultError, StartError};

#[tokio::test]
async fn a_run_executes_its_steps_and_completes() {
    let clock = ManualClock::default();
    let engine = memory_engine(&clock).await;
    let run = engine.start(pipeline::Def, "p-1", 20).await.unwrap();
    assert_eq!(run.run_id(), "p-1");
    assert_eq!(run.result().await.unwrap().unwrap(), 41);
    assert_eq!(run.status().unwrap(), RunStatus::Completed);
    assert_eq!(
        event_names(&engine, "p-1"),
        [
            "started",
            "step_scheduled",
            "step_completed",
            "step_scheduled",
            "step_completed",
            "completed"
        ]
    );
    let trace = engine.trace("p-1").unwrap();
    assert!(trace.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    let TraceKind::StepScheduled {
        step,
        input,
        idempotency_key,
    } = &trace[1].kind
    else {
        panic!("{:?}", trace[1]);
    };
    assert_eq!((step.as_str(), input), ("double", &serde_json::json!(20)));
    assert_eq!(idempotency_key, "p-1:double:1");
    assert_eq!(
        trace[5].kind,
        TraceKind::Completed {
            output: serde_json::json!({"Ok": 41})
        }
    );
    for e in &trace {
        assert_eq!(e.at_ms, 1_767_225_600_000);
        assert!(!e.to_string().contains('\n'));
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn a_workflow_error_is_the_runs_output() {
    let engine = memory_engine(&ManualClock::default()).await;
    let run = engine.start(pipeline::Def, "p-13", 13).await.unwrap();
    let err = run.result().await.unwrap().unwrap_err();
    assert_eq!(err.message, "unlucky 13");
    let RunStatus::Failed { message } = run.status().unwrap() else {
        panic!("{:?}", run.status());
    };
    assert!(message.contains("unlucky 13"), "{message}");
}

#[tokio::test]
async fn start_is_idempotent_on_the_run_id() {
    let engine = memory_engine(&ManualClock::default()).await;
    let first = engine.start(pipeline::Def, "same", 1).await.unwrap();
    assert_eq!(first.result().await.unwrap().unwrap(), 3);
    let again = engine.start(pipeline::Def, "same", 1).await.unwrap();
    assert_eq!(again.result().await.unwrap().unwrap(), 3);
    assert_eq!(
        event_names(&engine, "same")
            .iter()
            .filter(|e| *e == "started")
            .count(),
        1
    );

    let other_input = engine.start(pipeline::Def, "same", 2).await.unwrap_err();
    assert!(
        matches!(other_input, StartError::Conflict { .. }),
        "{other_input}"
    );
    assert_eq!(
        other_input.to_string(),
        "run `same` already exists with a different input"
    );
    let other_workflow = engine
        .start(approval::Def, "same", "t".to_owned())
        .await
        .unwrap_err();
    assert_eq!(
        other_workflow.to_string(),
        "run `same` already exists for workflow `pipeline`, not `approval`"
    );
    let wrong_handle = engine.handle(approval::Def, "same").unwrap_err();
    assert!(matches!(wrong_handle, EngineError::Conflict { .. }));
    let handle = engine.handle(pipeline::Def, "same").unwrap();
    assert_eq!(handle.result().await.unwrap().unwrap(), 3);
}

#[tokio::test]
async fn unknown_runs_and_unregistered_workflows_are_errors() {
    let engine = memory_engine(&ManualClock::default()).await;
    for e in [
        engine.status("nope").unwrap_err(),
        engine.trace("nope").unwrap_err(),
        engine
            .signal("nope", "decision", 1)
            .await
            .unwrap_err()
            .into(),
        engine.handle(pipeline::Def, "nope").unwrap_err(),
    ] {
        assert_eq!(
            e,
            EngineError::UnknownRun {
                run_id: "nope".into()
            }
        );
        assert_eq!(e.to_string(), "no run with id `nope` exists");
    }
    let bare = Engine::builder().open_in_memory().await.unwrap();
    let e = bare.start(pipeline::Def, "x", 1).await.unwrap_err();
    assert!(matches!(e, StartError::NotRegistered { .. }), "{e}");
}

#[tokio::test]
async fn a_sleep_ends_when_the_manual_clock_passes_its_deadline() {
    let clock = ManualClock::default();
    let t0 = clock.now_ms();
    let engine = memory_engine(&clock).await;
    let run = engine.start(nap::Def, "nap", 90).await.unwrap();
    let until = t0 + 90 * 60_000;
    assert_eq!(
        run.status().unwrap(),
        RunStatus::Sleeping { until_ms: until }
    );
    clock.advance(Duration::from_secs(60 * 60));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        run.status().unwrap(),
        RunStatus::Sleeping { until_ms: until }
    );
    clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(run.result().await.unwrap().unwrap(), until);
    assert_eq!(
        event_names(&engine, "nap"),
        ["started", "sleep_started", "woke", "completed"]
    );
}

#[tokio::test]
async fn a_wait_times_out_after_seven_days_of_manual_time() {
    let clock = ManualClock::default();
    let engine = memory_engine(&clock).await;
    let run = engine
        .start(approval::Def, "late", "T-1".to_owned())
        .await
        .unwrap();
    let status = eventually("the wait", || {
        matches!(run.status().unwrap(), RunStatus::Waiting { .. }).then_some(())
    });
    status.await;
    clock.advance(WEEK - Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(matches!(run.status().unwrap(), RunStatus::Waiting { .. }));
    clock.advance(Duration::from_millis(1));
    assert_eq!(run.result().await.unwrap().unwrap(), Outcome::TimedOut);
    assert!(engine.pending().unwrap().is_empty());
    let names = event_names(&engine, "late");
    assert_eq!(names[names.len() - 2..], ["timed_out", "completed"]);
}

#[tokio::test]
async fn a_panic_in_a_step_fails_only_its_run() {
    let engine = memory_engine(&ManualClock::default()).await;
    let bad = engine
        .start(single::Def, "boom", (StepKind::Boom, "b1".to_owned()))
        .await
        .unwrap();
    let good = engine.start(pipeline::Def, "fine", 5).await.unwrap();
    let err = bad.result().await.unwrap().unwrap_err();
    assert!(
        err.message.contains("step `boom` panicked: kaboom b1"),
        "{err}"
    );
    assert!(matches!(bad.status().unwrap(), RunStatus::Failed { .. }));
    assert_eq!(good.result().await.unwrap().unwrap(), 11);
}

#[tokio::test]
async fn a_panic_in_the_workflow_fails_only_its_run_and_keeps_the_last_state() {
    let engine = memory_engine(&ManualClock::default()).await;
    let bad = engine.start(pipeline::Def, "beast", 666).await.unwrap();
    let good = engine.start(pipeline::Def, "fine", 7).await.unwrap();
    let err = bad.result().await.unwrap_err();
    let ResultError::RunFailed { run_id, message } = &err else {
        panic!("{err}");
    };
    assert_eq!(run_id, "beast");
    assert!(
        message.starts_with("workflow panicked: the number of the beast"),
        "{message}"
    );
    assert_eq!(
        bad.status().unwrap(),
        RunStatus::Failed {
            message: message.clone()
        }
    );
    // The step result that led to the panic is recorded.
    assert_eq!(
        event_names(&engine, "beast"),
        ["started", "step_scheduled", "step_completed", "failed"]
    );
    assert_eq!(good.result().await.unwrap().unwrap(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let engine = with_all(Engine::builder())
        .open(dir.path().join("group.redb"))
        .await
        .unwrap();
    const RUNS: u64 = 200;
    let before = engine.commit_count();
    let handles = (0..RUNS).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let run = engine
                .start(pipeline::Def, format!("g-{i}"), 1000 + i)
                .await
                .unwrap();
            run.result().await.unwrap().unwrap()
        })
    });
    let handles: Vec<_> = handles.collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), 2 * (1000 + i as u64) + 1);
    }
    // Three checkpoints per run: start, after `double`, after `add`.
    let transitions = 3 * RUNS;
    let commits = engine.commit_count() - before;
    println!("{transitions} checkpoints in {commits} commits");
    assert!(
        commits * 2 < transitions,
        "{commits} commits for {transitions} checkpoints"
    );
    engine.shutdown().await;
}
