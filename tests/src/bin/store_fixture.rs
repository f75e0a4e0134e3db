//! Writes the store-format fixture: `store_fixture <store path> <traces json path>`.
//!
//! Run once per file format, at the last commit of the old format, to produce the store the
//! next format must upgrade (`tests/fixtures/`). It uses a manual clock at
//! [`FIXTURE_MS`](integration_tests::fixture::FIXTURE_MS) and leaves runs parked on a signal
//! (one with a long trace), parked on a timer, and finished, then writes every run's trace as
//! the store reads it, for the test to compare.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::fixture::{FIXTURE_MS, approve_then_pay, sleep_then_pay};
use workflow_runtime::prelude::*;
use workflow_runtime::{ManualClock, TraceEvent};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, traces] = args.as_slice() else {
        eprintln!("usage: store_fixture <store path> <traces json path>");
        std::process::exit(2);
    };
    let clock = ManualClock::new(FIXTURE_MS);
    let engine = Engine::builder()
        .clock(clock.clone())
        .register(approve_then_pay)
        .register(sleep_then_pay)
        .open(store)
        .await
        .expect("open the store");
    let started = [
        ("wait-short", "o-1", 2),
        ("wait-long", "o-22", 40),
        ("done-approved", "o-333", 3),
        ("done-rejected", "o-4444", 1),
    ];
    for (run, order, steps) in started {
        engine
            .start(approve_then_pay, run, (order.to_owned(), steps))
            .await
            .expect("start");
    }
    engine
        .start(sleep_then_pay, "sleeping", "o-55555".to_owned())
        .await
        .expect("start");
    // Every run parks (or, for the sleeper, arms its timer) on its own; wait for all five.
    loop {
        let waiting = engine.pending().expect("pending").len();
        let sleeping = engine.status("sleeping").expect("status");
        if waiting == 4 && matches!(sleeping, RunStatus::Sleeping { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clock.advance(Duration::from_secs(60));
    for (run, approve) in [("done-approved", true), ("done-rejected", false)] {
        engine
            .send(run, Signal::new("decision", approve))
            .await
            .expect("signal");
        let handle = engine.handle(approve_then_pay, run).expect("handle");
        handle.result().await.expect("result").expect("finished");
    }
    let mut all: BTreeMap<String, Vec<TraceEvent>> = BTreeMap::new();
    for run in [
        "wait-short",
        "wait-long",
        "done-approved",
        "done-rejected",
        "sleeping",
    ] {
        all.insert(run.to_owned(), engine.trace(run).expect("trace"));
    }
    engine.shutdown().await;
    std::fs::write(
        traces,
        serde_json::to_string_pretty(&all).expect("encode the traces"),
    )
    .expect("write the traces");
}
