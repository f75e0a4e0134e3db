//! Child workflows across worker processes that die: three workers share one PostgreSQL
//! database; the test process, a front end that registers no workflow, starts orders that
//! fan out to reviews (child runs). A worker is killed with SIGKILL in the middle of a child's
//! step, a replacement joins, and later the worker running a parent's own step is killed too.
//! The survivors finish everything: every order completes with all its reviews, each child
//! run was created once (one run per id, one `started` event), and every effect happened once
//! per idempotency key in the ledger.
//!
//! Each worker is this binary started again (`PG_CHILD_WORKER_URL` set); its step records in
//! tables of the same database when it began (`begun`), its effect once per key (`effects`)
//! and its attempts (`attempts`). Bounded waits are generous; nothing asserts how fast.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use workflow_postgres::PgStore;
use workflow_postgres::testing::{TestCluster, execute};
use workflow_runtime::prelude::*;
use workflow_runtime::{LeaseSettings, TraceKind};

const URL: &str = "PG_CHILD_WORKER_URL";
const NAME: &str = "PG_CHILD_WORKER_NAME";
const LEASE: Duration = Duration::from_secs(2);
const PATIENCE: Duration = Duration::from_secs(120);
/// How long each step takes: long enough for a kill to land inside one.
const SLOW_MS: u64 = 1_500;
const ORDERS: u64 = 6;
const REVIEWS: u64 = 3;

struct WorkerName(String);

struct Db(tokio_postgres::Client);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn db_error(e: tokio_postgres::Error) -> StepError {
    StepError::retryable(format!("ledger: {e}"))
}

/// Records its attempt and its effect (once per idempotency key), sleeping `slow_ms` in
/// between; answers with the worker it ran on.
#[function]
async fn work(ctx: StepContext, slow_ms: u64) -> Result<String, StepError> {
    let db = ctx.data::<Db>()?;
    let worker = ctx.data::<WorkerName>()?.0.clone();
    let key = ctx.idempotency_key();
    let began = now_ms();
    db.0.execute(
        "INSERT INTO begun (key, worker, at_ms) VALUES ($1, $2, $3)",
        &[&key, &worker, &began],
    )
    .await
    .map_err(db_error)?;
    tokio::time::sleep(Duration::from_millis(slow_ms)).await;
    db.0.execute(
        "INSERT INTO effects (key, worker) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&key, &worker],
    )
    .await
    .map_err(db_error)?;
    db.0.execute(
        "INSERT INTO attempts (key, worker, began_ms, ended_ms) VALUES ($1, $2, $3, $4)",
        &[&key, &worker, &began, &now_ms()],
    )
    .await
    .map_err(db_error)?;
    Ok(worker)
}

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

fn settings(owner: &str) -> LeaseSettings {
    LeaseSettings::new(LEASE)
        .renew_every(Duration::from_millis(250))
        .poll_every(Duration::from_millis(50))
        .owner(owner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn main() {
    if let (Ok(url), Ok(name)) = (std::env::var(URL), std::env::var(NAME)) {
        worker(&url, name);
        return;
    }
    children_outlive_the_workers_that_drove_them();
}

async fn open(url: &str) -> PgStore {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || PgStore::open(&url))
        .await
        .expect("the open thread")
        .expect("the store opens")
}

/// The worker process: serves until its standard input closes.
fn worker(url: &str, name: String) {
    runtime().block_on(async move {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("the ledger connects");
        tokio::spawn(connection);
        let engine = Engine::builder()
            .register(review)
            .register(order)
            .data(WorkerName(name.clone()))
            .data(Db(client))
            .shared(settings(&name))
            .open_store(open(url).await)
            .await
            .expect("the worker's engine opens");
        println!("ready");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
        })
        .await
        .expect("stdin");
        engine.shutdown().await;
    });
}

struct Worker {
    name: String,
    child: Child,
}

impl Worker {
    fn spawn(url: &str, name: &str) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(URL, url)
            .env(NAME, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("the worker reports");
        assert_eq!(line.trim(), "ready", "worker {name} did not open");
        Worker {
            name: name.to_owned(),
            child,
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("the worker is reaped");
        assert!(!status.success(), "{} was killed: {status}", self.name);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rows of a query on the test database, as strings.
fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            let rows = client.simple_query(&sql).await.expect("query");
            rows.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("").to_owned())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        })
    })
    .join()
    .expect("the query thread")
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
    let url = TestCluster::shared().create_database();
    execute(
        &url,
        "CREATE TABLE begun (key text, worker text, at_ms bigint);
         CREATE TABLE attempts (key text, worker text, began_ms bigint, ended_ms bigint);
         CREATE TABLE effects (key text PRIMARY KEY, worker text);",
    )
    .expect("the ledger tables");
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
