//! Engines in shared mode over one PostgreSQL database, in one process: two workers share the
//! runs a front end (an engine that registers no workflow) starts and signals; a connection
//! lost during `COMMIT` (the server ends the session inside the commit) and an acknowledgement
//! lost after a commit both leave the run to continue from what is stored, each effect once.
//! The process-level tests (SIGKILL, SIGSTOP) are in `workers.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use workflow_postgres::PgStore;
use workflow_postgres::testing::{TestCluster, execute};
use workflow_runtime::prelude::*;
use workflow_runtime::store::{
    Acknowledgement, ArmedTimer, CheckpointWrite, Claim, DueTimer, InboxEntry, Lease, ReadyEntry,
    ReadyRun, RunRecord, Store, StoreError, TraceEvent, WorkWait,
};
use workflow_runtime::{LeaseSettings, OpsError};

/// Which engine a step ran on.
struct WorkerName(&'static str);

/// One execution of a step: its idempotency key, its worker, when it ran.
#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    worker: &'static str,
    began: Instant,
    ended: Instant,
}

/// Every step execution, and the effects applied once per key (the external system's view).
#[derive(Default)]
struct Ledger {
    attempts: Mutex<Vec<Attempt>>,
    effects: Mutex<HashMap<String, u32>>,
}

fn ledger() -> &'static Ledger {
    static LEDGER: std::sync::OnceLock<Ledger> = std::sync::OnceLock::new();
    LEDGER.get_or_init(Ledger::default)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Order {
    id: u64,
    cents: u64,
}

async fn effect(ctx: &StepContext, what: &str) -> Result<(), StepError> {
    let worker = ctx.data::<WorkerName>()?.0;
    let key = ctx.idempotency_key();
    let began = Instant::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    *ledger()
        .effects
        .lock()
        .unwrap()
        .entry(format!("{what}:{key}"))
        .or_default() += 1;
    ledger().attempts.lock().unwrap().push(Attempt {
        key,
        worker,
        began,
        ended: Instant::now(),
    });
    Ok(())
}

#[function]
async fn reserve(ctx: StepContext, order: Order) -> Result<u64, StepError> {
    effect(&ctx, "reserve").await?;
    Ok(order.cents)
}

#[function]
async fn ship(ctx: StepContext, order: Order) -> Result<String, StepError> {
    effect(&ctx, "ship").await?;
    Ok(format!("shipped #{} ({} cents)", order.id, order.cents))
}

#[workflow]
async fn fulfil(ctx: &mut WorkflowContext, order: Order) -> Result<String, WorkflowError> {
    let reserved = ctx.step(reserve, order.clone()).await?;
    let go = ctx
        .wait_for_signal::<bool>("ship", Duration::from_secs(3_600), reserved)
        .await?;
    if !go {
        return Ok("held".to_owned());
    }
    Ok(ctx.step(ship, order).await?)
}

fn settings(owner: &str) -> LeaseSettings {
    LeaseSettings::new(Duration::from_secs(5))
        .poll_every(Duration::from_millis(50))
        .owner(owner)
}

async fn open(url: &str) -> PgStore {
    PgStore::open_async(url).await.expect("the store opens")
}

async fn worker(url: &str, name: &'static str) -> Engine {
    let store = open(url).await;
    Engine::builder()
        .register(fulfil)
        .data(WorkerName(name))
        .shared(settings(name))
        .open_store(store)
        .await
        .expect("the worker opens")
}

async fn front_end(url: &str) -> Engine {
    Engine::builder()
        .shared(settings("front"))
        .open_store(open(url).await)
        .await
        .expect("the front end opens")
}

async fn until_waiting(engine: &Engine, runs: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: Vec<String> = engine
            .pending()
            .expect("pending")
            .into_iter()
            .map(|w| w.run_id)
            .collect();
        if runs.iter().all(|r| waiting.contains(r)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runs never all waited: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn attempts_of(prefix: &str) -> Vec<Attempt> {
    ledger()
        .attempts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.key.starts_with(prefix))
        .cloned()
        .collect()
}

/// No two executions of one step overlap in time on different workers.
fn assert_no_overlap(attempts: &[Attempt]) {
    for (i, a) in attempts.iter().enumerate() {
        for b in &attempts[i + 1..] {
            if a.key == b.key && a.worker != b.worker {
                assert!(
                    a.ended <= b.began || b.ended <= a.began,
                    "step {} ran on {} and {} at once",
                    a.key,
                    a.worker,
                    b.worker
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_the_runs_a_front_end_starts_and_signals() {
    let url = TestCluster::shared().create_database();
    let a = worker(&url, "a").await;
    let b = worker(&url, "b").await;
    let front = front_end(&url).await;
    assert_eq!(a.worker_id(), Some("a"));

    let runs: Vec<String> = (0..16).map(|i| format!("share-{i}")).collect();
    for (i, run) in runs.iter().enumerate() {
        let order = Order {
            id: i as u64,
            cents: 100 * i as u64,
        };
        front.start(fulfil, run, order).await.expect("start");
    }
    until_waiting(&front, &runs).await;
    for run in &runs {
        let outcome = front
            .send(
                run,
                Signal::new("ship", true).dedupe_key(format!("ship-{run}")),
            )
            .await
            .expect("signal");
        assert_eq!(
            outcome,
            SignalOutcome::Buffered,
            "the front end drives nothing"
        );
    }
    for (i, run) in runs.iter().enumerate() {
        let out = front
            .handle(fulfil, run)
            .expect("handle")
            .result()
            .await
            .expect("a result");
        assert_eq!(
            out,
            Ok(format!("shipped #{i} ({} cents)", 100 * i)),
            "run {run}"
        );
    }
    let attempts = attempts_of("share-");
    assert_no_overlap(&attempts);
    let effects = ledger().effects.lock().unwrap().clone();
    for run in &runs {
        for what in ["reserve", "ship"] {
            assert!(
                effects
                    .iter()
                    .any(|(k, n)| k.starts_with(&format!("{what}:{run}:")) && *n >= 1),
                "{what} of {run} never ran: {effects:?}"
            );
        }
    }
    front.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

/// A deferred trigger on the trace table ends the committing session inside `COMMIT` for the
/// first `kills` commits that record a step's result: the client sees its connection drop
/// with the commit's outcome unknown (here: rolled back, so the step runs again).
fn kill_commits(url: &str, kills: u64) {
    execute(
        url,
        &format!(
            "CREATE SEQUENCE commit_kills;
             CREATE FUNCTION kill_in_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF position(convert_to('\"event\":\"step_completed\"', 'UTF8') in NEW.event) > 0
                    AND nextval('commit_kills') <= {kills} THEN
                     PERFORM pg_terminate_backend(pg_backend_pid());
                     PERFORM pg_sleep(5);
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER kill_in_commit AFTER INSERT ON trace
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kill_in_commit();"
        ),
    )
    .expect("the trigger installs");
}

/// Starts eight orders `<prefix>-0..8`, waits until each waits for its signal, and signals
/// each one, retrying whatever the injected faults refuse; the runs' ids.
async fn start_and_signal(engine: &Engine, prefix: &str) -> Vec<String> {
    let runs: Vec<String> = (0..8).map(|i| format!("{prefix}-{i}")).collect();
    for (i, run) in runs.iter().enumerate() {
        let order = Order {
            id: i as u64,
            cents: 10 * i as u64,
        };
        start_until_accepted(engine, run, order).await;
    }
    until_waiting(engine, &runs).await;
    for run in &runs {
        signal_until_accepted(engine, run).await;
    }
    runs
}

async fn start_until_accepted(engine: &Engine, run: &str, order: Order) {
    for _ in 0..50 {
        match engine.start(fulfil, run, order.clone()).await {
            Ok(_) => return,
            Err(e) => {
                tracing_free_note(&format!("start of {run} failed ({e}); trying again"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("run {run} was never started");
}

async fn signal_until_accepted(engine: &Engine, run: &str) {
    for _ in 0..50 {
        let signal = Signal::new("ship", true).dedupe_key(format!("ship-{run}"));
        match engine.send(run, signal).await {
            Ok(_) => return,
            Err(e) => {
                tracing_free_note(&format!("signal to {run} failed ({e}); trying again"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("run {run} never took its signal");
}

fn tracing_free_note(message: &str) {
    eprintln!("{message}");
}

async fn finish_all(engine: &Engine, runs: &[String]) {
    for (i, run) in runs.iter().enumerate() {
        let out = engine
            .handle(fulfil, run)
            .expect("handle")
            .result()
            .await
            .expect("a result");
        assert_eq!(out, Ok(format!("shipped #{i} ({} cents)", 10 * i)), "{run}");
    }
}

fn assert_each_effect_once(prefix: &str, runs: usize) {
    let effects = ledger().effects.lock().unwrap().clone();
    let mine: Vec<(&String, &u32)> = effects.iter().filter(|(k, _)| k.contains(prefix)).collect();
    // One reserve and one ship per run, each under one idempotency key.
    assert_eq!(mine.len(), 2 * runs, "{mine:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_commit_leaves_the_run_to_continue_from_the_store() {
    let url = TestCluster::shared().create_database();
    let engine = worker(&url, "c").await;
    kill_commits(&url, 6);
    let runs = start_and_signal(&engine, "lost").await;
    finish_all(&engine, &runs).await;
    assert_each_effect_once("lost-", runs.len());
    // The steps whose result was lost ran again; their effects still count once per key.
    assert!(attempts_of("lost-").len() > 2 * runs.len());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT last_value FROM commit_kills", &[])
        .await
        .expect("the kill count");
    assert!(
        row.get::<_, i64>(0) > 6,
        "every planned kill happened inside a commit"
    );
    engine.shutdown().await;
}

/// A store whose every `nth` commit is made durable and then reported failed, as when the
/// connection drops after the server committed and before its answer arrived.
struct LosingAcks<S> {
    inner: S,
    nth: u64,
    commits: AtomicU64,
    lost: AtomicU64,
}

impl<S> LosingAcks<S> {
    /// Loses the acknowledgement of every `nth` commit of `inner`.
    fn every(nth: u64, inner: S) -> Self {
        LosingAcks {
            inner,
            nth,
            commits: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// How many acknowledgements were lost so far.
    fn lost(&self) -> u64 {
        self.lost.load(Ordering::SeqCst)
    }
}

impl<S: Store> Store for LosingAcks<S> {
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(run_id)
    }
    fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError> {
        self.inner.runs()
    }
    fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError> {
        self.inner.inbox(run_id)
    }
    fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        self.inner.has_dedupe(run_id, key)
    }
    fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.dedupe_keys(run_id)
    }
    fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        self.inner.trace(run_id)
    }
    fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError> {
        self.inner.last_trace(run_id)
    }
    fn pending_waits(&self) -> Result<Vec<workflow_runtime::store::PendingWait>, StoreError> {
        self.inner.pending_waits()
    }
    fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError> {
        self.inner.ready()
    }
    fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError> {
        self.inner.timers(due_by_ms)
    }
    fn timers_page(
        &self,
        after: Option<(u64, &str)>,
        due_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<ArmedTimer>, StoreError> {
        self.inner.timers_page(after, due_by_ms, limit)
    }
    fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError> {
        self.inner.claim_ready(claim)
    }
    fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError> {
        self.inner.claim_timers(claim, due_by_ms)
    }
    fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        self.inner.claim_run(claim, run_id)
    }
    fn announce(&self, run_id: &str) -> Result<(), StoreError> {
        self.inner.announce(run_id)
    }
    fn wait_for_work(&self, poll: Duration) -> WorkWait<'_> {
        self.inner.wait_for_work(poll)
    }
    fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError> {
        self.inner.renew(lease, now_ms, lease_ms)
    }
    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release(lease)
    }
    fn commit(&self, checkpoint: CheckpointWrite) -> Acknowledgement {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        let writes_run = checkpoint.run.is_some();
        let durable = self.inner.commit(checkpoint);
        if !n.is_multiple_of(self.nth) || !writes_run {
            return durable;
        }
        let (ack, answer) = Acknowledgement::channel();
        self.lost.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let result = durable.await;
            ack.acknowledge(match result {
                Ok(()) => Err(StoreError::backend(
                    "committing a checkpoint",
                    std::io::Error::other("the connection closed before the server answered"),
                )),
                Err(e) => Err(e),
            });
        });
        answer
    }
    fn commit_count(&self) -> u64 {
        self.inner.commit_count()
    }
    fn close(&self) -> Acknowledgement {
        self.inner.close()
    }
    fn close_blocking(&self) {
        self.inner.close_blocking()
    }
}

/// Lets the test keep a handle on the store the engine owns.
struct Shared<S>(Arc<S>);

impl<S: Store> Store for Shared<S> {
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.0.run(run_id)
    }
    fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError> {
        self.0.runs()
    }
    fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError> {
        self.0.inbox(run_id)
    }
    fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        self.0.has_dedupe(run_id, key)
    }
    fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.0.dedupe_keys(run_id)
    }
    fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        self.0.trace(run_id)
    }
    fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError> {
        self.0.last_trace(run_id)
    }
    fn pending_waits(&self) -> Result<Vec<workflow_runtime::store::PendingWait>, StoreError> {
        self.0.pending_waits()
    }
    fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError> {
        self.0.ready()
    }
    fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError> {
        self.0.timers(due_by_ms)
    }
    fn timers_page(
        &self,
        after: Option<(u64, &str)>,
        due_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<ArmedTimer>, StoreError> {
        self.0.timers_page(after, due_by_ms, limit)
    }
    fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError> {
        self.0.claim_ready(claim)
    }
    fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError> {
        self.0.claim_timers(claim, due_by_ms)
    }
    fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        self.0.claim_run(claim, run_id)
    }
    fn announce(&self, run_id: &str) -> Result<(), StoreError> {
        self.0.announce(run_id)
    }
    fn wait_for_work(&self, poll: Duration) -> WorkWait<'_> {
        self.0.wait_for_work(poll)
    }
    fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError> {
        self.0.renew(lease, now_ms, lease_ms)
    }
    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.0.release(lease)
    }
    fn commit(&self, checkpoint: CheckpointWrite) -> Acknowledgement {
        self.0.commit(checkpoint)
    }
    fn commit_count(&self) -> u64 {
        self.0.commit_count()
    }
    fn close(&self) -> Acknowledgement {
        self.0.close()
    }
    fn close_blocking(&self) {
        self.0.close_blocking()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_acknowledgement_lost_after_the_commit_is_not_done_twice() {
    let url = TestCluster::shared().create_database();
    let store = Arc::new(LosingAcks::every(3, open(&url).await));
    let engine = Engine::builder()
        .register(fulfil)
        .data(WorkerName("d"))
        .shared(settings("d"))
        .open_store(Shared(store.clone()))
        .await
        .expect("the engine opens");
    let runs = start_and_signal(&engine, "acked").await;
    finish_all(&engine, &runs).await;
    assert_each_effect_once("acked-", runs.len());
    assert!(store.lost() > 0, "no acknowledgement was lost");
    // Every commit here did land, so the runs continued from what was stored and no step ran
    // twice. (One run in four or five used to show a re-run of `ship`: the signal's commit
    // lost its answer, the lock's release gave the lease back while the poller's claim, sent
    // just before, re-granted the same token; the poller kept that token, the release then
    // cleared it in the store, and the step's result was refused under it, so the step ran
    // again. Leases granted outside the run's lock are no longer kept: see `claim_round`.)
    let attempts = attempts_of("acked-");
    let lost = usize::try_from(store.lost()).expect("a count");
    assert!(
        attempts.len() == 2 * runs.len(),
        "{} attempts for {} steps and {lost} lost acknowledgements: {attempts:?}",
        attempts.len(),
        2 * runs.len()
    );
    engine.shutdown().await;
}

static STALLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Slow on its first attempt only, and says when that one began.
#[function]
async fn slow_once(ctx: StepContext, n: u64) -> Result<u64, StepError> {
    if !STALLING.swap(true, Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    effect(&ctx, "slow").await?;
    Ok(n * 2)
}

#[workflow]
async fn doubled(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.step(slow_once, n).await?)
}

/// A worker whose lease was taken over while its step ran: the step's result is refused, the
/// worker forgets the run, and once the new holder lets go the run is claimed again and
/// finishes; its trace records one completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_result_under_a_lost_lease_is_refused_and_the_run_forgotten() {
    let url = TestCluster::shared().create_database();
    let engine = Engine::builder()
        .register(doubled)
        .data(WorkerName("e"))
        .shared(
            LeaseSettings::new(Duration::from_secs(30))
                .poll_every(Duration::from_millis(50))
                .owner("e"),
        )
        .open_store(open(&url).await)
        .await
        .expect("the engine opens");
    let run = engine.start(doubled, "stolen-1", 21).await.expect("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !STALLING.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the step never began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another worker takes the run over as if the lease had lapsed: its clock is far ahead.
    let thief = open(&url).await;
    let claim = Claim {
        owner: "thief",
        now_ms: 1 << 50,
        lease_ms: 60_000,
        limit: 1,
        workflows: None,
    };
    let lease = thief
        .claim_run(&claim, "stolen-1")
        .expect("claim")
        .expect("the lapsed run is granted");
    // The first attempt ends and its result is refused: the run stays where it was.
    while attempts_of("stolen-1:").is_empty() {
        assert!(Instant::now() < deadline, "the step never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rec = thief.run("stolen-1").expect("read").expect("the run");
    assert!(
        !rec.is_finished(),
        "a refused result moved the run: {:?}",
        rec.status
    );
    thief.release(&lease).expect("release");
    assert_eq!(run.result().await.expect("a result"), Ok(42));
    assert_eq!(attempts_of("stolen-1:").len(), 2, "the step ran again");
    let completions = engine
        .trace("stolen-1")
        .expect("trace")
        .into_iter()
        .filter(|e| matches!(e.kind, workflow_runtime::TraceKind::StepCompleted { .. }))
        .count();
    assert_eq!(completions, 1);
    engine.shutdown().await;
}

/// An engine in the default (exclusive) mode over PostgreSQL: the only driver of its runs.
async fn exclusive(store: impl Store + 'static) -> Engine {
    Engine::builder()
        .register(fulfil)
        .data(WorkerName("x"))
        .open_store(store)
        .await
        .expect("the engine opens")
}

/// Without a way to drive a run again after a commit whose outcome is unknown, the run would
/// sit until the next open: the result never comes.
async fn finish_all_in_time(engine: &Engine, runs: &[String]) {
    tokio::time::timeout(Duration::from_secs(120), finish_all(engine, runs))
        .await
        .expect("every run finished without a restart");
}

/// The default mode, as shared mode above: a connection lost inside `COMMIT` leaves the
/// outcome unknown; the engine reads the run again once the server answers and continues from
/// what it holds (here the commit was rolled back, so the step runs again, effect once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_default_mode_a_connection_lost_during_commit_leaves_the_run_to_continue() {
    let url = TestCluster::shared().create_database();
    let engine = exclusive(open(&url).await).await;
    kill_commits(&url, 6);
    let runs = start_and_signal(&engine, "dropped").await;
    finish_all_in_time(&engine, &runs).await;
    assert_each_effect_once("dropped-", runs.len());
    assert!(
        attempts_of("dropped-").len() > 2 * runs.len(),
        "no step result was lost"
    );
    engine.shutdown().await;
}

/// The default mode: an acknowledgement lost after the commit landed. The engine reads the run
/// again and continues from the committed state: no step runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_default_mode_a_commit_acknowledgement_lost_is_not_done_twice() {
    let url = TestCluster::shared().create_database();
    let store = Arc::new(LosingAcks::every(3, open(&url).await));
    let engine = exclusive(Shared(store.clone())).await;
    let runs = start_and_signal(&engine, "unanswered").await;
    finish_all_in_time(&engine, &runs).await;
    assert_each_effect_once("unanswered-", runs.len());
    assert!(store.lost() > 0, "no acknowledgement was lost");
    let attempts = attempts_of("unanswered-");
    assert_eq!(
        attempts.len(),
        2 * runs.len(),
        "a step whose result was committed ran again: {attempts:?}"
    );
    engine.shutdown().await;
}

fn wall_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("in range")
}

/// The worker that parked a run gives its lease back just after the run is seen waiting.
async fn claim_when_given_back(store: &PgStore, claim: &Claim<'_>, run_id: &str) -> Lease {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(lease) = store.claim_run(claim, run_id).expect("claim") {
            return lease;
        }
        assert!(Instant::now() < deadline, "{run_id} stayed leased");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Operations that rewrite a run work from any process in shared mode: a front end that
/// drives no workflow terminates a parked run (it takes the free lease for the operation), waits
/// for a lease another worker holds to be given back or lapse, and answers with a clear error,
/// changing nothing, when the holder keeps it longer than one lease time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_terminates_runs_that_workers_drive() {
    let url = TestCluster::shared().create_database();
    let a = worker(&url, "a").await;
    let b = worker(&url, "b").await;
    let front = front_end(&url).await;
    let runs: Vec<String> = (0..3).map(|i| format!("ended-{i}")).collect();
    for (i, run) in runs.iter().enumerate() {
        let order = Order {
            id: i as u64,
            cents: 7,
        };
        front.start(fulfil, run, order).await.expect("start");
    }
    until_waiting(&front, &runs).await;

    // Parked: nobody holds the lease.
    front
        .terminate("ended-0", "withdrawn")
        .await
        .expect("the front end terminates a parked run");
    assert_eq!(
        front.status("ended-0").expect("status").kind(),
        "terminated"
    );

    // Held by another worker for a moment: the operation waits for it.
    let holder = open(&url).await;
    let brief = Claim {
        owner: "holder",
        now_ms: wall_ms(),
        lease_ms: 1_500,
        limit: 1,
        workflows: None,
    };
    claim_when_given_back(&holder, &brief, "ended-1").await;
    front
        .terminate("ended-1", "withdrawn")
        .await
        .expect("the operation waited for the lease");
    assert_eq!(
        front.status("ended-1").expect("status").kind(),
        "terminated"
    );

    // Held for longer than the operation waits (the settings' lease, 5 s): refused, unchanged.
    let long = Claim {
        owner: "holder",
        now_ms: wall_ms(),
        lease_ms: 600_000,
        limit: 1,
        workflows: None,
    };
    let lease = claim_when_given_back(&holder, &long, "ended-2").await;
    let refused = front.terminate("ended-2", "withdrawn").await;
    assert!(
        matches!(&refused, Err(OpsError::LeasedElsewhere { run_id, .. }) if run_id == "ended-2"),
        "{refused:?}"
    );
    let message = refused.expect_err("refused").to_string();
    assert!(message.contains("another worker"), "{message}");
    assert_eq!(front.status("ended-2").expect("status").kind(), "waiting");
    holder.release(&lease).expect("release");
    front
        .terminate("ended-2", "withdrawn")
        .await
        .expect("once the lease is given back");

    front.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}
