//! What the process-death tests with worker processes share: each worker is the test binary
//! started again (with `URL` and `NAME` in its environment), serving an engine in shared mode
//! whose step records in tables of the test database when it began (`begun`), when it ended
//! and on which worker (`attempts`), and its effect once per idempotency key (`effects`).

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workflow_postgres::PgStore;
use workflow_postgres::testing::{TestCluster, execute};
use workflow_runtime::prelude::*;
use workflow_runtime::{EngineBuilder, LeaseSettings};

/// The database a worker process serves; set only in worker processes.
pub const URL: &str = "PG_WORKER_URL";
/// The worker's name, its lease owner and the `worker` column of the ledger.
pub const NAME: &str = "PG_WORKER_NAME";
/// The lease of every worker; the stall test stops a worker for several times this.
pub const LEASE: Duration = Duration::from_secs(2);

pub struct WorkerName(pub String);

pub struct Db(pub tokio_postgres::Client);

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
pub async fn work(ctx: StepContext, slow_ms: u64) -> Result<String, StepError> {
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

pub fn settings(owner: &str) -> LeaseSettings {
    LeaseSettings::new(LEASE)
        .renew_every(Duration::from_millis(250))
        .poll_every(Duration::from_millis(50))
        .owner(owner)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

pub async fn open(url: &str) -> PgStore {
    PgStore::open_async(url).await.expect("the store opens")
}

/// In a worker process (`URL` and `NAME` set), serves an engine with the workflows `register`
/// adds until standard input closes, and answers `true`; in the test process, `false`.
pub fn serve_if_worker(register: impl FnOnce(EngineBuilder) -> EngineBuilder) -> bool {
    serve_if_worker_with(settings, register)
}

/// [`serve_if_worker`], with the lease settings `lease` makes for the worker's name.
pub fn serve_if_worker_with(
    lease: impl FnOnce(&str) -> LeaseSettings,
    register: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> bool {
    let (Ok(url), Ok(name)) = (std::env::var(URL), std::env::var(NAME)) else {
        return false;
    };
    runtime().block_on(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("the ledger connects");
        tokio::spawn(connection);
        let engine = register(Engine::builder())
            .data(WorkerName(name.clone()))
            .data(Db(client))
            .shared(lease(&name))
            .open_store(open(&url).await)
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
    true
}

pub struct Worker {
    pub name: String,
    child: Child,
}

impl Worker {
    /// Starts a worker process and waits until its engine is open.
    pub fn spawn(url: &str, name: &str) -> Worker {
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

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{sig} {}", self.name);
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(mut self) {
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

/// A fresh database with the workers' ledger tables.
pub fn database() -> String {
    let url = TestCluster::shared().create_database();
    execute(
        &url,
        "CREATE TABLE begun (key text, worker text, at_ms bigint);
         CREATE TABLE attempts (key text, worker text, began_ms bigint, ended_ms bigint);
         CREATE TABLE effects (key text PRIMARY KEY, worker text);",
    )
    .expect("the ledger tables");
    url
}

/// Rows of a query on the test database, as strings.
pub fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
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
