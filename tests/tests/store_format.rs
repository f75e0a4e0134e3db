//! The store file's format across releases: a store written by the previous release
//! (`tests/fixtures/store-v1.redb`, by `src/bin/store_fixture.rs`) opens in this one, its traces
//! read whole, and its parked runs finish, paying exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use integration_tests::fixture::{FIXTURE_MS, PAID, approve_then_pay, sleep_then_pay};
use workflow_runtime::prelude::*;
use workflow_runtime::{ManualClock, TraceEvent};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

async fn open(path: &Path, clock: &ManualClock) -> Engine {
    Engine::builder()
        .clock(clock.clone())
        .register(approve_then_pay)
        .register(sleep_then_pay)
        .open(path)
        .await
        .expect("the previous release's store opens")
}

#[tokio::test]
async fn a_store_written_by_the_previous_release_opens_reads_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    std::fs::copy(fixture("store-v1.redb"), &path).unwrap();
    let expected: BTreeMap<String, Vec<TraceEvent>> =
        serde_json::from_str(&std::fs::read_to_string(fixture("store-v1-traces.json")).unwrap())
            .unwrap();
    let clock = ManualClock::new(FIXTURE_MS + 120_000);

    let engine = open(&path, &clock).await;
    for (run, trace) in &expected {
        assert_eq!(&engine.trace(run).unwrap(), trace, "the trace of `{run}`");
    }
    assert_eq!(
        engine.pending().unwrap().len(),
        2,
        "two runs wait for a signal"
    );
    assert!(matches!(
        engine.status("sleeping").unwrap(),
        RunStatus::Sleeping { .. }
    ));
    // Once more after a restart, so that the upgrade (if any) is not redone on every open.
    engine.shutdown().await;
    let engine = open(&path, &clock).await;
    for (run, trace) in &expected {
        assert_eq!(
            &engine.trace(run).unwrap(),
            trace,
            "the trace of `{run}` after a restart"
        );
    }

    for run in ["wait-short", "wait-long"] {
        engine
            .send(run, Signal::new("decision", true))
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(8 * 86_400));
    let short = engine.handle(approve_then_pay, "wait-short").unwrap();
    assert_eq!(short.result().await.unwrap().unwrap(), "paid o-1");
    let long = engine.handle(approve_then_pay, "wait-long").unwrap();
    assert_eq!(long.result().await.unwrap().unwrap(), "paid o-22");
    let sleeper = engine.handle(sleep_then_pay, "sleeping").unwrap();
    assert_eq!(sleeper.result().await.unwrap().unwrap(), "paid o-55555 700");
    let mut paid = PAID.lock().unwrap().clone();
    paid.sort();
    assert_eq!(
        paid,
        ["o-1", "o-22", "o-55555"],
        "each parked run paid once"
    );

    // The finished runs' traces are the old rows followed by what the new release appended,
    // numbered on from where the old ones stopped.
    for run in ["wait-short", "wait-long", "sleeping"] {
        let trace = engine.trace(run).unwrap();
        let old = &expected[run];
        assert_eq!(
            &trace[..old.len()],
            old.as_slice(),
            "`{run}` keeps its old trace"
        );
        assert!(
            trace.len() > old.len(),
            "`{run}` traced its new transitions"
        );
        for (i, event) in trace.iter().enumerate() {
            assert_eq!(event.seq, i as u64, "`{run}` is numbered without gaps");
        }
    }
    engine.shutdown().await;
}
