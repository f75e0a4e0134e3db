//! Worker processes sharing one PostgreSQL database, with real process deaths and stalls.
//!
//! Each worker is this binary started again (`PG_WORKER_URL` set): an engine in shared mode
//! whose step records, in tables of the same database, when it began (`begun`), when it ended
//! and on which worker (`attempts`), and its effect once per idempotency key (`effects`). The
//! test process itself is the front end: it registers no workflow, starts the runs and sends
//! the signals, which the workers pick up.
//!
//! - two workers never run one step at the same time (no overlap in `attempts`);
//! - a worker killed with SIGKILL mid-step has its run finished by the other;
//! - a worker stopped with SIGSTOP past its lease and resumed with SIGCONT commits nothing:
//!   its late step result is refused, and the run's outcome is the other worker's.
//!
//! Bounded waits are generous (a minute); nothing asserts how fast.

use std::time::{Duration, Instant};

use workflow_runtime::TraceKind;
use workflow_runtime::prelude::*;

#[path = "support/ledger_workers.rs"]
mod ledger_workers;
use ledger_workers::{LEASE, Worker, database, query, runtime, settings, work};

const PATIENCE: Duration = Duration::from_secs(60);

#[workflow]
async fn job(ctx: &mut WorkflowContext, slow_ms: u64) -> Result<String, WorkflowError> {
    let first = ctx.step(work, slow_ms).await?;
    let go = ctx
        .wait_for_signal::<bool>("go", Duration::from_secs(3_600), ())
        .await?;
    if !go {
        return Ok(first);
    }
    let second = ctx.step(work, 20).await?;
    Ok(format!("{first}+{second}"))
}

fn main() {
    if ledger_workers::serve_if_worker(|b| b.register(job)) {
        return;
    }
    two_workers_never_run_one_step_at_once();
    a_killed_worker_has_its_run_finished_by_another();
    a_stalled_worker_commits_nothing_after_it_resumes();
    println!("workers: 3 scenarios passed");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn front_end(url: &str) -> Engine {
    Engine::builder()
        .shared(settings("front"))
        .open_store(ledger_workers::open(url).await)
        .await
        .expect("the front end opens")
}

async fn result_of(front: &Engine, run: &str) -> String {
    let handle = front.handle(job, run).expect("a handle");
    tokio::time::timeout(PATIENCE, handle.result())
        .await
        .unwrap_or_else(|_| panic!("run {run} did not finish"))
        .expect("a result")
        .expect("the run succeeded")
}

async fn until_waiting(front: &Engine, run: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !front
        .pending()
        .expect("pending")
        .iter()
        .any(|w| w.run_id == run)
    {
        assert!(Instant::now() < deadline, "{run} never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every step key's attempts, on different workers, never overlap in time.
fn assert_no_overlap(url: &str) -> usize {
    let rows = query(
        url,
        "SELECT a.key, a.worker, b.worker FROM attempts a JOIN attempts b
         ON a.key = b.key AND a.worker < b.worker
         WHERE a.began_ms < b.ended_ms AND b.began_ms < a.ended_ms",
    );
    assert!(
        rows.is_empty(),
        "steps ran on two workers at once: {rows:?}"
    );
    query(url, "SELECT count(*) FROM attempts")[0][0]
        .parse()
        .expect("a count")
}

fn two_workers_never_run_one_step_at_once() {
    let url = database();
    let a = Worker::spawn(&url, "a");
    let b = Worker::spawn(&url, "b");
    runtime().block_on(async {
        let front = front_end(&url).await;
        let runs: Vec<String> = (0..12).map(|i| format!("pair-{i}")).collect();
        for run in &runs {
            front.start(job, run, 150).await.expect("start");
        }
        for run in &runs {
            until_waiting(&front, run).await;
            let outcome = front
                .send(run, Signal::new("go", true).dedupe_key(format!("go-{run}")))
                .await
                .expect("the signal is accepted");
            assert_eq!(outcome, SignalOutcome::Buffered);
        }
        for run in &runs {
            let out = result_of(&front, run).await;
            assert!(out.split('+').all(|w| w == "a" || w == "b"), "{run}: {out}");
        }
        front.shutdown().await;
    });
    let attempts = assert_no_overlap(&url);
    assert!(attempts >= 24, "every step ran: {attempts}");
    let effects = query(&url, "SELECT count(*) FROM effects")[0][0].clone();
    assert_eq!(effects, "24", "each effect once");
    let by_worker = query(
        &url,
        "SELECT worker, count(*) FROM attempts GROUP BY worker ORDER BY worker",
    );
    println!("two workers: attempts by worker {by_worker:?}");
    drop((a, b));
}

/// Waits for the first step of `run` to begin, and answers on which worker.
fn begun_on(url: &str, run: &str) -> String {
    let mut worker = String::new();
    wait_until(&format!("the first step of {run} begins"), || {
        let rows = query(
            url,
            &format!("SELECT worker FROM begun WHERE key LIKE '{run}:%' ORDER BY at_ms LIMIT 1"),
        );
        match rows.first() {
            Some(row) => {
                worker = row[0].clone();
                true
            }
            None => false,
        }
    });
    worker
}

fn a_killed_worker_has_its_run_finished_by_another() {
    let url = database();
    let mut workers = vec![Worker::spawn(&url, "a"), Worker::spawn(&url, "b")];
    runtime().block_on(async {
        let front = front_end(&url).await;
        front.start(job, "killed-1", 5_000).await.expect("start");
        let victim = begun_on(&url, "killed-1");
        let at = workers
            .iter()
            .position(|w| w.name == victim)
            .expect("a worker of ours");
        workers.remove(at).kill();
        until_waiting(&front, "killed-1").await;
        front
            .signal("killed-1", "go", true)
            .await
            .expect("the signal is accepted");
        let out = result_of(&front, "killed-1").await;
        let survivor = &workers[0].name;
        assert_eq!(
            out,
            format!("{survivor}+{survivor}"),
            "the survivor finished it"
        );
        front.shutdown().await;
    });
    assert_no_overlap(&url);
    let effects = query(&url, "SELECT count(*) FROM effects")[0][0].clone();
    assert_eq!(effects, "2", "each effect once");
}

fn a_stalled_worker_commits_nothing_after_it_resumes() {
    let url = database();
    let workers = [Worker::spawn(&url, "a"), Worker::spawn(&url, "b")];
    runtime().block_on(async {
        let front = front_end(&url).await;
        front.start(job, "stalled-1", 3_000).await.expect("start");
        let stalled_name = begun_on(&url, "stalled-1");
        let stalled = workers
            .iter()
            .find(|w| w.name == stalled_name)
            .expect("a worker of ours");
        let other = workers
            .iter()
            .find(|w| w.name != stalled_name)
            .expect("the other worker");
        stalled.signal("STOP");
        // The other worker takes the run over once the lease lapses and runs the step again;
        // the run then waits for its signal.
        until_waiting(&front, "stalled-1").await;
        stalled.signal("CONT");
        // Resumed, the stalled worker either finds at its next renewal that the lease is gone
        // and stops the step, or its step ends first and its result is refused. Either way it
        // commits nothing; give it a few lease times to try.
        tokio::time::sleep(LEASE * 3).await;
        let ended = query(
            &url,
            &format!(
                "SELECT count(*) FROM attempts WHERE key LIKE 'stalled-1:%' AND worker = '{stalled_name}'"
            ),
        )[0][0]
            .clone();
        println!(
            "stalled worker: {} after SIGCONT",
            if ended == "0" {
                "its renewal found the lease lost and stopped the step"
            } else {
                "its step ended and the result was refused"
            }
        );
        front
            .signal("stalled-1", "go", true)
            .await
            .expect("the signal is accepted");
        let out = result_of(&front, "stalled-1").await;
        assert!(
            out.starts_with(&format!("{}+", other.name)),
            "the first step's committed result is the other worker's: {out}"
        );
        let completions = front
            .trace("stalled-1")
            .expect("trace")
            .into_iter()
            .filter(|e| matches!(e.kind, TraceKind::StepCompleted { .. }))
            .count();
        assert_eq!(completions, 2, "one completion per step, none from the stalled worker");
        front.shutdown().await;
    });
    assert_no_overlap_except(&url, "stalled-1");
}

/// The stalled worker's attempt overlaps the other's in wall time (it was frozen, not
/// stopped: no lease can stop a frozen process), which is why its result is fenced; every
/// other step of the run still never overlaps.
fn assert_no_overlap_except(url: &str, run: &str) {
    let rows = query(
        url,
        &format!(
            "SELECT a.key FROM attempts a JOIN attempts b
             ON a.key = b.key AND a.worker < b.worker
             WHERE a.began_ms < b.ended_ms AND b.began_ms < a.ended_ms
               AND a.key NOT LIKE '{run}:work:1'"
        ),
    );
    assert!(
        rows.is_empty(),
        "steps ran on two workers at once: {rows:?}"
    );
    let effects = query(url, "SELECT count(*) FROM effects")[0][0].clone();
    assert_eq!(effects, "2", "each effect once");
}
