//! Child workflows across worker processes that die: three workers share one PostgreSQL
//! database; the test process, a front end that registers no workflow, starts orders that
//! fan out to reviews (child runs). A worker is killed with SIGKILL in the middle of a child's
//! step, a replacement joins, and later the worker running a parent's own step is killed too.
//! The survivors finish everything: every order completes with all its reviews, each child
//! run was created once (one run per id, one `started` event), and every effect happened once
//! per idempotency key in the ledger.
//!
//! Each worker is this binary started again (`support/ledger_workers.rs`); its step records
//! in tables of the same database when it began (`begun`), its effect once per key
//! (`effects`) and its attempts (`attempts`). Bounded waits are generous; nothing asserts how
//! fast.

use std::time::{Duration, Instant};

use workflow_runtime::TraceKind;
use workflow_runtime::prelude::*;

#[path = "support/ledger_workers.rs"]
mod ledger_workers;
use ledger_workers::{Worker, database, open, query, runtime, settings, work};

const PATIENCE: Duration = Duration::from_secs(120);
/// How long each step takes: long enough for a kill to land inside one.
const SLOW_MS: u64 = 1_500;
const ORDERS: u64 = 6;
const REVIEWS: u64 = 3;

#[workflow]
async fn review(ctx: &mut WorkflowContext, slow_ms: u64) -> Result<String, WorkflowError> {
    Ok(ctx.step(work, slow_ms).await?)
}

#[workflow]
async fn order(ctx: &mut WorkflowContext, reviews: u64) -> Result<String, WorkflowError> {
    let items: Vec<u64> = (0..reviews).map(|_| SLOW_MS).collect();
    let results = ctx.fan_out_children(review, items).await;
    let mut done = 0_u64;
    for r in results {
        r?;
        done += 1;
    }
    let last = ctx.step(work, SLOW_MS).await?;
    Ok(format!("{done} reviews, then {}", !last.is_empty()))
}

fn main() {
    if ledger_workers::serve_if_worker(|b| b.register(review).register(order)) {
        return;
    }
    children_outlive_the_workers_that_drove_them();
}

/// Waits for a step whose key matches `pattern` (SQL `LIKE`) to begin on one of `alive`, and
/// answers which worker runs it.
fn running(url: &str, pattern: &str, alive: &[Worker]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = query(
            url,
            &format!(
                "SELECT b.worker FROM begun b WHERE b.key LIKE '{pattern}'
                 AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.key = b.key)
                 ORDER BY b.at_ms DESC"
            ),
        );
        if let Some(row) = rows
            .iter()
            .find(|row| alive.iter().any(|w| w.name == row[0]))
        {
            return row[0].clone();
        }
        assert!(Instant::now() < deadline, "no step like {pattern} began");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_one(workers: &mut Vec<Worker>, name: &str) {
    let at = workers
        .iter()
        .position(|w| w.name == name)
        .expect("a worker of ours");
    workers.remove(at).kill();
    println!("children_workers: killed {name}");
}

fn children_outlive_the_workers_that_drove_them() {
    let url = database();
    let mut workers: Vec<Worker> = ["a", "b", "c"]
        .iter()
        .map(|n| Worker::spawn(&url, n))
        .collect();
    runtime().block_on(async {
        let front = Engine::builder()
            .shared(settings("front"))
            .open_store(open(&url).await)
            .await
            .expect("the front end opens");
        let orders: Vec<String> = (0..ORDERS).map(|i| format!("order-{i}")).collect();
        for run in &orders {
            front.start(order, run, REVIEWS).await.expect("start");
        }

        // A worker dies in the middle of a review's step; another joins.
        let victim = running(&url, "order-%/review-%", &workers);
        kill_one(&mut workers, &victim);
        workers.push(Worker::spawn(&url, "d"));
        // Later, the worker running an order's own step dies too.
        let victim = running(&url, "order-_:work:%", &workers);
        kill_one(&mut workers, &victim);

        for run in &orders {
            let handle = front.handle(order, run).expect("a handle");
            let out = tokio::time::timeout(PATIENCE, handle.result())
                .await
                .unwrap_or_else(|_| panic!("{run} did not finish"))
                .expect("a result");
            assert_eq!(out, Ok(format!("{REVIEWS} reviews, then true")), "{run}");
        }
        let runs = front
            .runs(&workflow_runtime::RunFilter {
                limit: Some(1_000),
                ..Default::default()
            })
            .expect("runs")
            .runs;
        assert_eq!(
            runs.len() as u64,
            ORDERS * (1 + REVIEWS),
            "one run per order and per review"
        );
        for run in &runs {
            let trace = front.trace(&run.run_id).expect("trace");
            let started = trace
                .iter()
                .filter(|e| matches!(e.kind, TraceKind::Started { .. }))
                .count();
            assert_eq!(started, 1, "{} was started {started} times", run.run_id);
            if run.workflow == "order" {
                let ended = trace
                    .iter()
                    .filter(|e| matches!(e.kind, TraceKind::ChildEnded { .. }))
                    .count();
                assert_eq!(ended as u64, REVIEWS, "{}: each outcome once", run.run_id);
            }
        }
        front.shutdown().await;
    });
    // One effect per step key: a review's step and an order's step, none twice or extra.
    let effects = query(&url, "SELECT count(*) FROM effects")[0][0].clone();
    assert_eq!(
        effects,
        (ORDERS * (REVIEWS + 1)).to_string(),
        "each effect once"
    );
    let attempts = query(&url, "SELECT count(*) FROM begun")[0][0].clone();
    let by_worker = query(
        &url,
        "SELECT worker, count(*) FROM effects GROUP BY worker ORDER BY worker",
    );
    println!(
        "children_workers: {ORDERS} orders of {REVIEWS} reviews finished after two SIGKILLs; \
         {attempts} step attempts began for {effects} effects; effects by worker {by_worker:?}"
    );
}
