//! Claim rounds that reach every run a worker can drive, on a real PostgreSQL server, with
//! polling alone (every announcement is sent before the worker listens, so it hears none):
//! more parents awaiting children than a worker claims per round do not keep it from the
//! ready run of a worker that died; runs of workflows a worker does not register do not keep
//! it from its own. Also the store's side of it: a deferred run is left out of the claim
//! rounds until its time but claimed by id at once, claims name their workflows, the sweep's
//! query finds the waits whose signal is buffered, and a database of schema version 1 is
//! migrated with its runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use workflow_postgres::testing::{TestCluster, execute};
use workflow_postgres::{PgStore, SCHEMA_VERSION};
use workflow_runtime::LeaseSettings;
use workflow_runtime::prelude::*;
use workflow_runtime::store::{Claim, Store};

/// Every effect by idempotency key, with how many times it was applied.
fn effects() -> &'static Mutex<HashMap<String, u32>> {
    static EFFECTS: std::sync::OnceLock<Mutex<HashMap<String, u32>>> = std::sync::OnceLock::new();
    EFFECTS.get_or_init(Mutex::default)
}

#[function]
async fn work(ctx: StepContext, n: u64) -> Result<u64, StepError> {
    *effects()
        .lock()
        .unwrap()
        .entry(ctx.idempotency_key())
        .or_default() += 1;
    Ok(n * 2)
}

#[workflow]
async fn job(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.step(work, n).await?)
}

/// A workflow the worker of `foreign_runs_do_not_starve_a_worker` does not register.
#[workflow]
async fn foreign(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.step(work, n).await?)
}

#[path = "support/waiting_parent.rs"]
mod waiting_parent;
use waiting_parent::{idle, parent};

/// Fewer runs per round than there are waiting parents.
const MAX_RUNS: usize = 4;
const PATIENCE: Duration = Duration::from_secs(60);

fn settings(owner: &str) -> LeaseSettings {
    LeaseSettings::new(Duration::from_secs(3))
        .renew_every(Duration::from_millis(500))
        .poll_every(Duration::from_millis(50))
        .max_runs(MAX_RUNS)
        .owner(owner)
}

async fn open(url: &str) -> PgStore {
    PgStore::open_async(url).await.expect("the store opens")
}

async fn front_end(url: &str) -> Engine {
    Engine::builder()
        .shared(settings("front"))
        .open_store(open(url).await)
        .await
        .expect("the front end opens")
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn result_of<W: Workflow>(engine: &Engine, w: W, run: &str) -> W::Output {
    let handle = engine.handle(w, run).expect("a handle");
    tokio::time::timeout(PATIENCE, handle.result())
        .await
        .unwrap_or_else(|_| panic!("run {run} was not finished by polling"))
        .expect("a result")
}

/// The effects whose idempotency key names `run`.
fn effects_of(run: &str) -> Vec<u32> {
    effects()
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains(run))
        .map(|(_, n)| *n)
        .collect()
}

/// A worker died holding the lease of a run whose step must run (`z-lapsed`); the only worker
/// left drives ten parents awaiting children that wait for a signal, more than the four runs
/// it claims per round, and their ids come first. Nobody announces anything to it. Once the
/// dead worker's lease lapses, the claim rounds reach the run and finish it: the parents,
/// claimed once with nothing to collect, are deferred instead of coming first again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_parents_do_not_starve_a_lapsed_run() {
    let url = TestCluster::shared().create_database();
    let front = front_end(&url).await;
    front
        .start(job, "z-lapsed", 21)
        .await
        .expect("the front end starts the run");
    // The worker that took it dies at once: its lease lapses in 1.5 s, and nobody renews it.
    let gone = open(&url).await;
    let claim = Claim {
        owner: "gone",
        now_ms: wall_ms(),
        lease_ms: 1_500,
        limit: 1,
        workflows: None,
    };
    let lease = gone
        .claim_run(&claim, "z-lapsed")
        .expect("claim")
        .expect("the run is free before any worker opens");
    assert_eq!(lease.owner, "gone");

    // Opened after the announcement of `z-lapsed`: it never hears of it.
    let worker = Engine::builder()
        .register(job)
        .register(parent)
        .register(idle)
        .shared(settings("worker"))
        .open_store(open(&url).await)
        .await
        .expect("the worker opens");
    for i in 0..10 {
        worker
            .start(parent, format!("a-parent-{i:02}"), i)
            .await
            .expect("start");
    }
    let waiting = |engine: &Engine| {
        engine
            .pending()
            .expect("pending")
            .iter()
            .filter(|w| w.workflow == "idle")
            .count()
    };
    let deadline = Instant::now() + PATIENCE;
    while waiting(&worker) < 10 {
        assert!(Instant::now() < deadline, "the children never all waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(result_of(&worker, job, "z-lapsed").await, Ok(42));
    assert_eq!(effects_of("z-lapsed"), [1], "the step ran once");
    // The parents still wait, untouched.
    for i in 0..10 {
        let run = format!("a-parent-{i:02}");
        let status = worker.status(&run).expect("status");
        assert!(
            matches!(status, RunStatus::Running | RunStatus::Waiting { .. }),
            "{run}: {status:?}"
        );
    }
    assert_eq!(waiting(&worker), 10);
    worker.shutdown().await;
    front.shutdown().await;
}

/// Ten ready runs of a workflow nobody here registers come first in run id order; a worker
/// that registers only `job`, claiming four runs per round, still finishes its three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_runs_do_not_starve_a_worker() {
    let url = TestCluster::shared().create_database();
    let front = front_end(&url).await;
    for i in 0..10 {
        front
            .start(foreign, format!("a-foreign-{i:02}"), i)
            .await
            .expect("start");
    }
    for i in 0..3 {
        front
            .start(job, format!("b-job-{i}"), i)
            .await
            .expect("start");
    }
    // Opened after every announcement.
    let worker = Engine::builder()
        .register(job)
        .shared(settings("worker"))
        .open_store(open(&url).await)
        .await
        .expect("the worker opens");
    for i in 0..3 {
        let run = format!("b-job-{i}");
        assert_eq!(result_of(&worker, job, &run).await, Ok(i * 2));
        assert_eq!(effects_of(&run), [1]);
    }
    // The foreign runs were left as they were: ready, unleased, never started.
    let store = open(&url).await;
    let ready: Vec<String> = store
        .ready()
        .expect("ready")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ready.len(), 10, "{ready:?}");
    assert!(ready.iter().all(|r| r.starts_with("a-foreign-")));
    assert!(effects_of("a-foreign-").is_empty());
    worker.shutdown().await;
    front.shutdown().await;
}

/// A signal buffered by a front end while no worker ran, announced to nobody listening: the
/// sweep of the worker's first round finds it with one query and delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_delivers_a_signal_nobody_announced() {
    let url = TestCluster::shared().create_database();
    let first = Engine::builder()
        .register(idle)
        .shared(settings("first"))
        .open_store(open(&url).await)
        .await
        .expect("the worker opens");
    first.start(idle, "sweep-1", 1).await.expect("start");
    let deadline = Instant::now() + PATIENCE;
    while first.pending().expect("pending").is_empty() {
        assert!(Instant::now() < deadline, "the run never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown().await;
    drop(first);

    let front = front_end(&url).await;
    front
        .signal("sweep-1", "never", true)
        .await
        .expect("the signal is buffered");
    let store = open(&url).await;
    let found: Vec<String> = store
        .signalled_waits()
        .expect("read")
        .into_iter()
        .map(|w| w.run_id)
        .collect();
    assert_eq!(found, ["sweep-1"]);

    let worker = Engine::builder()
        .register(idle)
        .shared(settings("second"))
        .open_store(open(&url).await)
        .await
        .expect("the worker opens");
    assert_eq!(result_of(&worker, idle, "sweep-1").await, Ok(true));
    assert!(store.signalled_waits().expect("read").is_empty());
    worker.shutdown().await;
    front.shutdown().await;
}

/// On the server, a deferral keeps a run out of `claim_ready` until its time, behind the runs
/// never deferred; a claim by id takes it at once and ends the deferral.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_run_waits_for_its_time_but_not_for_a_claim_by_id() {
    let url = TestCluster::shared().create_database();
    let front = front_end(&url).await;
    for run in ["d-1", "d-2", "d-3"] {
        front.start(job, run, 1).await.expect("start");
    }
    front.shutdown().await;
    let store = open(&url).await;
    let claim = |owner, now_ms, limit| Claim {
        owner,
        now_ms,
        lease_ms: 1_000,
        limit,
        workflows: Some(&["job"]),
    };
    let ids = |runs: Vec<workflow_runtime::store::ReadyRun>| -> Vec<String> {
        runs.into_iter().map(|r| r.run_id).collect()
    };
    let first = store.claim_ready(&claim("a", 0, 2)).expect("claim");
    assert_eq!(
        first.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["d-1", "d-2"]
    );
    store.defer(&first[0].lease, 5_000).expect("defer");
    store.defer(&first[1].lease, 4_000).expect("defer");
    // Before their time: only the run never deferred.
    assert_eq!(
        ids(store.claim_ready(&claim("b", 100, 10)).expect("claim")),
        ["d-3"]
    );
    // After their time, `b`'s lease lapsed: the run never deferred first.
    let later = store.claim_ready(&claim("c", 6_000, 1)).expect("claim");
    assert_eq!(
        ids(later.clone()),
        ["d-3"],
        "the lapsed run, never deferred"
    );
    assert_eq!(
        ids(store.claim_ready(&claim("g", 6_000, 1)).expect("claim")),
        ["d-2"],
        "the earliest deferral first"
    );
    // A claim by id ignores a deferral, and ends it.
    let by_id = store
        .claim_run(&claim("e", 200, 1), "d-1")
        .expect("claim")
        .expect("granted by id");
    store.release(&by_id).expect("release");
    assert_eq!(
        ids(store.claim_ready(&claim("f", 300, 10)).expect("claim")),
        ["d-1"]
    );
}

/// A database written at schema version 1 (no deferral column, the ready index by run id) is
/// migrated on open, keeping its runs, which a worker then finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_schema_is_migrated_with_its_runs() {
    let url = TestCluster::shared().create_database();
    let front = front_end(&url).await;
    front.start(job, "old-1", 5).await.expect("start");
    front.shutdown().await;
    drop(front);
    // Back to version 1's shape.
    execute(
        &url,
        "DROP INDEX runs_ready;
         ALTER TABLE runs DROP COLUMN not_before_ms;
         CREATE INDEX runs_ready ON runs (run_id) WHERE ready;
         DELETE FROM schema_version WHERE version > 1;",
    )
    .expect("downgrade");
    assert_eq!(SCHEMA_VERSION, 2);
    let worker = Engine::builder()
        .register(job)
        .shared(settings("worker"))
        .open_store(open(&url).await)
        .await
        .expect("the worker opens a version 1 database");
    assert_eq!(result_of(&worker, job, "old-1").await, Ok(10));
    worker.shutdown().await;
    let store = open(&url).await;
    drop(store);
    let client_check = format!(
        "DO $$ BEGIN
           IF (SELECT MAX(version) FROM schema_version) <> {SCHEMA_VERSION} THEN
             RAISE EXCEPTION 'not migrated';
           END IF;
           PERFORM not_before_ms FROM runs LIMIT 1;
         END $$;"
    );
    execute(&url, &client_check).expect("the schema is at the current version");
}

/// Starts a detached child in its first transition, then runs a step.
#[workflow]
async fn launcher(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let child = ctx.start_child(job, n).await;
    let doubled = ctx.step(work, n).await?;
    Ok(format!("{child} {doubled}"))
}

/// A front end (no workflow registered) starts a run whose first transition asks for a
/// detached child: the front end cannot run the child's first transition, so the run waits,
/// indexed as ready, for the worker that claims it to create the child in its commit and go on
/// with the child's run id. The child is created once and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_leaves_a_detached_child_to_a_worker() {
    let url = TestCluster::shared().create_database();
    let front = front_end(&url).await;
    front
        .start(launcher, "launch-1", 7)
        .await
        .expect("the front end starts the run");
    let worker = Engine::builder()
        .register(launcher)
        .register(job)
        .shared(settings("worker"))
        .open_store(open(&url).await)
        .await
        .expect("the worker opens");
    let out = result_of(&worker, launcher, "launch-1")
        .await
        .expect("the launcher succeeds");
    let (child, doubled) = out
        .split_once(' ')
        .expect("the child's id and the step's result");
    assert_eq!(doubled, "14");
    assert_eq!(result_of(&worker, job, child).await, Ok(14));
    let started = worker
        .trace(child)
        .expect("trace")
        .iter()
        .filter(|e| matches!(e.kind, workflow_runtime::TraceKind::Started { .. }))
        .count();
    assert_eq!(started, 1, "the child was created once");
    let failed_children = worker
        .trace("launch-1")
        .expect("trace")
        .iter()
        .filter(|e| matches!(e.kind, workflow_runtime::TraceKind::ChildEnded { .. }))
        .count();
    assert_eq!(failed_children, 0, "no child was refused");
    assert_eq!(effects_of(child), [1]);
    // The parent's step and the child's (whose id names its parent), each once.
    assert_eq!(effects_of("launch-1"), [1, 1]);
    worker.shutdown().await;
    front.shutdown().await;
}
