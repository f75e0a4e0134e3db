//! Claim rounds reach a dead worker's run behind more waiting parents than a worker claims per
//! round, with real process deaths: worker `a` takes a run's slow step and is killed with
//! SIGKILL in the middle of it; the front end (this process, no workflow registered) then
//! starts ten parents whose ids sort first, each awaiting a child that waits for a signal
//! nobody sends; worker `b` opens afterwards (so it hears none of the announcements) and
//! claims four runs per round. By polling alone, `b` creates every parent's child and finishes
//! the dead worker's run once its lease lapsed; the step's effect is in the ledger once.
//!
//! Each worker is this binary started again (`support/ledger_workers.rs`, with `max_runs` set
//! here); bounded waits are generous; nothing asserts how fast.

use std::time::{Duration, Instant};

use workflow_runtime::prelude::*;

#[path = "support/ledger_workers.rs"]
mod ledger_workers;
use ledger_workers::{Worker, database, open, query, runtime, settings, work};

const PATIENCE: Duration = Duration::from_secs(120);
/// Fewer runs per round than there are waiting parents.
const MAX_RUNS: usize = 4;
const PARENTS: u64 = 10;

#[workflow]
async fn slow_job(ctx: &mut WorkflowContext, slow_ms: u64) -> Result<String, WorkflowError> {
    Ok(ctx.step(work, slow_ms).await?)
}

#[path = "support/waiting_parent.rs"]
mod waiting_parent;
use waiting_parent::{idle, parent};

fn main() {
    let lease = |name: &str| settings(name).max_runs(MAX_RUNS);
    if ledger_workers::serve_if_worker_with(lease, |b| {
        b.register(slow_job).register(idle).register(parent)
    }) {
        return;
    }
    a_dead_workers_run_is_reached_behind_waiting_parents();
}

fn a_dead_workers_run_is_reached_behind_waiting_parents() {
    let url = database();
    let a = Worker::spawn(&url, "a");
    runtime().block_on(async {
        let front = Engine::builder()
            .shared(settings("front"))
            .open_store(open(&url).await)
            .await
            .expect("the front end opens");
        front
            .start(slow_job, "z-slow", 30_000)
            .await
            .expect("start");
        // `a` takes the step, which would take 30 s; it dies in the middle of it.
        let deadline = Instant::now() + PATIENCE;
        while query(&url, "SELECT 1 FROM begun WHERE worker = 'a'").is_empty() {
            assert!(Instant::now() < deadline, "the step never began on a");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        a.kill();
        println!("fair_claims_workers: killed a in the middle of z-slow's step");

        for i in 0..PARENTS {
            front
                .start(parent, format!("a-parent-{i:02}"), i)
                .await
                .expect("start");
        }
        // Opened after every announcement: it finds the work by polling alone.
        let b = Worker::spawn(&url, "b");
        let handle = front.handle(slow_job, "z-slow").expect("a handle");
        let out = tokio::time::timeout(PATIENCE, handle.result())
            .await
            .unwrap_or_else(|_| panic!("z-slow was not finished after its worker died"))
            .expect("a result");
        assert_eq!(out, Ok("b".to_owned()), "the survivor ran the step again");

        // Every parent got its child from `b`, and waits on it.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let waiting = front
                .pending()
                .expect("pending")
                .iter()
                .filter(|w| w.workflow == "idle")
                .count();
            if waiting as u64 == PARENTS {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {waiting} children were created"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(b);
        front.shutdown().await;
    });
    let begun = query(&url, "SELECT worker FROM begun ORDER BY at_ms");
    assert_eq!(
        begun,
        [["a"], ["b"]],
        "at least once: begun on a, again on b"
    );
    let effects = query(&url, "SELECT worker FROM effects");
    assert_eq!(effects, [["b"]], "the effect once");
    println!(
        "fair_claims_workers: z-slow finished on b behind {PARENTS} waiting parents \
         ({MAX_RUNS} runs per round), effect once"
    );
}
