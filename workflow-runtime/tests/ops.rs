//! Operating runs: listing with filters, cancel (seen by the workflow), terminate, retry of a
//! failed run, purge on demand and by age, and crashes in the middle of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use workflow_runtime::prelude::*;
use workflow_runtime::store::{FileStore, MemoryDisk};
use workflow_runtime::testing::{CrashMoment, Hooks, Script, TestEngine, crash_test};
use workflow_runtime::{OpsError, ResultError, RunFilter, SignalError, TraceKind};

#[function]
async fn charge(ctx: StepContext, amount: u64) -> Result<String, StepError> {
    Ok(format!("{}:{amount}", ctx.idempotency_key()))
}

#[function]
async fn refund(receipt: String) -> Result<String, StepError> {
    Ok(format!("refunded {receipt}"))
}

#[function]
async fn ship(receipt: String) -> Result<String, StepError> {
    Ok(format!("shipped {receipt}"))
}

/// Charges, waits for a go-ahead, ships; a cancellation at the wait refunds the charge.
#[workflow]
async fn order(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    let receipt = ctx.step(charge, amount).await?;
    match ctx
        .wait_for_signal::<bool>("go", Duration::from_secs(3600), json!({ "amount": amount }))
        .await
    {
        Ok(_) => {}
        Err(WaitError::Cancelled) => {
            let undone = ctx.step(refund, receipt).await?;
            return Err(WorkflowError::new(undone));
        }
        Err(e) => return Err(e.into()),
    }
    ctx.sleep(Duration::from_secs(60)).await;
    let shipped = ctx.step(ship, receipt.clone()).await?;
    Ok(shipped)
}

fn names(engine: &Engine, run_id: &str) -> Vec<&'static str> {
    engine
        .trace(run_id)
        .unwrap()
        .iter()
        .map(|e| e.kind.name())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_wait_is_an_error_the_workflow_compensates_for() {
    let te = TestEngine::builder().register(order).build().await;
    let run = te.start(order, "o-1", 30).await.unwrap();
    te.run_until_idle().await;
    assert!(matches!(run.status().unwrap(), RunStatus::Waiting { .. }));

    let status = te.engine().cancel("o-1", "customer asked").await.unwrap();
    te.run_until_idle().await;
    assert!(
        matches!(status, RunStatus::Running),
        "the refund step is scheduled: {status}"
    );
    assert_eq!(
        run.status().unwrap(),
        RunStatus::Cancelled {
            reason: "customer asked".into()
        }
    );
    assert_eq!(te.calls_of::<refund>("o-1"), 1);
    assert_eq!(te.calls_of::<ship>("o-1"), 0);
    let trace = names(te.engine(), "o-1");
    assert!(
        trace.ends_with(&[
            "cancel_requested",
            "cancel_delivered",
            "step_scheduled",
            "step_completed",
            "cancelled"
        ]),
        "{trace:?}"
    );
    let last = te.engine().trace("o-1").unwrap().pop().unwrap();
    let TraceKind::Cancelled { output, .. } = last.kind else {
        panic!("{last}")
    };
    assert!(
        output.unwrap()["Err"]["message"]
            .as_str()
            .unwrap()
            .starts_with("refunded")
    );
    assert!(matches!(
        run.result().await,
        Err(ResultError::Stopped { .. })
    ));
    // Idempotent for a client retrying; a signal is now refused; the wait is gone.
    te.engine().cancel("o-1", "again").await.unwrap();
    assert!(matches!(
        te.signal("o-1", "go", true).await,
        Err(SignalError::RunFinished { .. })
    ));
    assert!(te.engine().pending().unwrap().is_empty());
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_step_is_stopped_and_resolves_cancelled() {
    let te = TestEngine::builder()
        .register(order)
        .replace_async::<charge, _>(|_, _| std::future::pending())
        .build()
        .await;
    // Started without waiting for idleness: the charge never ends by itself.
    te.engine().start(order, "o-1", 30).await.unwrap();
    // `?` propagates the cancellation.
    te.engine().cancel("o-1", "stuck").await.unwrap();
    te.run_until_idle().await;
    assert_eq!(
        te.engine().status("o-1").unwrap(),
        RunStatus::Cancelled {
            reason: "stuck".into()
        }
    );
    let trace = te.engine().trace("o-1").unwrap();
    let delivered = trace
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::CancelDelivered { at } => Some(at.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(delivered, "step charge");
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_is_cut_short_and_the_next_step_sees_the_cancellation() {
    let te = TestEngine::builder().register(order).build().await;
    te.start(order, "o-1", 30).await.unwrap();
    te.run_until_idle().await;
    te.signal("o-1", "go", true).await.unwrap();
    te.run_until_idle().await;
    assert!(matches!(
        te.engine().status("o-1").unwrap(),
        RunStatus::Sleeping { .. }
    ));
    te.engine().cancel("o-1", "changed mind").await.unwrap();
    te.run_until_idle().await;
    assert!(matches!(
        te.engine().status("o-1").unwrap(),
        RunStatus::Cancelled { .. }
    ));
    // The ship step saw the cancellation before running.
    assert_eq!(te.calls_of::<ship>("o-1"), 0);
    let trace = names(te.engine(), "o-1");
    assert!(
        trace.ends_with(&[
            "cancel_requested",
            "cancel_delivered",
            "step_scheduled",
            "cancel_delivered",
            "cancelled"
        ]),
        "{trace:?}"
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_a_run_at_once() {
    let te = TestEngine::builder().register(order).build().await;
    te.start(order, "o-1", 30).await.unwrap();
    te.run_until_idle().await;
    te.engine().terminate("o-1", "fraud").await.unwrap();
    te.run_until_idle().await;
    assert_eq!(
        te.engine().status("o-1").unwrap(),
        RunStatus::Terminated {
            reason: "fraud".into()
        }
    );
    assert_eq!(te.calls_of::<refund>("o-1"), 0);
    assert!(te.engine().pending().unwrap().is_empty());
    assert!(matches!(
        te.engine().terminate("o-1", "again").await,
        Err(OpsError::RunFinished { .. })
    ));
    assert!(matches!(
        te.engine().cancel("nope", "x").await,
        Err(OpsError::UnknownRun { .. })
    ));
    // Time passing fires nothing for it any more.
    te.advance(Duration::from_secs(7200)).await;
    assert!(names(te.engine(), "o-1").ends_with(&["terminated"]));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_retried_from_its_failed_step() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let te = TestEngine::builder()
        .register(order)
        .replace::<ship>(move |_, receipt| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(StepError::permanent("warehouse offline"))
            } else {
                Ok(format!("shipped {receipt}"))
            }
        })
        .build()
        .await;
    te.start(order, "o-1", 30).await.unwrap();
    te.run_until_idle().await;
    te.signal("o-1", "go", true).await.unwrap();
    te.advance(Duration::from_secs(60)).await;
    assert!(matches!(
        te.engine().status("o-1").unwrap(),
        RunStatus::Failed { .. }
    ));
    assert!(matches!(
        te.engine().retry("nope").await,
        Err(OpsError::UnknownRun { .. })
    ));
    te.engine().retry("o-1").await.unwrap();
    te.run_until_idle().await;
    assert_eq!(te.engine().status("o-1").unwrap(), RunStatus::Completed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The charge before the failure did not run again: the state was stored, not replayed.
    assert_eq!(te.calls_of::<charge>("o-1"), 1);
    assert!(matches!(
        te.engine().retry("o-1").await,
        Err(OpsError::NotFailed { .. })
    ));
    let trace = names(te.engine(), "o-1");
    assert!(
        trace.ends_with(&[
            "failed",
            "retried",
            "step_scheduled",
            "step_completed",
            "completed"
        ]),
        "{trace:?}"
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_listed_by_filter_in_pages() {
    let te = TestEngine::builder().register(order).build().await;
    for i in 0..5 {
        te.start(order, &format!("o-{i}"), i).await.unwrap();
    }
    te.run_until_idle().await;
    te.engine().terminate("o-3", "test").await.unwrap();
    te.signal("o-4", "go", true).await.unwrap();
    te.run_until_idle().await;
    let engine = te.engine();
    let ids = |f: RunFilter| -> Vec<String> {
        engine
            .runs(&f)
            .unwrap()
            .runs
            .into_iter()
            .map(|r| r.run_id)
            .collect()
    };
    assert_eq!(
        ids(RunFilter {
            waiting_for: Some("go".into()),
            ..RunFilter::default()
        }),
        ["o-0", "o-1", "o-2"]
    );
    assert_eq!(
        ids(RunFilter {
            status: Some("terminated".into()),
            ..RunFilter::default()
        }),
        ["o-3"]
    );
    assert_eq!(
        ids(RunFilter {
            status: Some("sleeping".into()),
            workflow: Some("order".into()),
            version: Some(1),
            ..RunFilter::default()
        }),
        ["o-4"]
    );
    assert!(
        ids(RunFilter {
            workflow: Some("other".into()),
            ..RunFilter::default()
        })
        .is_empty()
    );
    let now = te.now_ms();
    assert!(
        ids(RunFilter {
            created_from_ms: Some(now + 1),
            ..RunFilter::default()
        })
        .is_empty()
    );
    assert_eq!(
        ids(RunFilter {
            created_until_ms: Some(now + 1),
            ..RunFilter::default()
        })
        .len(),
        5
    );
    let first = engine
        .runs(&RunFilter {
            limit: Some(2),
            ..RunFilter::default()
        })
        .unwrap();
    assert_eq!(first.runs.len(), 2);
    assert_eq!(first.next.as_deref(), Some("o-1"));
    let second = engine
        .runs(&RunFilter {
            limit: Some(2),
            after: first.next,
            ..RunFilter::default()
        })
        .unwrap();
    assert_eq!(
        second
            .runs
            .iter()
            .map(|r| r.run_id.as_str())
            .collect::<Vec<_>>(),
        ["o-2", "o-3"]
    );
    let last = engine
        .runs(&RunFilter {
            limit: Some(2),
            after: second.next,
            ..RunFilter::default()
        })
        .unwrap();
    assert_eq!(last.runs.len(), 1);
    assert_eq!(last.next, None);
    assert!(matches!(
        engine.runs(&RunFilter {
            status: Some("asleep".into()),
            ..RunFilter::default()
        }),
        Err(OpsError::Invalid { .. })
    ));
    assert!(matches!(
        engine.runs(&RunFilter {
            limit: Some(0),
            ..RunFilter::default()
        }),
        Err(OpsError::Invalid { .. })
    ));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_an_ended_run_and_its_id_can_be_reused() {
    let te = TestEngine::builder().register(order).build().await;
    te.start(order, "o-1", 30).await.unwrap();
    te.start(order, "o-2", 30).await.unwrap();
    te.run_until_idle().await;
    // Past its wait (asleep now), a second `go` sits in the inbox, with its dedupe key.
    te.signal("o-1", "go", true).await.unwrap();
    assert_eq!(
        te.send("o-1", Signal::new("go", true).dedupe_key("k1"))
            .await
            .unwrap(),
        SignalOutcome::Buffered
    );
    assert!(matches!(
        te.engine().purge("o-1").await,
        Err(OpsError::NotPurgeable { .. })
    ));
    te.engine().terminate("o-1", "done").await.unwrap();
    te.engine().purge("o-1").await.unwrap();
    assert!(matches!(
        te.engine().status("o-1"),
        Err(EngineError::UnknownRun { .. })
    ));
    assert!(matches!(
        te.engine().trace("o-1"),
        Err(EngineError::UnknownRun { .. })
    ));
    assert!(matches!(
        te.engine().purge("o-1").await,
        Err(OpsError::UnknownRun { .. })
    ));
    // The id starts afresh: new input, a trace from 0, the old dedupe key and inbox forgotten
    // (the buffered `go` does not answer the new run's wait).
    te.start(order, "o-1", 99).await.unwrap();
    te.run_until_idle().await;
    assert!(matches!(
        te.engine().status("o-1").unwrap(),
        RunStatus::Waiting { .. }
    ));
    let trace = te.engine().trace("o-1").unwrap();
    assert_eq!(trace[0].seq, 0);
    assert!(matches!(trace[0].kind, TraceKind::Started { .. }));
    assert_eq!(
        te.send("o-1", Signal::new("go", true).dedupe_key("k1"))
            .await
            .unwrap(),
        SignalOutcome::Delivered
    );
    // The other run was untouched.
    assert!(matches!(
        te.engine().status("o-2").unwrap(),
        RunStatus::Waiting { .. }
    ));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_by_age_takes_bounded_batches_and_never_an_open_run() {
    let te = TestEngine::builder().register(order).build().await;
    for i in 0..5 {
        te.start(order, &format!("o-{i}"), i).await.unwrap();
    }
    te.run_until_idle().await;
    for i in 0..4 {
        te.engine()
            .terminate(&format!("o-{i}"), "old")
            .await
            .unwrap();
    }
    let engine = te.engine();
    let day = Duration::from_secs(86_400);
    assert_eq!(engine.purge_ended(day, 10).await.unwrap(), 0, "too young");
    te.clock().advance(day);
    assert_eq!(engine.purge_ended(day, 3).await.unwrap(), 3);
    assert_eq!(engine.purge_ended(day, 3).await.unwrap(), 1);
    assert_eq!(engine.purge_ended(day, 3).await.unwrap(), 0);
    let left = engine.runs(&RunFilter::default()).unwrap().runs;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].run_id, "o-4");
    assert!(matches!(
        engine.purge_ended(day, 0).await,
        Err(OpsError::Invalid { .. })
    ));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_policy_purges_in_the_background() {
    let clock = ManualClock::default();
    let engine = Engine::builder()
        .register(order)
        .clock(clock.clone())
        .retention(
            workflow_runtime::Retention::new(Duration::from_secs(1800))
                .every(Duration::from_millis(10)),
        )
        .open_in_memory()
        .await
        .unwrap();
    engine.start(order, "o-1", 1).await.unwrap();
    engine.start(order, "o-2", 2).await.unwrap();
    workflow_runtime::testing::settle(&engine).await;
    engine.terminate("o-1", "old").await.unwrap();
    // Old enough for the ended run; the open one still waits (its deadline is an hour).
    clock.advance(Duration::from_secs(2400));
    // Polls until the background task has run; bounded, not timed.
    for _ in 0..2000 {
        if engine.status("o-1").is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(
        engine.status("o-1"),
        Err(EngineError::UnknownRun { .. })
    ));
    assert!(matches!(
        engine.status("o-2").unwrap(),
        RunStatus::Waiting { .. }
    ));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_survives_a_crash_at_every_commit() {
    let report = crash_test(
        TestEngine::builder().register(order),
        order,
        30,
        Script::new().cancel("customer asked"),
    )
    .await;
    report.assert_ok();
    let outcome = report.outcome.as_ref().unwrap();
    assert_eq!(outcome["status"]["status"], "cancelled");
    assert!(
        report.cases.iter().any(|c| c.crashed),
        "{report}: no crash was simulated"
    );
}

/// Opens an engine on `disk`, optionally crashing at its first commit.
async fn on_disk(disk: &MemoryDisk, crash: Option<CrashMoment>) -> (Engine, Hooks) {
    let mut hooks = Hooks::default();
    if let Some(moment) = crash {
        hooks.crash_at(1, moment);
    }
    let engine = Engine::builder()
        .register(order)
        .instrument(hooks.clone())
        .open_store(FileStore::open_disk(disk.clone()).unwrap())
        .await
        .unwrap();
    (engine, hooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_purge_leaves_the_run_whole_or_gone() {
    for moment in [CrashMoment::BeforeCommit, CrashMoment::AfterCommit] {
        let disk = MemoryDisk::default();
        let (engine, _) = on_disk(&disk, None).await;
        engine.start(order, "o-1", 30).await.unwrap();
        workflow_runtime::testing::settle(&engine).await;
        engine.terminate("o-1", "done").await.unwrap();
        let before = engine.trace("o-1").unwrap();
        engine.shutdown().await;

        let (engine, hooks) = on_disk(&disk, Some(moment)).await;
        assert!(matches!(engine.purge("o-1").await, Err(OpsError::ShutDown)));
        assert!(hooks.crashed());
        engine.shutdown().await;

        let (engine, _) = on_disk(&disk, None).await;
        if moment == CrashMoment::BeforeCommit {
            assert_eq!(engine.trace("o-1").unwrap(), before);
            // The operator purges again after the restart.
            engine.purge("o-1").await.unwrap();
        }
        assert!(matches!(
            engine.status("o-1"),
            Err(EngineError::UnknownRun { .. })
        ));
        engine.start(order, "o-1", 5).await.unwrap();
        assert_eq!(engine.trace("o-1").unwrap()[0].seq, 0);
        engine.shutdown().await;
    }
}

/// Waits for `first`, then for `second`.
#[workflow]
async fn two_waits(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    ctx.wait_for_signal::<bool>("first", Duration::from_secs(3600), ())
        .await?;
    ctx.wait_for_signal::<bool>("second", Duration::from_secs(3600), ())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_by_waited_signal_agrees_with_a_scan_page_by_page() {
    let te = TestEngine::builder()
        .register(order)
        .register(two_waits)
        .build()
        .await;
    for i in 0..7 {
        te.start(two_waits, &format!("w-{i}"), ()).await.unwrap();
    }
    te.start(order, "o-1", 5).await.unwrap();
    te.run_until_idle().await;
    for i in [1, 3, 4] {
        te.signal(&format!("w-{i}"), "first", true).await.unwrap();
    }
    te.signal("w-4", "second", true).await.unwrap();
    te.engine().terminate("w-6", "test").await.unwrap();
    te.run_until_idle().await;
    let engine = te.engine();

    // What a scan of every run says: runs whose status waits for the signal.
    let scanned = |signal: &str| -> Vec<String> {
        engine
            .runs(&RunFilter::default())
            .unwrap()
            .runs
            .into_iter()
            .filter(|r| matches!(&r.status, RunStatus::Waiting { signal: s, .. } if s == signal))
            .map(|r| r.run_id)
            .collect()
    };
    // The same question through `waiting_for`, two runs a page.
    let paged = |signal: &str, workflow: Option<&str>| -> Vec<String> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = engine
                .runs(&RunFilter {
                    waiting_for: Some(signal.into()),
                    workflow: workflow.map(str::to_owned),
                    after: after.take(),
                    limit: Some(2),
                    ..RunFilter::default()
                })
                .unwrap();
            assert!(page.runs.len() <= 2);
            out.extend(page.runs.into_iter().map(|r| r.run_id));
            match page.next {
                Some(n) => after = Some(n),
                None => return out,
            }
        }
    };
    assert_eq!(paged("first", None), ["w-0", "w-2", "w-5"]);
    assert_eq!(paged("first", None), scanned("first"));
    assert_eq!(paged("second", None), ["w-1", "w-3"]);
    assert_eq!(paged("second", None), scanned("second"));
    assert_eq!(paged("go", None), ["o-1"]);
    assert_eq!(paged("go", None), scanned("go"));
    // The other filters still apply to the runs the index gives.
    assert!(paged("go", Some("two_waits")).is_empty());
    assert_eq!(paged("second", Some("two_waits")), ["w-1", "w-3"]);
    assert!(paged("nobody", None).is_empty());
    te.shutdown().await;
}
