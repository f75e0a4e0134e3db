//! A PostgreSQL backend for `workflow-runtime`: [`PgStore`] implements the storage seam
//! ([`Store`]) on one PostgreSQL database, which several worker processes may share.
//!
//! ```no_run
//! use workflow_postgres::PgStore;
//!
//! let store = PgStore::open("postgres://app@127.0.0.1:5432/workflows")?;
//! # Ok::<(), workflow_runtime::OpenError>(())
//! ```
//!
//! # How it works
//!
//! The seam's reads are synchronous while the client is async, so a store owns one thread
//! (`workflow-postgres`) that runs a current-thread tokio runtime and two connections: one for
//! reads, claims and leases, one for commits. A synchronous caller hands its request to that
//! thread and blocks on a reply channel; concurrent reads are pipelined on the read connection.
//! The cost of a read is two thread hand-offs plus one round trip to the server, against a
//! memory-mapped page read for the embedded store: tens to hundreds of microseconds on a local
//! server. The thread never runs user code.
//!
//! Commits are grouped, as in the embedded store: every checkpoint queued while a transaction
//! is being committed goes into the next transaction, and each is acknowledged, or refused, on
//! its own once that transaction is durable (`synchronous_commit = on`). A group is most
//! often one statement of data-modifying `WITH` parts, committed on its own: one round trip
//! to the server, with or without leases. Rarer groups (purges, child runs, a run written
//! twice) are a transaction of pipelined statements.
//!
//! # Leases and fences
//!
//! Claims are one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)` statement, so concurrent
//! claimants never get the same run and never wait for each other. A lease lives in the run's
//! row (owner, token from a sequence, expiry on the claimant's clock). Claims of single runs
//! by id that callers make at the same time go to the server as one statement, as do the
//! releases queued together. A checkpoint written under
//! [`Fence::Lease`](workflow_runtime::store::Fence::Lease) is written by an `UPDATE` that
//! requires the token to still be the run's lease, and is refused with
//! [`StoreError::NotOwner`], writing nothing, if it is not; the update's row lock keeps a claim
//! from slipping in between that check and the commit. A new run can come with its creator's
//! lease ([`Store::lease_new_run`], [`CheckpointWrite::grant`]): written into the new row by
//! the creating commit, with a token from a block the store takes from the sequence
//! beforehand.
//!
//! A checkpoint that creates a run under
//! [`Fence::Create`](workflow_runtime::store::Fence::Create) (every new run of a shared engine)
//! takes the pipelined path: after the transaction's advisory lock on the run id (which a
//! concurrent creation of the same id waits for), the fence query must find no row with the
//! id, else it is refused with [`StoreError::NotOwner`], writing nothing; so of two processes
//! starting one id at once, one creates the run.
//!
//! [`Fence::Exclusive`](workflow_runtime::store::Fence::Exclusive) is accepted without a check: the writer declares that nobody else
//! drives that run (a single-process engine, or a shared engine's write that leaves the run's
//! record alone, such as a buffered signal). Engines sharing a database must claim and write
//! under leases.
//!
//! # Several workers
//!
//! Engines opened with `EngineBuilder::shared` on the same database share its runs: they claim
//! ready runs and due timers in rounds, a run by id with [`Store::claim_run`] when another
//! process announced it ([`Store::announce`], a `NOTIFY` on [`CHANNEL`]), and wait between
//! rounds on [`Store::wait_for_work`], which a third connection listening on that channel
//! ends early. A process that registers no workflow (a web front end) starts runs
//! (`Fence::Create`) and buffers signals with `Fence::Exclusive` writes that leave alone what a
//! lease guards.
//!
//! # Durability
//!
//! Opening checks that the server keeps acknowledged commits through a power cut: `fsync` and
//! `full_page_writes` must be `on`, and each connection sets `synchronous_commit = on`.
//! Otherwise the open fails with [`OpenError::NotDurable`].
//!
//! # Connections and clocks
//!
//! A connection lost (server restart, network) is opened again by the next read or commit
//! after the loss was noticed; the calls in flight on it fail with [`StoreError::Backend`] and
//! are not retried. A connection lost while a `COMMIT` was in flight is reported as a failed
//! commit although the server may have committed it; an engine in shared mode
//! (`EngineBuilder::shared`) takes such a failure as an unknown outcome and reads the run
//! again once the server answers. Lease
//! expiries are on the claimant's clock ([`Claim::now_ms`]).

mod commit;
mod listen;
mod schema;
pub mod testing;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_postgres::{Client, Config, NoTls, Statement};
use workflow_runtime::store::InboxEntry;
use workflow_runtime::store::{
    Acknowledgement, Acknowledger, ArmedTimer, CheckpointWrite, Claim, DueTimer, Lease,
    PendingWait, ReadyEntry, ReadyRun, RunRecord, Store, StoreError, TraceEvent, WorkWait,
};
use workflow_runtime::{CodecError, OpenError};

use crate::commit::{Job, WriteStatements};
pub use crate::listen::CHANNEL;
pub use crate::schema::SCHEMA_VERSION;

/// A [`Store`] on a PostgreSQL database, shareable by several processes.
pub struct PgStore {
    label: String,
    reads: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    commits: Mutex<Option<mpsc::UnboundedSender<(Job, Acknowledger)>>>,
    commit_count: Arc<AtomicU64>,
    exit: Arc<Exit>,
    thread: Mutex<Option<JoinHandle<()>>>,
    wakeups: Arc<listen::Inbox>,
    /// Lease tokens taken from the server's sequence and not used yet, for the leases of new
    /// runs ([`Store::lease_new_run`]): a token is never handed out twice, by this process or
    /// another, and a block of them costs one round trip.
    tokens: Mutex<Vec<i64>>,
}

/// How many lease tokens [`PgStore`] takes from the server at a time.
const TOKEN_BLOCK: i64 = 128;

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.label)
            .finish_non_exhaustive()
    }
}

/// A read, run on the store's thread with the read connection.
type ReadJob = Box<dyn FnOnce(Arc<Reader>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What the read connection is asked to do, in order.
enum Request {
    /// A read, claim or renewal, whose caller waits for its answer.
    Read(ReadJob),
    /// A lease given back, `(run_id, token)`: nobody waits for it, and the releases queued
    /// together go to the server as one statement (see [`Store::release`] on [`PgStore`]).
    Release(String, i64),
    /// A claim of one run by id, whose caller waits for its answer; the claims queued together
    /// go to the server as one statement (see [`Store::claim_run`] on [`PgStore`]).
    Claim(ClaimRequest),
}

/// One caller's [`Store::claim_run`].
struct ClaimRequest {
    run_id: String,
    owner: String,
    now_ms: i64,
    expires_ms: i64,
    reply: std::sync::mpsc::SyncSender<Result<Option<Lease>, StoreError>>,
}

/// The read connection and its prepared statements.
struct Reader {
    client: Client,
    run: Statement,
    runs: Statement,
    inbox: Statement,
    has_dedupe: Statement,
    dedupe_keys: Statement,
    trace: Statement,
    last_trace: Statement,
    pending_waits: Statement,
    signalled_waits: Statement,
    ready: Statement,
    timers_page: Statement,
    claim_ready: Statement,
    claim_timers: Statement,
    claim_runs: Statement,
    announce: Statement,
    renew: Statement,
    renew_all: Statement,
    release: Statement,
    defer: Statement,
    tokens: Statement,
}

impl Reader {
    async fn prepare(client: Client) -> Result<Reader, tokio_postgres::Error> {
        // A run is claimable unless another owner's lease is live; the holder's own claim keeps
        // its token and extends the lease. A grant ends a deferral (`Store::defer`).
        const GRANT: &str = "
            UPDATE runs r SET
                not_before_ms = NULL,
                lease_token = CASE WHEN r.lease_owner = $1 THEN r.lease_token
                                   ELSE nextval('lease_tokens') END,
                lease_expires_ms = CASE WHEN r.lease_owner = $1
                                        THEN GREATEST(r.lease_expires_ms, $3) ELSE $3 END,
                lease_owner = $1
            FROM c WHERE r.run_id = c.run_id
            RETURNING r.run_id, r.workflow, r.lease_token, r.lease_expires_ms, r.timer_ms, r.seq";
        const CLAIMABLE: &str =
            "(lease_owner IS NULL OR lease_owner = $1 OR lease_expires_ms <= $2)";
        // `$5` (null for any) names the workflows the claimant drives.
        const WANTED: &str = "($5::text[] IS NULL OR workflow = ANY($5::text[]))";
        // Runs never deferred first, then the deferred ones whose time has come, earliest
        // first: a range of the `runs_ready` index, which a deferred parent leaves until its
        // time. So runs claimed without effect do not come first again every round, while
        // the ready runs of a dead worker do, once their leases lapse.
        let claim_ready = format!(
            "WITH c AS (SELECT run_id FROM runs
                        WHERE ready AND COALESCE(not_before_ms, 0) <= $2 AND {CLAIMABLE}
                              AND {WANTED}
                        ORDER BY COALESCE(not_before_ms, 0), run_id
                        LIMIT $4 FOR UPDATE SKIP LOCKED) {GRANT}"
        );
        // Several claims by id at once, each with its owner and times (in this process,
        // several engines may share one store); one run appears once.
        let claim_runs = "
            WITH c AS (SELECT r.run_id, g.owner, g.expires_ms
                       FROM runs r
                       JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                            AS g(run_id, owner, now_ms, expires_ms) ON g.run_id = r.run_id
                       WHERE r.lease_owner IS NULL OR r.lease_owner = g.owner
                             OR r.lease_expires_ms <= g.now_ms
                       ORDER BY r.run_id FOR UPDATE OF r)
            UPDATE runs r SET
                not_before_ms = NULL,
                lease_token = CASE WHEN r.lease_owner = c.owner THEN r.lease_token
                                   ELSE nextval('lease_tokens') END,
                lease_expires_ms = CASE WHEN r.lease_owner = c.owner
                                        THEN GREATEST(r.lease_expires_ms, c.expires_ms)
                                        ELSE c.expires_ms END,
                lease_owner = c.owner
            FROM c WHERE r.run_id = c.run_id
            RETURNING r.run_id, r.lease_owner, r.lease_token, r.lease_expires_ms";
        let claim_timers = format!(
            "WITH c AS (SELECT run_id FROM runs WHERE timer_ms <= $6 AND {CLAIMABLE} AND {WANTED}
                        ORDER BY timer_ms, run_id LIMIT $4 FOR UPDATE SKIP LOCKED) {GRANT}"
        );
        Ok(Reader {
            run: client
                .prepare("SELECT record FROM runs WHERE run_id = $1")
                .await?,
            runs: client
                .prepare("SELECT run_id, record FROM runs ORDER BY run_id")
                .await?,
            inbox: client
                .prepare("SELECT idx, entry FROM inbox WHERE run_id = $1 ORDER BY idx")
                .await?,
            has_dedupe: client
                .prepare("SELECT EXISTS (SELECT 1 FROM dedupe WHERE run_id = $1 AND key = $2)")
                .await?,
            dedupe_keys: client
                .prepare("SELECT key, at_ms FROM dedupe WHERE run_id = $1 ORDER BY key")
                .await?,
            trace: client
                .prepare("SELECT idx, event FROM trace WHERE run_id = $1 ORDER BY idx")
                .await?,
            last_trace: client
                .prepare("SELECT idx, event FROM trace WHERE run_id = $1 ORDER BY idx DESC LIMIT 1")
                .await?,
            pending_waits: client
                .prepare("SELECT wait FROM runs WHERE wait IS NOT NULL ORDER BY run_id")
                .await?,
            // From the inbox (small: signals not delivered yet) to the runs by key, never
            // through the parked runs. The names are compared after decoding, not by the
            // server, whose encoding may not hold every name.
            signalled_waits: client
                .prepare(
                    "SELECT r.wait, i.entry FROM inbox i JOIN runs r ON r.run_id = i.run_id
                     WHERE r.wait IS NOT NULL ORDER BY i.run_id, i.idx",
                )
                .await?,
            ready: client
                .prepare("SELECT run_id, workflow FROM runs WHERE ready ORDER BY run_id")
                .await?,
            // A row comparison, so that the page resumes inside a deadline shared by many runs;
            // the `runs_timers` index answers it as a range.
            timers_page: client
                .prepare(
                    "SELECT timer_ms, run_id, seq, workflow FROM runs
                     WHERE timer_ms <= $1 AND (timer_ms, run_id) > ($2, $3)
                     ORDER BY timer_ms, run_id LIMIT $4",
                )
                .await?,
            claim_ready: client.prepare(&claim_ready).await?,
            claim_timers: client.prepare(&claim_timers).await?,
            claim_runs: client.prepare(claim_runs).await?,
            announce: client
                .prepare(&format!("SELECT pg_notify('{CHANNEL}', $1)"))
                .await?,
            renew: client
                .prepare(
                    "UPDATE runs SET lease_expires_ms = $3 WHERE run_id = $1 AND lease_token = $2
                     RETURNING lease_owner, lease_expires_ms",
                )
                .await?,
            renew_all: client
                .prepare(
                    "UPDATE runs r SET lease_expires_ms = $3
                     FROM unnest($1::text[], $2::bigint[]) AS g(run_id, token)
                     WHERE r.run_id = g.run_id AND r.lease_token = g.token
                     RETURNING r.run_id, r.lease_owner, r.lease_expires_ms",
                )
                .await?,
            release: client
                .prepare(
                    "UPDATE runs r SET lease_owner = NULL, lease_token = NULL,
                     lease_expires_ms = NULL
                     FROM unnest($1::text[], $2::bigint[]) AS g(run_id, token)
                     WHERE r.run_id = g.run_id AND r.lease_token = g.token",
                )
                .await?,
            defer: client
                .prepare(
                    "UPDATE runs SET lease_owner = NULL, lease_token = NULL,
                     lease_expires_ms = NULL, not_before_ms = $3
                     WHERE run_id = $1 AND lease_token = $2",
                )
                .await?,
            tokens: client
                .prepare("SELECT nextval('lease_tokens') FROM generate_series(1, $1::bigint)")
                .await?,
            client,
        })
    }
}

/// Who waits for the store's thread to end.
#[derive(Default)]
struct Exit {
    state: Mutex<(bool, Vec<Acknowledger>)>,
}

impl Exit {
    fn finished(&self) {
        let waiters = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.0 = true;
            std::mem::take(&mut state.1)
        };
        for ack in waiters {
            ack.acknowledge(Ok(()));
        }
    }

    fn wait(&self) -> Acknowledgement {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 {
            return Acknowledgement::ready(Ok(()));
        }
        let (ack, done) = Acknowledgement::channel();
        state.1.push(ack);
        done
    }
}

impl PgStore {
    /// [`PgStore::open`] for async code: the blocking open runs on the runtime's blocking
    /// pool, so it does not stall a worker of the runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), workflow_runtime::OpenError> {
    /// use workflow_postgres::PgStore;
    ///
    /// let store = PgStore::open_async("postgres://app@127.0.0.1:5432/workflows").await?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`PgStore::open`]; [`OpenError::Storage`] with [`StoreError::Closed`] if the runtime
    /// shut down before the open ran. A panic inside the open is resumed in the caller.
    pub async fn open_async(url: &str) -> Result<PgStore, OpenError> {
        let url = url.to_owned();
        match tokio::task::spawn_blocking(move || PgStore::open(&url)).await {
            Ok(opened) => opened,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(storage("<postgres url>", StoreError::Closed)),
            },
        }
    }

    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`,
    /// or the `key=value` form), creates or migrates its schema and checks that the server is
    /// durable. Blocking: in async code call [`PgStore::open_async`].
    ///
    /// # Errors
    /// [`OpenError::SchemaTooNew`] for a database written by a newer version of this library,
    /// [`OpenError::NotDurable`] for a server that could lose acknowledged commits,
    /// [`OpenError::Storage`] for a bad URL or a connection or SQL failure.
    pub fn open(url: &str) -> Result<PgStore, OpenError> {
        let config: Config = url
            .parse()
            .map_err(|e| storage("<postgres url>", backend("parsing the connection URL", e)))?;
        let label = label_of(&config);
        let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
        let (reads_tx, reads_rx) = mpsc::unbounded_channel();
        let (commits_tx, commits_rx) = mpsc::unbounded_channel();
        let commit_count = Arc::new(AtomicU64::new(0));
        let exit = Arc::new(Exit::default());
        let wakeups = Arc::new(listen::Inbox::default());
        let thread = {
            let wakeups = wakeups.clone();
            let thread_label = label.clone();
            let commit_count = commit_count.clone();
            let exit = exit.clone();
            std::thread::Builder::new()
                .name("workflow-postgres".to_owned())
                .spawn(move || {
                    serve(
                        config,
                        &thread_label,
                        opened_tx,
                        reads_rx,
                        commits_rx,
                        &commit_count,
                        wakeups,
                    );
                    exit.finished();
                })
                .map_err(|e| storage(&label, StoreError::io("starting the store's thread", e)))?
        };
        let opened = opened_rx.recv().unwrap_or_else(|_| {
            Err(storage(
                &label,
                StoreError::backend("opening the store", ThreadEnded),
            ))
        });
        if let Err(e) = opened {
            let _ = thread.join();
            return Err(e);
        }
        Ok(PgStore {
            label,
            reads: Mutex::new(Some(reads_tx)),
            commits: Mutex::new(Some(commits_tx)),
            commit_count,
            exit,
            thread: Mutex::new(Some(thread)),
            wakeups,
            tokens: Mutex::default(),
        })
    }

    /// The database this store is connected to, as `host:port/database`.
    pub fn database(&self) -> &str {
        &self.label
    }

    /// Runs `read` on the store's thread and blocks until it answers.
    fn call<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Reader>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: ReadJob = Box::new(move |reader| {
            Box::pin(async move {
                let _ = tx.send(read(reader).await);
            })
        });
        {
            let reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = reads.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Request::Read(job))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    fn stop(&self) {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.commits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// The store's thread ended before it reported how the open went (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the store's thread ended while opening")]
struct ThreadEnded;

fn label_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres {host}:{port}/{db}")
}

/// A client or server error, kept as the store's cause with what the server said in its
/// message (the client's own says only "db error").
pub(crate) fn backend(operation: &'static str, e: tokio_postgres::Error) -> StoreError {
    let message = match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    };
    StoreError::backend(operation, PgError { message, source: e })
}

/// What PostgreSQL or its client reported.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct PgError {
    message: String,
    #[source]
    source: tokio_postgres::Error,
}

pub(crate) fn storage(label: &str, source: StoreError) -> OpenError {
    OpenError::Storage {
        path: label.to_owned(),
        source,
    }
}

/// A `u64` as PostgreSQL's `bigint`: times beyond `i64::MAX` saturate.
pub(crate) fn to_db(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

/// A stored `bigint` as a `u64`; the store never writes a negative one.
pub(crate) fn from_db(x: i64) -> u64 {
    u64::try_from(x).unwrap_or(0)
}

/// The workflows a claim is for ([`Claim::workflows`]), as the claim statements' parameter.
fn wanted(claim: &Claim<'_>) -> Option<Vec<String>> {
    claim
        .workflows
        .map(|names| names.iter().map(|&n| n.to_owned()).collect())
}

fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Codec(CodecError::decoding(what(), e)))
}

/// Connects one connection and drives it on the current runtime.
async fn connect(config: &Config, label: &str) -> Result<Client, OpenError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| storage(label, backend("connecting to the server", e)))?;
    let database = label.to_owned();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(%database, "the connection to PostgreSQL failed: {e}");
        }
    });
    schema::require_durability(&client, label).await?;
    // The store's statements are prepared once and run thousands of times with the same
    // shape. Left to choose, the server plans the commit statement (data-modifying `WITH`
    // parts over `unnest`ed arrays) afresh at every execution, which measured as 40 % of a
    // step's commit round trip (950 against 530 µs); its generic plan is as good.
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .map_err(|e| storage(label, backend("setting the session's plan cache mode", e)))?;
    Ok(client)
}

/// The store's thread: opens, then serves reads and commits until both channels close.
fn serve(
    config: Config,
    label: &str,
    opened: std::sync::mpsc::SyncSender<Result<(), OpenError>>,
    mut reads: mpsc::UnboundedReceiver<Request>,
    commits: mpsc::UnboundedReceiver<(Job, Acknowledger)>,
    commit_count: &Arc<AtomicU64>,
    wakeups: Arc<listen::Inbox>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = opened.send(Err(storage(
                label,
                StoreError::io("starting the store's runtime", e),
            )));
            return;
        }
    };
    runtime.block_on(async move {
        let setup = async {
            let mut writer = connect(&config, label).await?;
            schema::migrate(&mut writer, label).await?;
            let reader = connect(&config, label).await?;
            let reader = Reader::prepare(reader)
                .await
                .map_err(|e| storage(label, backend("preparing the store's statements", e)))?;
            let statements = WriteStatements::prepare(&writer)
                .await
                .map_err(|e| storage(label, backend("preparing the store's statements", e)))?;
            Ok::<_, OpenError>((writer, statements, Arc::new(reader)))
        };
        let (writer, statements, reader) = match setup.await {
            Ok(opened_parts) => {
                let _ = opened.send(Ok(()));
                opened_parts
            }
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        let reconnect = Arc::new(Reconnect {
            config,
            label: label.to_owned(),
        });
        // Ends with the runtime, when the store closes.
        tokio::spawn(listen::run(reconnect.clone(), wakeups));
        let committer = tokio::spawn(commit::run(
            reconnect.clone(),
            writer,
            statements,
            commits,
            commit_count.clone(),
        ));
        let mut reader = reader;
        let mut in_flight = JoinSet::new();
        loop {
            tokio::select! {
                request = reads.recv() => match request {
                    Some(request) => {
                        if reader.client.is_closed() {
                            // The server restarted or the network failed: reads in flight on
                            // the old connection fail; this one gets a new connection if the
                            // server answers, or fails too.
                            match reconnect.reader().await {
                                Ok(fresh) => reader = Arc::new(fresh),
                                Err(e) => tracing::warn!(database = %label, "reconnecting: {e}"),
                            }
                        }
                        // Everything queued now, in order: the releases between two reads go
                        // to the server as one statement, sent before the read that followed
                        // them (the connection runs statements in the order they are sent,
                        // so a claim after a release finds the run released).
                        // The claims queued together go as one statement too, after the
                        // releases queued before them: a claim that reached the server before
                        // the release of its owner's own lease would keep that lease's token,
                        // which the release then takes away.
                        let mut releases = (Vec::new(), Vec::new());
                        let mut claims = Vec::new();
                        let mut next = Some(request);
                        while let Some(request) = next {
                            match request {
                                Request::Release(run_id, token) => {
                                    if !claims.is_empty() {
                                        let batch = std::mem::take(&mut releases);
                                        in_flight.spawn(release_all(reader.clone(), batch));
                                        let batch = std::mem::take(&mut claims);
                                        in_flight.spawn(claim_all(reader.clone(), batch));
                                    }
                                    releases.0.push(run_id);
                                    releases.1.push(token);
                                }
                                Request::Claim(claim) => claims.push(claim),
                                Request::Read(job) => {
                                    if !releases.0.is_empty() {
                                        let batch = std::mem::take(&mut releases);
                                        in_flight.spawn(release_all(reader.clone(), batch));
                                    }
                                    in_flight.spawn(job(reader.clone()));
                                }
                            }
                            next = reads.try_recv().ok();
                        }
                        if !releases.0.is_empty() {
                            in_flight.spawn(release_all(reader.clone(), releases));
                        }
                        if !claims.is_empty() {
                            in_flight.spawn(claim_all(reader.clone(), claims));
                        }
                    }
                    None => break,
                },
                Some(_) = in_flight.join_next() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        // The committer commits what is queued before it ends.
        let _ = committer.await;
    });
}

/// Gives back the leases `(run_ids, tokens)` in one statement. Nobody waits for it: a release
/// that fails (the connection was lost) leaves the lease to lapse by itself, as a worker's
/// death would.
async fn release_all(reader: Arc<Reader>, (run_ids, tokens): (Vec<String>, Vec<i64>)) {
    if let Err(e) = reader
        .client
        .execute(&reader.release, &[&run_ids, &tokens])
        .await
    {
        tracing::debug!(error = %e, leases = run_ids.len(), "releasing leases (they lapse)");
    }
}

/// Answers the claims by id `claims` with one statement per distinct set of runs (one, unless
/// two callers claim the same run at once).
async fn claim_all(reader: Arc<Reader>, mut claims: Vec<ClaimRequest>) {
    while !claims.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (batch, later): (Vec<ClaimRequest>, Vec<ClaimRequest>) = claims
            .into_iter()
            .partition(|claim| seen.insert(claim.run_id.clone()));
        claims = later;
        let run_ids: Vec<&str> = batch.iter().map(|c| c.run_id.as_str()).collect();
        let owners: Vec<&str> = batch.iter().map(|c| c.owner.as_str()).collect();
        let nows: Vec<i64> = batch.iter().map(|c| c.now_ms).collect();
        let expiries: Vec<i64> = batch.iter().map(|c| c.expires_ms).collect();
        match reader
            .client
            .query(&reader.claim_runs, &[&run_ids, &owners, &nows, &expiries])
            .await
        {
            Ok(rows) => {
                let mut granted: std::collections::HashMap<String, (String, i64, i64)> = rows
                    .into_iter()
                    .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
                    .collect();
                for claim in batch {
                    let lease = granted
                        .remove(&claim.run_id)
                        .map(|(owner, token, expires)| {
                            Lease::new(claim.run_id, owner, from_db(token), from_db(expires))
                        });
                    let _ = claim.reply.send(Ok(lease));
                }
            }
            Err(e) => {
                let e = backend("claiming a run", e);
                for claim in batch {
                    let _ = claim.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// How to open a connection again once the server dropped one.
pub(crate) struct Reconnect {
    pub(crate) config: Config,
    pub(crate) label: String,
}

impl Reconnect {
    async fn reader(&self) -> Result<Reader, StoreError> {
        let client = connect(&self.config, &self.label)
            .await
            .map_err(reconnect_error)?;
        Reader::prepare(client)
            .await
            .map_err(|e| backend("preparing the store's statements", e))
    }

    pub(crate) async fn writer(&self) -> Result<(Client, WriteStatements), StoreError> {
        let client = connect(&self.config, &self.label)
            .await
            .map_err(reconnect_error)?;
        let statements = WriteStatements::prepare(&client)
            .await
            .map_err(|e| backend("preparing the store's statements", e))?;
        Ok((client, statements))
    }
}

fn reconnect_error(e: OpenError) -> StoreError {
    match e {
        OpenError::Storage { source, .. } => source,
        other => StoreError::backend("reconnecting to the server", other),
    }
}

fn pg(operation: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| backend(operation, e)
}

impl Store for PgStore {
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.call(move |r| async move {
            let op = "reading a run";
            let row = r
                .client
                .query_opt(&r.run, &[&run_id])
                .await
                .map_err(pg(op))?;
            row.map(|row| {
                decode(row.get::<_, &[u8]>(0), || {
                    format!("the record of run `{run_id}`")
                })
            })
            .transpose()
        })
    }

    fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError> {
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.runs, &[])
                .await
                .map_err(pg("reading the runs"))?;
            rows.iter()
                .map(|row| {
                    let run_id: String = row.get(0);
                    let rec = decode(row.get::<_, &[u8]>(1), || {
                        format!("the record of run `{run_id}`")
                    })?;
                    Ok((run_id, rec))
                })
                .collect()
        })
    }

    fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError> {
        let run_id = run_id.to_owned();
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.inbox, &[&run_id])
                .await
                .map_err(pg("reading a run's buffered signals"))?;
            rows.iter()
                .map(|row| {
                    let entry = decode(row.get::<_, &[u8]>(1), || {
                        format!("a buffered signal of run `{run_id}`")
                    })?;
                    Ok((from_db(row.get(0)), entry))
                })
                .collect()
        })
    }

    fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        let (run_id, key) = (run_id.to_owned(), key.to_owned());
        self.call(move |r| async move {
            let row = r
                .client
                .query_one(&r.has_dedupe, &[&run_id, &key])
                .await
                .map_err(pg("reading a run's applied signals"))?;
            Ok(row.get(0))
        })
    }

    fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let run_id = run_id.to_owned();
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.dedupe_keys, &[&run_id])
                .await
                .map_err(pg("reading a run's applied signals"))?;
            Ok(rows
                .iter()
                .map(|row| (row.get::<_, String>(0), from_db(row.get(1))))
                .collect())
        })
    }

    fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        let run_id = run_id.to_owned();
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.trace, &[&run_id])
                .await
                .map_err(pg("reading a run's trace"))?;
            rows.iter().map(|row| trace_event(row, &run_id)).collect()
        })
    }

    fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError> {
        let run_id = run_id.to_owned();
        self.call(move |r| async move {
            let row = r
                .client
                .query_opt(&r.last_trace, &[&run_id])
                .await
                .map_err(pg("reading a run's trace"))?;
            row.map(|row| trace_event(&row, &run_id)).transpose()
        })
    }

    fn pending_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.pending_waits, &[])
                .await
                .map_err(pg("reading the pending waits"))?;
            rows.iter()
                .map(|row| decode(row.get::<_, &[u8]>(0), || "a pending wait".to_owned()))
                .collect()
        })
    }

    fn signalled_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.signalled_waits, &[])
                .await
                .map_err(pg("reading the signalled waits"))?;
            let mut out: Vec<PendingWait> = Vec::new();
            for row in &rows {
                let wait: PendingWait =
                    decode(row.get::<_, &[u8]>(0), || "a pending wait".to_owned())?;
                if out.last().is_some_and(|w| w.run_id == wait.run_id) {
                    continue;
                }
                let entry: InboxEntry =
                    decode(row.get::<_, &[u8]>(1), || "a buffered signal".to_owned())?;
                if entry.name == wait.signal {
                    out.push(wait);
                }
            }
            Ok(out)
        })
    }

    fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError> {
        self.call(move |r| async move {
            let rows = r
                .client
                .query(&r.ready, &[])
                .await
                .map_err(pg("reading the ready runs"))?;
            Ok(rows
                .iter()
                .map(|row| ReadyEntry::new(row.get::<_, String>(0), row.get::<_, String>(1)))
                .collect())
        })
    }

    fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError> {
        self.timers_page(None, due_by_ms, usize::MAX)
    }

    fn timers_page(
        &self,
        after: Option<(u64, &str)>,
        due_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<ArmedTimer>, StoreError> {
        // No key sorts before (-1, ''): deadlines are stored as non-negative numbers.
        let (after_ms, after_run) =
            after.map_or((-1, String::new()), |(d, r)| (to_db(d), r.to_owned()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |r| async move {
            let rows = r
                .client
                .query(
                    &r.timers_page,
                    &[&to_db(due_by_ms), &after_ms, &after_run, &limit],
                )
                .await
                .map_err(pg("reading the armed timers"))?;
            Ok(rows
                .iter()
                .map(|row| {
                    ArmedTimer::new(
                        from_db(row.get(0)),
                        row.get::<_, String>(1),
                        from_db(row.get(2)),
                        row.get::<_, String>(3),
                    )
                })
                .collect())
        })
    }

    fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError> {
        let owner = claim.owner.to_owned();
        let (now, expires) = (
            to_db(claim.now_ms),
            to_db(claim.now_ms.saturating_add(claim.lease_ms)),
        );
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        let workflows = wanted(claim);
        self.call(move |r| async move {
            let rows = r
                .client
                .query(
                    &r.claim_ready,
                    &[&owner, &now, &expires, &limit, &workflows],
                )
                .await
                .map_err(pg("claiming ready runs"))?;
            let mut out: Vec<ReadyRun> = rows
                .iter()
                .map(|row| {
                    let run_id: String = row.get(0);
                    let lease = Lease::new(
                        run_id.clone(),
                        owner.clone(),
                        from_db(row.get(2)),
                        from_db(row.get(3)),
                    );
                    ReadyRun::new(run_id, row.get::<_, String>(1), lease)
                })
                .collect();
            // `RETURNING` keeps no order.
            out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
            Ok(out)
        })
    }

    fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError> {
        let owner = claim.owner.to_owned();
        let (now, expires) = (
            to_db(claim.now_ms),
            to_db(claim.now_ms.saturating_add(claim.lease_ms)),
        );
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        let due_by = to_db(due_by_ms);
        let workflows = wanted(claim);
        self.call(move |r| async move {
            let rows = r
                .client
                .query(
                    &r.claim_timers,
                    &[&owner, &now, &expires, &limit, &workflows, &due_by],
                )
                .await
                .map_err(pg("claiming due timers"))?;
            let mut out: Vec<DueTimer> = rows
                .iter()
                .map(|row| {
                    let run_id: String = row.get(0);
                    let lease = Lease::new(
                        run_id.clone(),
                        owner.clone(),
                        from_db(row.get(2)),
                        from_db(row.get(3)),
                    );
                    let timer = ArmedTimer::new(
                        from_db(row.get(4)),
                        run_id,
                        from_db(row.get(5)),
                        row.get::<_, String>(1),
                    );
                    DueTimer::new(timer, lease)
                })
                .collect();
            out.sort_by(|a, b| (a.deadline_ms, &a.run_id).cmp(&(b.deadline_ms, &b.run_id)));
            Ok(out)
        })
    }

    fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError> {
        let lease = lease.clone();
        let expires = to_db(now_ms.saturating_add(lease_ms));
        self.call(move |r| async move {
            let row = r
                .client
                .query_opt(&r.renew, &[&lease.run_id, &to_db(lease.token), &expires])
                .await
                .map_err(pg("renewing a lease"))?;
            match row {
                Some(row) => Ok(Lease::new(
                    lease.run_id,
                    row.get::<_, String>(0),
                    lease.token,
                    from_db(row.get(1)),
                )),
                None => Err(StoreError::NotOwner {
                    run_id: lease.run_id,
                }),
            }
        })
    }

    /// One statement for all: each renewal is a transaction and a WAL flush on the server.
    fn renew_all(
        &self,
        leases: &[Lease],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Vec<Result<Lease, StoreError>>, StoreError> {
        let leases = leases.to_vec();
        let expires = to_db(now_ms.saturating_add(lease_ms));
        self.call(move |r| async move {
            let run_ids: Vec<&str> = leases.iter().map(|l| l.run_id.as_str()).collect();
            let tokens: Vec<i64> = leases.iter().map(|l| to_db(l.token)).collect();
            let rows = r
                .client
                .query(&r.renew_all, &[&run_ids, &tokens, &expires])
                .await
                .map_err(pg("renewing leases"))?;
            let mut renewed: std::collections::HashMap<String, (String, i64)> = rows
                .into_iter()
                .map(|row| (row.get(0), (row.get(1), row.get(2))))
                .collect();
            Ok(leases
                .into_iter()
                .map(|lease| match renewed.remove(&lease.run_id) {
                    Some((owner, expires)) => Ok(Lease::new(
                        lease.run_id,
                        owner,
                        lease.token,
                        from_db(expires),
                    )),
                    None => Err(StoreError::NotOwner {
                        run_id: lease.run_id,
                    }),
                })
                .collect())
        })
    }

    /// Queues the release and returns: the store's thread sends every release queued
    /// together as one statement, before any read, claim or renewal asked for after it. A
    /// release costs a transaction and a WAL flush on the server; waiting for each one on its
    /// own, one connection at a time, was most of what a worker in shared mode waited for
    /// (BENCHMARKS.md, "PostgreSQL, three workers"). Other processes see the run released
    /// once that statement commits, a moment later.
    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let request = Request::Release(lease.run_id.clone(), to_db(lease.token));
        let reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = reads.as_ref().ok_or(StoreError::Closed)?;
        sender.send(request).map_err(|_| StoreError::Closed)
    }

    /// One statement, waited for: the deferral must be in place before the caller's next
    /// claim round.
    fn defer(&self, lease: &Lease, not_before_ms: u64) -> Result<(), StoreError> {
        let (run_id, token, not_before) = (
            lease.run_id.clone(),
            to_db(lease.token),
            to_db(not_before_ms),
        );
        self.call(move |r| async move {
            r.client
                .execute(&r.defer, &[&run_id, &token, &not_before])
                .await
                .map_err(pg("deferring a run"))?;
            Ok(())
        })
    }

    /// The claims by id that callers make at the same time go to the server as one
    /// statement: each claim that grants a lease is a transaction and a WAL flush there.
    fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let request = Request::Claim(ClaimRequest {
            run_id: run_id.to_owned(),
            owner: claim.owner.to_owned(),
            now_ms: to_db(claim.now_ms),
            expires_ms: to_db(claim.now_ms.saturating_add(claim.lease_ms)),
            reply,
        });
        {
            let reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = reads.as_ref().ok_or(StoreError::Closed)?;
            sender.send(request).map_err(|_| StoreError::Closed)?;
        }
        answer.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// The lease is written with the run by the commit that creates it: its token comes from
    /// a block taken from the server's token sequence beforehand, so asking costs no round
    /// trip most of the time. The lease's expiry is on the claimant's clock, as a claim's.
    fn lease_new_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        let taken = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let token = match taken {
            Some(token) => token,
            None => {
                let mut block = self.call(move |r| async move {
                    let rows = r
                        .client
                        .query(&r.tokens, &[&TOKEN_BLOCK])
                        .await
                        .map_err(pg("taking lease tokens"))?;
                    Ok(rows
                        .iter()
                        .map(|row| row.get::<_, i64>(0))
                        .collect::<Vec<_>>())
                })?;
                let token = block.pop().ok_or_else(|| {
                    StoreError::backend(
                        "taking lease tokens",
                        std::io::Error::other("the server answered no token"),
                    )
                })?;
                self.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(block);
                token
            }
        };
        Ok(Some(Lease::new(
            run_id,
            claim.owner,
            from_db(token),
            claim.now_ms.saturating_add(claim.lease_ms),
        )))
    }

    fn announce(&self, run_id: &str) -> Result<(), StoreError> {
        let run_id = run_id.to_owned();
        self.call(move |r| async move {
            r.client
                .execute(&r.announce, &[&run_id])
                .await
                .map_err(pg("announcing a run"))?;
            Ok(())
        })
    }

    fn wait_for_work(&self, poll: std::time::Duration) -> WorkWait<'_> {
        Box::pin(self.wakeups.wait(poll))
    }

    fn commit(&self, checkpoint: CheckpointWrite) -> Acknowledgement {
        let job = match Job::encode(checkpoint) {
            Ok(job) => job,
            Err(e) => return Acknowledgement::ready(Err(e)),
        };
        let (ack, done) = Acknowledgement::channel();
        let commits = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        match commits.as_ref() {
            // A send to a stopped thread drops the acknowledger, which answers `Closed`.
            Some(tx) => drop(tx.send((job, ack))),
            None => ack.acknowledge(Err(StoreError::Closed)),
        }
        done
    }

    fn commit_count(&self) -> u64 {
        self.commit_count.load(Ordering::Relaxed)
    }

    fn close(&self) -> Acknowledgement {
        self.stop();
        self.exit.wait()
    }

    fn close_blocking(&self) {
        self.stop();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // The thread runs no user code; a panic there has nobody left to report to.
            let _ = thread.join();
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close_blocking();
    }
}

fn trace_event(row: &tokio_postgres::Row, run_id: &str) -> Result<TraceEvent, StoreError> {
    let mut event: TraceEvent = decode(row.get::<_, &[u8]>(1), || {
        format!("a trace event of run `{run_id}`")
    })?;
    // The row's index is the event's number; the body keeps whatever the writer gave.
    event.seq = from_db(row.get(0));
    Ok(event)
}
