//! A throwaway PostgreSQL server for tests, started with the repository's
//! `scripts/pg-test-cluster` (which installs Debian's `postgresql` package where it is missing
//! and we are root, and runs the server as an unprivileged user).
//!
//! ```no_run
//! use workflow_postgres::PgStore;
//! use workflow_postgres::testing::TestCluster;
//!
//! // One server per test binary, stopped when the process exits, however it exits.
//! let url = TestCluster::shared().create_database();
//! let store = PgStore::open(&url).expect("the store opens");
//! ```

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio_postgres::NoTls;

/// A PostgreSQL cluster in a temporary directory, on a free 127.0.0.1 port.
///
/// A guard process (`pg-test-cluster watch DIR`) holds the other end of a pipe from this
/// process and stops the cluster once that pipe closes: when this value is dropped, and also
/// when the process exits without running destructors (a static, a failed test, `kill -9`).
#[derive(Debug)]
pub struct TestCluster {
    url: String,
    dir: PathBuf,
    script: PathBuf,
    guard: Mutex<Option<Child>>,
    databases: AtomicU64,
}

impl TestCluster {
    /// Starts a cluster (blocking, a few seconds: `initdb` and the server's start).
    ///
    /// # Errors
    /// When the script fails; its output says why.
    pub fn start() -> io::Result<TestCluster> {
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let script = std::env::var_os("WORKFLOW_PG_TEST_CLUSTER").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-cluster"),
            PathBuf::from,
        );
        // Directly under the temporary directory: the server's user must be able to reach it,
        // and a private temporary directory of root's would not let it.
        let dir = std::env::temp_dir().join(format!(
            "workflow-pg-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        // The guard comes first, so that a process killed while the server starts leaves no
        // server behind either.
        let guard = Command::new(&script)
            .arg("watch")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut cluster = TestCluster {
            url: String::new(),
            dir,
            script,
            guard: Mutex::new(Some(guard)),
            databases: AtomicU64::new(0),
        };
        let out = Command::new(&cluster.script)
            .arg("start")
            .arg(&cluster.dir)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{} start {} failed ({})",
                cluster.script.display(),
                cluster.dir.display(),
                out.status
            )));
        }
        cluster.url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(cluster)
    }

    /// The cluster of this process, started on first use and stopped when the process exits.
    ///
    /// # Panics
    /// When the cluster cannot be started: a test of the PostgreSQL backend must not pass
    /// without a server.
    pub fn shared() -> &'static TestCluster {
        static SHARED: OnceLock<TestCluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            TestCluster::start().unwrap_or_else(|e| panic!("no PostgreSQL test cluster: {e}"))
        })
    }

    /// The URL of the cluster's `postgres` database, as the superuser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of database `name` on this cluster.
    pub fn database_url(&self, name: &str) -> String {
        match self.url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => self.url.clone(),
        }
    }

    /// Creates a fresh, empty database and returns its URL.
    ///
    /// # Panics
    /// When the server refuses.
    pub fn create_database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::Relaxed));
        self.execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        self.database_url(&name)
    }

    /// Runs SQL statements on the `postgres` database (outside a transaction, so `ALTER
    /// SYSTEM` and `CREATE DATABASE` work); blocking, callable from any thread.
    ///
    /// # Errors
    /// The server's.
    pub fn execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        execute(&self.url, sql)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: no checkpoint,
    /// connections dropped), keeping its data; [`TestCluster::resume`] starts it again.
    ///
    /// # Errors
    /// When the script fails.
    pub fn halt(&self) -> io::Result<()> {
        self.script_command("halt")
    }

    /// Starts a halted server again on the same port; it recovers from its write-ahead log.
    ///
    /// # Errors
    /// When the script fails.
    pub fn resume(&self) -> io::Result<()> {
        self.script_command("resume")
    }

    fn script_command(&self, command: &str) -> io::Result<()> {
        let status = Command::new(&self.script)
            .arg(command)
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{} {command} {} failed ({status})",
                self.script.display(),
                self.dir.display()
            )))
        }
    }
}

/// Runs SQL on the database at `url` on a thread of its own (so that it works inside an async
/// test as well as outside one).
///
/// # Errors
/// The server's.
///
/// # Panics
/// If no thread or runtime can be started.
pub fn execute(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
                let driver = tokio::spawn(connection);
                let result = client.batch_execute(&sql).await;
                drop(client);
                let _ = driver.await;
                result
            })
    })
    .join()
    .expect("the SQL thread")
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status();
        let guard = self
            .guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut guard) = guard {
            // Closing its input lets the guard find the cluster already gone and exit.
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }
}
