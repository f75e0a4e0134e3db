//! The file store's layout: trace tails inside the `runs` values, and the format marker.

use redb::{Database, ReadableDatabase, ReadableTableMetadata};
use serde_json::json;

use super::value::{self, TAIL_EVENTS};
use super::{FORMAT, FORMAT_KEY, FORMAT_V1, FileStore, META, MemoryDisk, RUNS, TRACE};
use crate::error::OpenError;
use crate::model::Command;
use crate::store::{CheckpointWrite, RunWrite, Store};
use crate::trace::{TraceEvent, TraceKind};
use crate::types::{RunRecord, RunStatus};

fn record(seq: u64, pending: Option<Command>) -> RunRecord {
    let mut rec = RunRecord::new("wf", json!({ "Step": seq }), 1_000);
    rec.seq = seq;
    rec.status = if pending.is_some() {
        RunStatus::Running
    } else {
        RunStatus::Completed
    };
    if pending.is_none() {
        rec.output = Some(json!({ "Ok": seq }));
    }
    rec.pending = pending;
    rec
}

fn step() -> Command {
    Command::Step {
        name: "s".to_owned(),
        input: json!({ "n": 1 }),
        retry: None,
        attempt: 1,
        not_before_ms: None,
    }
}

fn event(n: u64) -> TraceEvent {
    TraceEvent {
        seq: 0,
        at_ms: 1_000 + n,
        checkpoint: n,
        kind: TraceKind::Woke { until_ms: n },
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// How many of the run's events sit in `trace` rows and how many in its value's tail.
fn split_of(store: &FileStore, run_id: &str) -> (u64, u64) {
    store
        .read(|txn| {
            let trace = txn.open_table(TRACE).expect("trace");
            let rows = trace
                .range((run_id, 0)..=(run_id, u64::MAX))
                .expect("range")
                .count() as u64;
            let runs = txn.open_table(RUNS).expect("runs");
            let tail = match runs.get(run_id).expect("get") {
                Some(v) => {
                    let split = value::split(run_id, v.value()).expect("a value");
                    value::events(run_id, split.tail).count() as u64
                }
                None => 0,
            };
            Ok((rows, tail))
        })
        .expect("read")
}

/// Every event the store numbered, in order: `until_ms` carries the number the test gave.
fn check(store: &FileStore, run_id: &str, given: &[u64]) {
    let trace = store.trace(run_id).expect("trace");
    let seqs: Vec<u64> = trace.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..given.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<u64> = trace
        .iter()
        .map(|e| match e.kind {
            TraceKind::Woke { until_ms } => until_ms,
            ref other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(kinds, given);
    assert_eq!(
        store.last_trace(run_id).expect("last"),
        trace.last().cloned()
    );
}

#[test]
fn a_long_trace_reads_whole_through_tails_moves_and_restarts() {
    let disk = MemoryDisk::new();
    let mut store = FileStore::open_disk(disk.clone()).expect("a store");
    let mut given = Vec::new();
    let mut previous = None;
    let mut moved = false;
    for seq in 1..=120u64 {
        let mut cp = CheckpointWrite::new("r1");
        if seq % 7 == 0 {
            // Events without a record: the store keeps the stored record.
        } else {
            let pending = (seq < 120).then(step);
            cp.run = Some(RunWrite::new(record(seq, pending.clone()), previous.take()));
            previous = pending;
        }
        for k in 0..(seq % 3) {
            let n = seq * 10 + k;
            cp.trace.push(event(n));
            given.push(n);
        }
        block_on(store.commit(cp)).expect("committed");
        let (rows, tail) = split_of(&store, "r1");
        assert_eq!(rows + tail, given.len() as u64);
        assert!(tail as usize <= TAIL_EVENTS, "the tail is bounded");
        moved |= rows > 0;
        check(&store, "r1", &given);
        if seq % 25 == 0 {
            // A restart: the committer no longer knows the tail and reads it from the value.
            store.close_blocking();
            store = FileStore::open_disk(disk.clone()).expect("the store again");
            check(&store, "r1", &given);
        }
    }
    assert!(moved, "tails moved to the trace table");
    let rec = store.run("r1").expect("read").expect("the run");
    assert_eq!(rec.seq, 120, "the last record written");

    // A purge takes the rows and the tail; the id then starts afresh.
    let mut cp = CheckpointWrite::new("r1");
    cp.purge = true;
    block_on(store.commit(cp)).expect("purged");
    assert!(store.trace("r1").expect("trace").is_empty());
    assert_eq!(store.last_trace("r1").expect("last"), None);
    let mut cp = CheckpointWrite::new("r1");
    cp.run = Some(RunWrite::new(record(1, Some(step())), None));
    cp.trace.push(event(7));
    block_on(store.commit(cp)).expect("a new run");
    check(&store, "r1", &[7]);
}

#[test]
fn events_for_a_run_without_a_record_go_to_the_table_and_number_on() {
    let store = FileStore::open_memory().expect("a store");
    let mut cp = CheckpointWrite::new("ghost");
    cp.trace.push(event(1));
    cp.trace.push(event(2));
    block_on(store.commit(cp)).expect("committed");
    assert_eq!(split_of(&store, "ghost"), (2, 0));
    let mut cp = CheckpointWrite::new("ghost");
    cp.run = Some(RunWrite::new(record(1, Some(step())), None));
    cp.trace.push(event(3));
    block_on(store.commit(cp)).expect("committed");
    assert_eq!(split_of(&store, "ghost"), (2, 1));
    check(&store, "ghost", &[1, 2, 3]);
}

/// The answer of an acknowledgement if it has one already, without waiting for it.
fn answered(
    mut ack: crate::store::Acknowledgement,
) -> Option<Result<(), crate::store::StoreError>> {
    use std::future::Future as _;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(&mut ack).poll(&mut cx) {
        std::task::Poll::Ready(result) => Some(result),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn a_lone_commit_is_written_by_its_caller_on_a_multi_threaded_runtime() {
    // A store that commits on its thread (a disk), not one that is inline anyway.
    let store = FileStore::open_disk(MemoryDisk::new()).expect("a store");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        for seq in 1..=20u64 {
            let mut cp = CheckpointWrite::new("r1");
            let previous = (seq > 1).then(step);
            cp.run = Some(RunWrite::new(record(seq, Some(step())), previous));
            cp.trace.push(event(seq));
            // Nothing else was queued: the caller committed before `commit` returned.
            answered(store.commit(cp))
                .unwrap_or_else(|| panic!("commit {seq} was handed to the thread"))
                .expect("committed");
        }
        // Many at once from many tasks: whoever finds the writer busy queues for the thread,
        // and every one is written.
        let store = std::sync::Arc::new(store);
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = format!("burst-{i}");
                    let mut cp = CheckpointWrite::new(&id);
                    cp.run = Some(RunWrite::new(record(1, Some(step())), None));
                    cp.trace.push(event(i));
                    store.commit(cp).await
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("the task").expect("committed");
        }
        for i in 0..200u64 {
            let id = format!("burst-{i}");
            assert_eq!(store.run(&id).expect("read").expect("the run").seq, 1);
        }
        check(&store, "r1", &(1..=20).collect::<Vec<_>>());
    });
}

#[test]
fn a_store_told_not_to_lets_the_committer_thread_write_every_commit() {
    let store = FileStore::open_disk(MemoryDisk::new())
        .expect("a store")
        .caller_commits(false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut handed_off = 0;
        for seq in 1..=20u64 {
            let mut cp = CheckpointWrite::new("r1");
            let previous = (seq > 1).then(step);
            cp.run = Some(RunWrite::new(record(seq, Some(step())), previous));
            cp.trace.push(event(seq));
            let mut ack = store.commit(cp);
            // The thread has to wake up and write before it answers, so an answer already
            // there when `commit` returns means the caller wrote it; with the caller's path on,
            // every one of these would be.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::future::Future::poll(std::pin::Pin::new(&mut ack), &mut cx) {
                std::task::Poll::Ready(result) => result.expect("committed"),
                std::task::Poll::Pending => {
                    handed_off += 1;
                    ack.await.expect("committed");
                }
            }
        }
        assert!(handed_off > 0, "every commit was written by its caller");
        check(&store, "r1", &(1..=20).collect::<Vec<_>>());
    });
}

fn set_marker(disk: &MemoryDisk, marker: &str) {
    let db = Database::builder()
        .create_with_backend(disk.clone())
        .expect("the database");
    let txn = db.begin_write().expect("write");
    txn.open_table(META)
        .expect("meta")
        .insert(FORMAT_KEY, marker)
        .expect("insert");
    txn.commit().expect("commit");
}

fn marker(disk: &MemoryDisk) -> String {
    let db = Database::builder()
        .create_with_backend(disk.clone())
        .expect("the database");
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    assert_eq!(meta.len().expect("len"), 1);
    meta.get(FORMAT_KEY)
        .expect("get")
        .expect("a marker")
        .value()
        .to_owned()
}

#[test]
fn a_v1_store_is_upgraded_on_open_and_a_newer_one_is_refused() {
    let disk = MemoryDisk::new();
    let store = FileStore::open_disk(disk.clone()).expect("a store");
    let mut cp = CheckpointWrite::new("r1");
    cp.run = Some(RunWrite::new(record(1, Some(step())), None));
    block_on(store.commit(cp)).expect("committed");
    store.close_blocking();
    assert_eq!(marker(&disk), FORMAT);

    set_marker(&disk, FORMAT_V1);
    let store = FileStore::open_disk(disk.clone()).expect("a v1 store opens");
    assert_eq!(store.run("r1").expect("read").expect("the run").seq, 1);
    store.close_blocking();
    assert_eq!(marker(&disk), FORMAT, "the marker was upgraded in place");

    set_marker(&disk, "workflow-runtime store v3");
    let err = FileStore::open_disk(disk.clone()).expect_err("a newer format is refused");
    match &err {
        OpenError::NotAStore { reason, .. } => assert!(
            reason.contains("workflow-runtime store v3") && reason.contains(FORMAT),
            "{reason}"
        ),
        other => panic!("expected NotAStore, got {other:?}"),
    }
    assert_eq!(
        marker(&disk),
        "workflow-runtime store v3",
        "nothing was written"
    );
}

/// On tokio's multi-threaded runtime, a lone run's commits and many runs' concurrent ones
/// (grouped by the committer thread) all land, in order per run, and survive a reopen.
#[test]
fn concurrent_commits_on_a_multi_threaded_runtime_all_land_in_order() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("lead.redb");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    const RUNS: u64 = 24;
    const STEPS: u64 = 15;
    let store = std::sync::Arc::new(FileStore::open(&path).expect("a store"));
    rt.block_on(async {
        let mut previous = None;
        for seq in 1..=STEPS {
            let mut cp = CheckpointWrite::new("alone");
            let pending = (seq < STEPS).then(step);
            cp.run = Some(RunWrite::new(record(seq, pending.clone()), previous.take()));
            previous = pending;
            cp.trace.push(event(seq));
            store.commit(cp).await.expect("committed");
        }
        let tasks: Vec<_> = (0..RUNS)
            .map(|r| {
                let store = store.clone();
                tokio::spawn(async move {
                    let run_id = format!("r{r}");
                    let mut previous = None;
                    for seq in 1..=STEPS {
                        let mut cp = CheckpointWrite::new(run_id.as_str());
                        let pending = (seq < STEPS).then(step);
                        cp.run = Some(RunWrite::new(record(seq, pending.clone()), previous.take()));
                        previous = pending;
                        cp.trace.push(event(seq));
                        store.commit(cp).await.expect("committed");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("the task");
        }
    });
    let given: Vec<u64> = (1..=STEPS).collect();
    for run_id in std::iter::once("alone".to_owned()).chain((0..RUNS).map(|r| format!("r{r}"))) {
        assert_eq!(
            store.run(&run_id).expect("read").expect("the run").seq,
            STEPS
        );
        check(&store, &run_id, &given);
    }
    assert!(
        store.commit_count() <= (RUNS + 1) * STEPS,
        "no checkpoint was committed twice"
    );
    store.close_blocking();
    drop(rt);
    let store = FileStore::open(&path).expect("the store again");
    check(&store, "r3", &given);
}
