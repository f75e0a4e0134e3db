//! Schedules over [`PgStore`]: a schedule is a run record like any other, so this backend keeps
//! it without a table of its own. A schedule created on one engine is caught up, after
//! downtime, by an engine opened afresh on the same database (single engine,
//! `Fence::Exclusive`; shared engines refuse schedules).

use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::settle;
use workflow_runtime::{CatchUp, Overlap, RunFilter, Schedule, TraceKind, schedule_run_id};

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;
const MINUTE: u64 = 60_000;

#[workflow]
async fn job(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n)
}

async fn engine_on(url: &str, clock: &ManualClock) -> Engine {
    let store = PgStore::open_async(url).await.expect("the store opens");
    Engine::builder()
        .register(job)
        .clock(clock.clone())
        .open_store(store)
        .await
        .expect("the engine opens")
}

fn runs(engine: &Engine) -> Vec<String> {
    let filter = RunFilter {
        workflow: Some("job".to_owned()),
        ..RunFilter::default()
    };
    engine
        .runs(&filter)
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_ticks_and_is_caught_up_after_downtime_on_postgres() {
    let url = TestCluster::shared().create_database();
    let clock = ManualClock::new(T0);
    let engine = engine_on(&url, &clock).await;
    let every = Schedule::every(Duration::from_secs(60))
        .catch_up(CatchUp::All { max: 2 })
        .overlap(Overlap::Allow);
    engine.schedule(job, "s", every.clone(), 3).await.unwrap();
    clock.advance(Duration::from_millis(MINUTE));
    settle(&engine).await;
    assert_eq!(runs(&engine), [schedule_run_id("s", T0 + MINUTE)]);
    engine.shutdown().await;
    drop(engine);

    clock.advance(Duration::from_millis(5 * MINUTE + MINUTE / 2));
    let engine = engine_on(&url, &clock).await;
    settle(&engine).await;
    let want: Vec<String> = [1, 5, 6]
        .iter()
        .map(|i| schedule_run_id("s", T0 + i * MINUTE))
        .collect();
    assert_eq!(runs(&engine), want);
    let missed: Vec<(u64, u64, u64)> = engine
        .trace("@schedule/s")
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            TraceKind::ScheduleMissed {
                count,
                first_ms,
                last_ms,
            } => Some((count, first_ms, last_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(missed, [(3, T0 + 2 * MINUTE, T0 + 4 * MINUTE)]);
    // The same definition again changes nothing; the schedule is listed with its progress.
    engine.schedule(job, "s", every, 3).await.unwrap();
    let info = engine.schedule_info("s").unwrap().unwrap();
    assert_eq!((info.started, info.skipped), (3, 3));
    assert_eq!(info.next_ms, Some(T0 + 7 * MINUTE));
    engine.shutdown().await;
}

fn shared_settings(owner: &str) -> workflow_runtime::LeaseSettings {
    workflow_runtime::LeaseSettings::new(Duration::from_secs(5))
        .poll_every(Duration::from_millis(50))
        .owner(owner)
}

async fn shared_worker(url: &str, owner: &str) -> Engine {
    let store = PgStore::open_async(url).await.expect("the store opens");
    Engine::builder()
        .register(job)
        .shared(shared_settings(owner))
        .open_store(store)
        .await
        .expect("the worker opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shared_workers_fire_each_tick_of_a_schedule_once() {
    let url = TestCluster::shared().create_database();
    let w1 = shared_worker(&url, "w1").await;
    let w2 = shared_worker(&url, "w2").await;
    let every_200ms = Schedule::every(Duration::from_millis(200)).overlap(Overlap::Allow);
    w1.schedule(job, "s", every_200ms, 1).await.unwrap();
    // Both workers poll for due timers; let several ticks pass (bounded, not a timing check).
    for _ in 0..3_000 {
        if w2.schedule_info("s").unwrap().unwrap().started >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w1.shutdown().await;
    w2.shutdown().await;

    // Read what they left with an engine that registers nothing (it fires nothing).
    let store = PgStore::open_async(&url).await.unwrap();
    let reader = Engine::builder().open_store(store).await.unwrap();
    let mut fired = Vec::new();
    for event in reader.trace("@schedule/s").unwrap() {
        if let TraceKind::ScheduleFired {
            tick_ms,
            run_id,
            outcome,
        } = event.kind
        {
            assert!(outcome == "started" || outcome == "existed", "{outcome}");
            assert_eq!(run_id, schedule_run_id("s", tick_ms));
            fired.push(run_id);
        }
    }
    assert!(fired.len() >= 8, "{fired:?}");
    let unique: std::collections::BTreeSet<&String> = fired.iter().collect();
    assert_eq!(unique.len(), fired.len(), "a tick fired twice: {fired:?}");
    let decided: Vec<String> = reader.inspect("@schedule/s").unwrap().state["starting"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d[1].as_str().unwrap().to_owned())
        .collect();
    for run_id in runs(&reader) {
        let starts = reader
            .trace(&run_id)
            .unwrap()
            .iter()
            .filter(|e| e.kind.name() == "started")
            .count();
        assert_eq!(starts, 1, "{run_id} started {starts} times");
        assert!(
            unique.contains(&run_id) || decided.contains(&run_id),
            "{run_id} was started by no firing"
        );
    }
    reader.shutdown().await;
}
