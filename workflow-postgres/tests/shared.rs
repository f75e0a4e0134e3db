//! What only a shared database needs: several stores (as several workers would open them, each
//! with its own connections) on one database, and the schema's version check.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use serde_json::json;
use workflow_postgres::testing::TestCluster;
use workflow_postgres::{PgStore, SCHEMA_VERSION};
use workflow_runtime::store::{
    CheckpointWrite, Claim, InboxEntry, RunRecord, RunWrite, Store, StoreError, TraceEvent,
};
use workflow_runtime::{OpenError, RunStatus, TraceKind};

/// A run at `seq` whose next step must be executed (built through the record's stored form:
/// the command type is the engine's own).
fn ready_record(seq: u64) -> RunRecord {
    let mut value = serde_json::to_value(RunRecord::new("wf", json!({ "n": seq }), 1_000))
        .expect("a record encodes");
    value["seq"] = json!(seq);
    value["pending"] = json!({
        "kind": "step", "name": "charge", "input": null, "retry": null, "attempt": 1,
        "not_before_ms": null
    });
    serde_json::from_value(value).expect("a ready record decodes")
}

fn finished_record(seq: u64) -> RunRecord {
    let mut rec = RunRecord::new("wf", json!({ "n": seq }), 1_000);
    rec.seq = seq;
    rec.status = RunStatus::Completed;
    rec.output = Some(json!("done"));
    rec
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

fn start(store: &PgStore, run: &str) {
    let mut cp = CheckpointWrite::new(run);
    cp.run = Some(RunWrite::new(ready_record(1), None));
    block_on(store.commit(cp)).expect("the run starts");
}

/// Two workers claim from one database at the same time, each finishing what it claimed under
/// its lease before claiming again: every run is claimed by exactly one of them, and every
/// finishing commit is accepted (its lease was current).
#[test]
fn each_ready_run_is_claimed_by_exactly_one_worker() {
    let url = TestCluster::shared().create_database();
    let runs = 60;
    {
        let store = PgStore::open(&url).expect("open");
        for i in 0..runs {
            start(&store, &format!("r{i:03}"));
        }
    }
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|owner| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = PgStore::open(&url).expect("open");
                barrier.wait();
                let mut done = Vec::new();
                loop {
                    let claim = Claim {
                        owner,
                        now_ms: 0,
                        lease_ms: 600_000,
                        limit: 3,
                        workflows: None,
                    };
                    let claimed = store.claim_ready(&claim).expect("claim");
                    if claimed.is_empty() {
                        break;
                    }
                    for run in claimed {
                        let mut cp = CheckpointWrite::new(run.run_id.clone());
                        cp.fence = run.lease.fence();
                        cp.run = Some(RunWrite::new(finished_record(2), None));
                        block_on(store.commit(cp)).unwrap_or_else(|e| {
                            panic!(
                                "{owner} could not finish {} under its lease: {e}",
                                run.run_id
                            )
                        });
                        done.push(run.run_id);
                    }
                }
                done
            })
        })
        .collect();
    let mut by_run: HashMap<String, usize> = HashMap::new();
    for worker in workers {
        for run in worker.join().expect("the worker") {
            *by_run.entry(run).or_default() += 1;
        }
    }
    assert_eq!(by_run.len(), runs, "every run was claimed");
    assert!(
        by_run.values().all(|n| *n == 1),
        "a run was claimed twice: {by_run:?}"
    );
    let store = PgStore::open(&url).expect("open");
    assert!(store.ready().expect("ready").is_empty());
    assert!(
        store
            .runs()
            .expect("runs")
            .iter()
            .all(|(_, rec)| rec.is_finished())
    );
}

/// A worker's lease lapses (it stalled): another worker takes the run over, and the stalled
/// one's checkpoint, renewal and release change nothing.
#[test]
fn a_lapsed_lease_is_taken_over_and_the_old_holder_is_fenced() {
    let url = TestCluster::shared().create_database();
    let a = PgStore::open(&url).expect("open");
    let b = PgStore::open(&url).expect("open");
    start(&a, "r1");
    let claim = |owner, now_ms| Claim {
        owner,
        now_ms,
        lease_ms: 1_000,
        limit: 10,
        workflows: None,
    };
    let held = a.claim_ready(&claim("a", 0)).expect("claim");
    assert_eq!(held.len(), 1);
    let old = held[0].lease.clone();
    assert!(
        b.claim_ready(&claim("b", 999)).expect("claim").is_empty(),
        "a live lease is not taken over"
    );
    let taken = b.claim_ready(&claim("b", 1_000)).expect("claim");
    assert_eq!(taken.len(), 1, "the lapsed lease is taken over");
    assert_ne!(taken[0].lease.token, old.token);
    let before = b.run("r1").expect("read");

    let mut stale = CheckpointWrite::new("r1");
    stale.fence = old.fence();
    stale.run = Some(RunWrite::new(finished_record(2), None));
    stale.dedupe = Some(("stale".to_owned(), 1));
    assert!(matches!(
        block_on(a.commit(stale)),
        Err(StoreError::NotOwner { run_id }) if run_id == "r1"
    ));
    assert_eq!(b.run("r1").expect("read"), before, "nothing was written");
    assert!(!b.has_dedupe("r1", "stale").expect("dedupe"));
    assert!(matches!(
        a.renew(&old, 1_100, 1_000),
        Err(StoreError::NotOwner { .. })
    ));
    a.release(&old)
        .expect("releasing a stale lease is harmless");
    assert!(
        a.claim_ready(&claim("a", 1_100)).expect("claim").is_empty(),
        "the stale release did not free the run"
    );

    let mut fresh = CheckpointWrite::new("r1");
    fresh.fence = taken[0].lease.fence();
    fresh.run = Some(RunWrite::new(finished_record(2), None));
    block_on(b.commit(fresh)).expect("the new holder writes");
    assert!(a.run("r1").expect("read").expect("r1").is_finished());
}

/// A database whose schema is newer than this code is refused with a typed error naming both
/// versions, and left as it was.
#[test]
fn a_newer_schema_is_refused() {
    let cluster = TestCluster::shared();
    let url = cluster.create_database();
    drop(PgStore::open(&url).expect("open"));
    let newer = SCHEMA_VERSION + 1;
    workflow_postgres::testing::execute(
        &url,
        &format!("INSERT INTO schema_version (version) VALUES ({newer})"),
    )
    .expect("bump the schema version");
    match PgStore::open(&url) {
        Err(OpenError::SchemaTooNew {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("a newer schema was not refused: {other:?}"),
    }
    let e = PgStore::open(&url).expect_err("still refused");
    let message = e.to_string();
    assert!(
        message.contains(&format!("schema version {newer}"))
            && message.contains(&format!("version {SCHEMA_VERSION}")),
        "{message}"
    );
    // Opening again is harmless: the schema is at the current version.
    workflow_postgres::testing::execute(
        &url,
        &format!("DELETE FROM schema_version WHERE version = {newer}"),
    )
    .expect("restore the schema version");
    drop(PgStore::open(&url).expect("open"));
    drop(PgStore::open(&url).expect("open again"));
}

/// Two processes write one run at once (a worker appending to its trace, a front end buffering
/// signals): every checkpoint is acknowledged, and inbox and trace entries are numbered without
/// a collision or a gap.
#[test]
fn concurrent_writers_of_one_run_take_turns() {
    let url = TestCluster::shared().create_database();
    {
        let store = PgStore::open(&url).expect("open");
        start(&store, "r1");
    }
    let per_writer = 40;
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["front", "worker"]
        .into_iter()
        .map(|who| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = PgStore::open(&url).expect("open");
                barrier.wait();
                // One at a time: a checkpoint alone in its transaction has no group retry to
                // hide a numbering collision behind.
                for i in 0..per_writer {
                    let mut cp = CheckpointWrite::new("r1");
                    cp.buffer = Some(InboxEntry::new(who, json!(i), None));
                    cp.trace.push(TraceEvent {
                        seq: 0,
                        at_ms: 1_000,
                        checkpoint: 1,
                        kind: TraceKind::Woke { until_ms: i },
                    });
                    block_on(store.commit(cp))
                        .unwrap_or_else(|e| panic!("{who}'s checkpoint {i} failed: {e}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("the writer");
    }
    let store = PgStore::open(&url).expect("open");
    let inbox = store.inbox("r1").expect("inbox");
    assert_eq!(inbox.len(), 2 * per_writer as usize);
    let indexes: Vec<u64> = inbox.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, (0..2 * per_writer).collect::<Vec<_>>());
    for who in ["front", "worker"] {
        let mine: Vec<_> = inbox
            .iter()
            .filter(|(_, e)| e.name == who)
            .map(|(_, e)| e.payload.clone())
            .collect();
        let expected: Vec<_> = (0..per_writer).map(|i| json!(i)).collect();
        assert_eq!(mine, expected, "{who}'s signals keep their order");
    }
    let trace = store.trace("r1").expect("trace");
    assert_eq!(trace.len(), 2 * per_writer as usize);
    assert!(trace.iter().enumerate().all(|(i, e)| e.seq == i as u64));
}

/// A checkpoint the server refuses (text with a NUL byte, which PostgreSQL cannot store) fails
/// on its own with the server's reason, writing nothing; the checkpoints grouped with it are
/// acknowledged and stored.
#[test]
fn a_refused_checkpoint_fails_alone_in_its_group() {
    let url = TestCluster::shared().create_database();
    let store = PgStore::open(&url).expect("open");
    let acks: Vec<_> = (0..12)
        .map(|i| {
            let mut rec = ready_record(1);
            if i == 5 {
                rec.workflow = "bad\0name".to_owned();
            }
            let mut cp = CheckpointWrite::new(format!("r{i:02}"));
            cp.run = Some(RunWrite::new(rec, None));
            cp.dedupe = Some((format!("k{i}"), 1));
            store.commit(cp)
        })
        .collect();
    for (i, ack) in acks.into_iter().enumerate() {
        let result = block_on(ack);
        if i == 5 {
            let e = result.expect_err("the server refuses a NUL byte");
            assert!(matches!(e, StoreError::Backend { .. }), "{e:?}");
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            assert!(
                cause.is_some_and(|c| c.contains("0x00")),
                "the server's reason is kept: {e:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("checkpoint {i} was not acknowledged: {e}"));
        }
    }
    assert_eq!(store.run("r05").expect("read"), None);
    assert!(!store.has_dedupe("r05", "k5").expect("dedupe"));
    assert_eq!(store.runs().expect("runs").len(), 11);
    assert!(store.has_dedupe("r11", "k11").expect("dedupe"));
}

/// The server drops the store's connections (as a restart or a network failure does): calls in
/// flight when that is noticed fail, later ones connect again, and nothing acknowledged is
/// lost.
#[test]
fn the_store_reconnects_after_the_server_drops_its_connections() {
    let cluster = TestCluster::shared();
    let url = cluster.create_database();
    let db = url.rsplit_once('/').expect("a database name").1.to_owned();
    let store = PgStore::open(&url).expect("open");
    start(&store, "r1");
    cluster
        .execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ))
        .expect("terminate the store's connections");
    let pause = || std::thread::sleep(std::time::Duration::from_millis(20));
    let read = (0..250).find_map(|_| match store.run("r1") {
        Ok(found) => Some(found),
        Err(_) => {
            pause();
            None
        }
    });
    assert!(
        read.expect("the store reads again").is_some(),
        "the acknowledged run is there"
    );
    let committed = (0..250).any(|_| {
        let mut cp = CheckpointWrite::new("r2");
        cp.run = Some(RunWrite::new(ready_record(1), None));
        let ok = block_on(store.commit(cp)).is_ok();
        if !ok {
            pause();
        }
        ok
    });
    assert!(committed, "the store commits again");
    assert_eq!(
        store
            .ready()
            .expect("ready")
            .iter()
            .map(|r| r.run_id.as_str())
            .collect::<Vec<_>>(),
        ["r1", "r2"]
    );
}
