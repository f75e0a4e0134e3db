//! Timers of parked runs stay in the store until they come due: the engine pages them in as
//! the clock advances (`timers.rs`). These tests check that paging loses no deadline and fires
//! none early, across pages, restarts and runs parked while the engine is up.

mod engine_support;

use std::path::Path;

use engine_support::*;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::settle;

async fn open(path: &Path, clock: &ManualClock) -> Engine {
    with_all(Engine::builder().clock(clock.clone()))
        .open(path)
        .await
        .expect("store opens")
}

fn sleeping(engine: &Engine, run_id: &str) -> bool {
    matches!(engine.status(run_id).unwrap(), RunStatus::Sleeping { .. })
}

fn completed(engine: &Engine, run_id: &str) -> bool {
    matches!(engine.status(run_id).unwrap(), RunStatus::Completed)
}

/// More runs than one page holds, asleep for one to three days, each fires once its deadline
/// has passed and none before: the clock moves by two hours at a time, and after each move every
/// run whose deadline passed has completed and every other one still sleeps.
#[tokio::test]
async fn parked_runs_across_many_pages_wake_exactly_when_due() {
    const RUNS: u64 = 1_500;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    // Minutes from one day to three days, spread so that many runs share a deadline.
    let minutes = |i: u64| 1_440 + (i % 97) * 30;
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..RUNS {
        let engine = engine.clone();
        starts.spawn(async move {
            engine
                .start(nap::Def, format!("nap-{i:05}"), minutes(i))
                .await
                .unwrap();
        });
    }
    starts.join_all().await;
    settle(&engine).await;
    // Reopened: nothing is held in memory for deadlines a day away.
    engine.shutdown().await;
    let engine = open(&path, &clock).await;
    settle(&engine).await;
    for hour in (2..=74_u64).step_by(2) {
        clock.advance(Duration::from_secs(2 * 3_600));
        settle(&engine).await;
        for i in 0..RUNS {
            let id = format!("nap-{i:05}");
            let due = minutes(i) <= hour * 60;
            assert_eq!(
                completed(&engine, &id),
                due,
                "{id} (asleep {} min) after {hour} h",
                minutes(i)
            );
            assert_eq!(sleeping(&engine, &id), !due, "{id} after {hour} h");
        }
    }
    engine.shutdown().await;
}

/// A run parked while the engine is up, on a deadline beyond what has been paged in, is left
/// to the store and still fires; so does one parked on a near deadline, and one whose deadline
/// passed while the engine was down.
#[tokio::test]
async fn runs_parked_while_up_and_while_down_all_fire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine.start(nap::Def, "far", 3 * 1_440).await.unwrap();
    engine.start(nap::Def, "near", 0).await.unwrap();
    engine.start(nap::Def, "soon", 1).await.unwrap();
    settle(&engine).await;
    assert!(completed(&engine, "near"));
    assert!(sleeping(&engine, "soon") && sleeping(&engine, "far"));
    clock.advance(Duration::from_secs(60));
    settle(&engine).await;
    assert!(completed(&engine, "soon"));
    assert!(sleeping(&engine, "far"));

    engine.start(nap::Def, "later", 2 * 1_440).await.unwrap();
    settle(&engine).await;
    clock.advance(Duration::from_secs(2 * 86_400));
    settle(&engine).await;
    assert!(completed(&engine, "later"));
    assert!(sleeping(&engine, "far"));
    engine.shutdown().await;

    // Down while the last deadline passes.
    clock.advance(Duration::from_secs(2 * 86_400));
    let engine = open(&path, &clock).await;
    settle(&engine).await;
    assert!(completed(&engine, "far"));
    engine.shutdown().await;
}

/// A wait whose signal arrives keeps its timer from firing, and a run registered only after
/// open gets its far timers paged in too.
#[tokio::test]
async fn a_workflow_registered_after_open_gets_its_timers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.redb");
    let clock = ManualClock::default();
    let engine = open(&path, &clock).await;
    engine.start(nap::Def, "late-reg", 2 * 1_440).await.unwrap();
    settle(&engine).await;
    engine.shutdown().await;

    // Opened without `nap`: its timer is not driven.
    let engine = Engine::builder()
        .clock(clock.clone())
        .register(approval::Def)
        .open(&path)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3 * 86_400));
    settle(&engine).await;
    assert!(sleeping(&engine, "late-reg"));
    engine.register(nap::Def).await.unwrap();
    settle(&engine).await;
    assert!(completed(&engine, "late-reg"));
    engine.shutdown().await;
}
