//! A full disk and a failing `fsync`, in process, on the power-loss layer over a real file.
//!
//! Runs are in every position when the device fails: a step running, runs waiting for a signal,
//! runs sleeping. While it fails, every caller waiting on a commit gets one typed error, the
//! background transitions (a step's result, a timer) are refused too, and reads go on. Once the
//! device recovers, the same engine resumes by itself: the runs whose background transitions
//! were refused move on with no call, the callers send again what was refused (with a dedupe
//! key, or the same start), and every run completes once, every effect is in the ledger once.
//! Finally the page cache is dropped (a power cut) and a second engine finds every run as the
//! first one left it: a failed sync was never trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use workflow_runtime::prelude::*;
use workflow_runtime::store::{FileStore, StoreError};
use workflow_runtime::testing::{DiskFault, PowerLossDisk};
use workflow_runtime::{ManualClock, RunFilter, SignalError, SignalOutcome, StartError};

/// A stand-in for a payment provider: the first request with an idempotency key performs the
/// effect, a later one returns the first result. Steps wait at its gate while it is shut.
struct Ledger {
    /// Tag of each effect performed, by idempotency key.
    applied: Mutex<BTreeMap<String, String>>,
    requests: Mutex<u64>,
    gate: watch::Sender<bool>,
}

impl Ledger {
    fn new() -> Self {
        Ledger {
            applied: Mutex::default(),
            requests: Mutex::default(),
            gate: watch::Sender::new(true),
        }
    }

    fn apply(&self, key: String, tag: &str) {
        *self.requests.lock().unwrap() += 1;
        self.applied
            .lock()
            .unwrap()
            .entry(key)
            .or_insert_with(|| tag.to_owned());
    }

    fn tags(&self) -> Vec<String> {
        self.applied.lock().unwrap().values().cloned().collect()
    }
}

#[function]
async fn effect(ctx: StepContext, tag: String) -> Result<String, StepError> {
    let ledger = ctx.data::<Ledger>()?;
    let mut open = ledger.gate.subscribe();
    let _ = open.wait_for(|open| *open).await;
    ledger.apply(ctx.idempotency_key(), &tag);
    Ok(tag)
}

#[workflow]
async fn order(ctx: &mut WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let reserved = ctx.step(effect, format!("{id}/reserve")).await?;
    let decision = ctx
        .wait_for_signal::<String>("decision", Duration::from_secs(3_600), ())
        .await?;
    ctx.sleep(Duration::from_secs(60)).await;
    let paid = ctx.step(effect, format!("{id}/pay:{decision}")).await?;
    Ok(format!("{reserved} {paid}"))
}

/// Polls `done` until it holds; the bound only keeps a broken engine from hanging the test.
async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    for _ in 0..6_000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting until {what}");
}

fn kind(engine: &Engine, run_id: &str) -> String {
    engine.status(run_id).unwrap().kind().to_owned()
}

fn decision(run_id: &str) -> Signal {
    Signal::new("decision", "yes").dedupe_key(format!("{run_id}-decision"))
}

/// Whether a storage error is the one the fault must produce.
fn is_fault(fault: DiskFault, e: &StoreError) -> bool {
    match fault {
        DiskFault::NoSpace => matches!(e, StoreError::NoSpace { .. }),
        DiskFault::FailingSync => matches!(e, StoreError::Io { .. }),
    }
}

async fn open_engine(disk: &PowerLossDisk, clock: &ManualClock, ledger: &Arc<Ledger>) -> Engine {
    Engine::builder()
        .register(order)
        .clock(clock.clone())
        .data_shared(ledger.clone())
        .open_store(FileStore::open_power_loss(disk.clone()).unwrap())
        .await
        .unwrap()
}

async fn outage(fault: DiskFault, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(FileStore::open(&path).unwrap());
    let disk =
        PowerLossDisk::open(&path, seed, 0, |_| unreachable!("no power cut is set")).unwrap();
    let faults = disk.faults();
    let clock = ManualClock::default();
    let ledger = Arc::new(Ledger::new());
    let engine = open_engine(&disk, &clock, &ledger).await;

    // Waiting for a decision: w1..w3, and s1..s3, which get theirs and sleep.
    for id in ["w1", "w2", "w3", "s1", "s2", "s3"] {
        engine.start(order, id, id.to_owned()).await.unwrap();
    }
    for id in ["w1", "w2", "w3", "s1", "s2", "s3"] {
        eventually("the run waits", || async { kind(&engine, id) == "waiting" }).await;
    }
    for id in ["s1", "s2", "s3"] {
        engine.send(id, decision(id)).await.unwrap();
        assert_eq!(kind(&engine, id), "sleeping");
    }
    // p1..p3 have their first step running, held at the gate.
    ledger.gate.send_replace(false);
    for id in ["p1", "p2", "p3"] {
        engine.start(order, id, id.to_owned()).await.unwrap();
    }

    faults.start(fault);
    // The steps finish and the sleeps end while the device fails: refused in the background.
    ledger.gate.send_replace(true);
    clock.advance(Duration::from_secs(120));
    workflow_runtime::testing::settle(&engine).await;
    // The callers: each gets the device's error, typed.
    for id in ["w1", "w2", "w3"] {
        match engine.send(id, decision(id)).await {
            Err(SignalError::Storage(e)) => assert!(is_fault(fault, &e), "{e:?}"),
            other => panic!("a signal during the outage answered {other:?}"),
        }
    }
    for id in ["n1", "n2"] {
        match engine.start(order, id, id.to_owned()).await {
            Err(StartError::Storage(e)) => assert!(is_fault(fault, &e), "{e:?}"),
            other => panic!("a start during the outage answered {other:?}"),
        }
    }
    assert!(faults.failed_operations() > 0);
    // Reads go on.
    for id in ["p1", "s1", "w1"] {
        engine.status(id).unwrap();
        assert!(!engine.trace(id).unwrap().is_empty());
    }
    let waiting: BTreeSet<String> = engine
        .pending()
        .unwrap()
        .into_iter()
        .map(|w| w.run_id)
        .collect();
    assert!(waiting.is_superset(&["w1", "w2", "w3"].map(String::from).into()));
    let listed = engine.runs(&RunFilter::default()).unwrap().runs.len();
    assert!((9..=11).contains(&listed), "{listed} runs listed");

    // Space returns. Nothing is called: the runs whose step finished during the outage reach
    // their wait, and the sleeps that ended reach their last step and complete.
    faults.clear();
    for id in ["p1", "p2", "p3"] {
        eventually("a step refused during the outage is recorded", || async {
            kind(&engine, id) == "waiting"
        })
        .await;
    }
    for id in ["s1", "s2", "s3"] {
        eventually("a sleep refused during the outage ends", || async {
            kind(&engine, id) == "completed"
        })
        .await;
    }
    // The callers send again what was refused; a refused commit whose sync failed may have
    // reached the disk after all, which the dedupe key and the idempotent start absorb.
    for id in ["n1", "n2"] {
        engine.start(order, id, id.to_owned()).await.unwrap();
        eventually("a new run waits", || async {
            kind(&engine, id) == "waiting"
        })
        .await;
    }
    for id in ["w1", "w2", "w3", "p1", "p2", "p3", "n1", "n2"] {
        match engine.send(id, decision(id)).await.unwrap() {
            SignalOutcome::Delivered | SignalOutcome::Duplicate => {}
            other => panic!("{id}: {other:?}"),
        }
    }
    clock.advance(Duration::from_secs(120));
    let all = [
        "w1", "w2", "w3", "s1", "s2", "s3", "p1", "p2", "p3", "n1", "n2",
    ];
    for id in all {
        let out = engine.handle(order, id).unwrap().result().await.unwrap();
        assert_eq!(out, Ok(format!("{id}/reserve {id}/pay:yes")));
    }

    // No run lost or added; every effect once.
    let runs: Vec<String> = engine
        .runs(&RunFilter::default())
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    let mut expected: Vec<String> = all.map(String::from).to_vec();
    expected.sort();
    assert_eq!(runs, expected);
    let mut tags = ledger.tags();
    tags.sort();
    let mut want: Vec<String> = all
        .iter()
        .flat_map(|id| [format!("{id}/reserve"), format!("{id}/pay:yes")])
        .collect();
    want.sort();
    assert_eq!(tags, want, "each effect once, under one key");

    // The process ends and the page cache goes with it: a second engine reads the file as the
    // disk holds it, which, after a failed sync, is not what the cache showed.
    let outputs: Vec<RunStatus> = all.iter().map(|id| engine.status(id).unwrap()).collect();
    engine.shutdown().await;
    drop(disk);
    let cold =
        PowerLossDisk::open(&path, seed, 0, |_| unreachable!("no power cut is set")).unwrap();
    let after = open_engine(&cold, &clock, &ledger).await;
    let again: Vec<RunStatus> = all.iter().map(|id| after.status(id).unwrap()).collect();
    assert_eq!(
        again, outputs,
        "what was acknowledged after the outage is on the disk"
    );
    after.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_no_space_and_the_engine_resumes_when_space_returns() {
    for seed in 1..=3 {
        outage(DiskFault::NoSpace, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_never_trusted_and_the_engine_resumes_when_the_device_heals() {
    for seed in 1..=6 {
        outage(DiskFault::FailingSync, seed).await;
    }
}

/// The failed sync hits one checkpoint in a store whose tables span many pages, so that the
/// commits after the device heals leave most of that checkpoint's pages alone: unless the
/// store rewrote what the page cache showed before writing again, the next engine would find
/// new commits built on pages the disk never received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_a_failed_sync_left_in_the_cache_reach_the_disk_before_new_commits() {
    for seed in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        drop(FileStore::open(&path).unwrap());
        let disk = PowerLossDisk::open(&path, seed, 0, |_| unreachable!("no cut")).unwrap();
        let clock = ManualClock::default();
        let ledger = Arc::new(Ledger::new());
        let engine = open_engine(&disk, &clock, &ledger).await;
        let ids: Vec<String> = (0..240).map(|i| format!("run-{i:03}")).collect();
        for id in &ids {
            engine.start(order, id.as_str(), id.clone()).await.unwrap();
        }
        for id in &ids {
            eventually("the run waits", || async { kind(&engine, id) == "waiting" }).await;
        }

        disk.faults().start(DiskFault::FailingSync);
        let hit = "run-060";
        match engine.send(hit, decision(hit)).await {
            Err(SignalError::Storage(e)) => assert!(matches!(e, StoreError::Io { .. }), "{e:?}"),
            other => panic!("a signal during the outage answered {other:?}"),
        }
        disk.faults().clear();
        // Far from the page of the refused checkpoint.
        for id in ["run-230", "run-231", "run-232"] {
            let sent = engine.send(id, decision(id)).await;
            let sent = match sent {
                // The committer may not have noticed the device healed yet.
                Err(_) => {
                    eventually("the store takes writes again", || async {
                        engine.send(id, decision(id)).await.is_ok()
                    })
                    .await;
                    SignalOutcome::Delivered
                }
                Ok(outcome) => outcome,
            };
            assert!(matches!(
                sent,
                SignalOutcome::Delivered | SignalOutcome::Duplicate
            ));
        }
        let before: Vec<RunStatus> = ids.iter().map(|id| engine.status(id).unwrap()).collect();
        engine.shutdown().await;
        drop(disk);

        let cold = PowerLossDisk::open(&path, seed, 0, |_| unreachable!("no cut")).unwrap();
        let after = open_engine(&cold, &clock, &ledger).await;
        let again: Vec<RunStatus> = ids.iter().map(|id| after.status(id).unwrap()).collect();
        assert_eq!(again, before, "seed {seed}");
        for id in &ids {
            assert!(!after.trace(id).unwrap().is_empty());
        }
        after.shutdown().await;
    }
}
