//! The engine: opens the store, drives runs from checkpoint to checkpoint, and resumes them
//! after a restart.
//!
//! Every change to a run happens under that run's lock, from a freshly read envelope, and is
//! acknowledged only after the committer made it durable. Nothing is cached between
//! transitions: a run parked on a wait costs a timer entry and no task or memory otherwise.

mod attempts;
mod checkpoint;
mod driver;
mod handle;
pub(crate) mod hooks;
mod ops;
#[cfg(test)]
mod tests;
mod types;
mod versions;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tokio::sync::{Notify, OwnedMutexGuard, watch};

use self::attempts::RunningStep;
use self::checkpoint::{Checkpoint, Effects};
use self::driver::{Driver, Typed};
use self::hooks::{Busy, CrashMoment, Hooks};
use crate::clock::{Clock, SystemClock};
use crate::committer::Committer;
use crate::error::EngineError;
use crate::model::{Command, Workflow};
use crate::step::DataMap;
use crate::store::{self, Reader, RunRecord, Store};
use crate::timers::Timers;
use crate::trace::{TraceEvent, TraceKind};

pub(crate) use self::driver::panic_text;
pub use self::handle::RunHandle;
pub use self::types::{PendingWait, RunStatus, Signal, SignalOutcome};
use self::versions::Registry;
pub use self::versions::{IncompatibleRun, VersionSummary};

/// A durable workflow engine over one redb file.
///
/// Cheap to clone: clones share the same store, timers and running steps.
///
/// ```no_run
/// # use workflow_runtime::prelude::*;
/// # async fn demo(path: &std::path::Path) -> Result<(), EngineError> {
/// let engine = Engine::builder()
///     // .register(refund_review)
///     .open(path)
///     .await?;
/// for wait in engine.pending()? {
///     println!("{} waits for `{}`: {}", wait.run_id, wait.signal, wait.metadata);
/// }
/// engine.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    /// Shared by the clones only, not by background tasks, so that dropping the last clone
    /// closes the store even while a task still finishes its work.
    _open: Arc<CloseOnDrop>,
}

struct CloseOnDrop(Arc<Inner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        // Dropping the last engine without `shutdown` must still release the file, so that the
        // same path can be reopened at once.
        if self.0.begin_shutdown() {
            self.0.committer.stop_blocking();
            self.0.release_store();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let workflows: Vec<&str> = self.inner.registry().names();
        f.debug_struct("Engine")
            .field("workflows", &workflows)
            .finish_non_exhaustive()
    }
}

/// Configures and opens an [`Engine`].
pub struct EngineBuilder {
    drivers: Vec<Arc<dyn Driver>>,
    clock: Arc<dyn Clock>,
    hooks: Hooks,
    max_payload: usize,
    data: DataMap,
}

/// The default of [`EngineBuilder::max_payload_bytes`]: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let workflows: Vec<&str> = self.drivers.iter().map(|d| d.name()).collect();
        f.debug_struct("EngineBuilder")
            .field("workflows", &workflows)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            drivers: Vec::new(),
            clock: Arc::new(SystemClock),
            hooks: Hooks::default(),
            max_payload: DEFAULT_MAX_PAYLOAD_BYTES,
            data: DataMap::default(),
        }
    }
}

impl EngineBuilder {
    /// Registers a workflow, so that its runs can be started and its in-flight runs resume when
    /// the engine opens. A later registration under the same name replaces an earlier one.
    #[must_use]
    pub fn register<W: Workflow>(mut self, _workflow: W) -> Self {
        self.drivers.push(Arc::new(Typed::<W>::new()));
        self
    }

    /// Uses this clock for deadlines and trace times instead of the system clock; tests pass a
    /// [`ManualClock`](crate::ManualClock) to move time by hand.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The largest run input, signal payload and step output accepted, as JSON bytes (default
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`]). Every checkpoint rewrites the run's state, so large values
    /// belong in external storage with a reference in the workflow. A larger input or signal is
    /// refused with [`EngineError::TooLarge`] and changes nothing; a larger step output fails
    /// the step permanently, and the workflow receives that error.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Gives every step of this engine a dependency of type `T` (an HTTP client, a payment
    /// provider, an LLM client), which a step reaches with
    /// [`StepContext::data`](crate::StepContext::data); a later value of the same type
    /// replaces an earlier one. The value is shared behind an [`Arc`], never copied.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// struct Payments {
    ///     api_key: String,
    /// }
    ///
    /// #[function]
    /// async fn pay(ctx: StepContext, cents: u64) -> Result<String, StepError> {
    ///     let payments = ctx.data::<Payments>()?;
    ///     Ok(format!("paid {cents} with {}", payments.api_key))
    /// }
    ///
    /// #[workflow]
    /// async fn checkout(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    ///     Ok(ctx.step(pay, cents).await?)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder()
    ///     .register(checkout)
    ///     .data(Payments { api_key: "sk-test".into() })
    ///     .open_in_memory()
    ///     .await?;
    /// let run = engine.start(checkout, "order-1", 500).await?;
    /// assert_eq!(run.result().await?, Ok("paid 500 with sk-test".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn data<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.data_shared(Arc::new(value))
    }

    /// As [`EngineBuilder::data`], for a value the application shares with other code.
    #[must_use]
    pub fn data_shared<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.data.insert(value);
        self
    }

    pub(crate) fn data_map(mut self, data: DataMap) -> Self {
        self.data = data;
        self
    }

    #[doc(hidden)]
    /// Test instrumentation; see `workflow_runtime::testing`.
    #[must_use]
    pub fn __hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    #[doc(hidden)]
    /// Opens an engine over any redb backend; `workflow_runtime::testing` keeps one in memory
    /// across simulated restarts.
    ///
    /// # Errors
    /// As [`EngineBuilder::open_in_memory`].
    pub async fn __open_backend(
        self,
        backend: impl redb::StorageBackend,
    ) -> Result<Engine, EngineError> {
        let opened = Store::open_backend(backend)?;
        self.start(opened).await
    }

    /// Opens the store file at `path`, creating it if missing, and resumes every in-flight run
    /// of the registered workflows.
    ///
    /// # Errors
    /// [`EngineError::AlreadyOpen`] if another engine holds the file, [`EngineError::NotAStore`]
    /// or [`EngineError::Corrupt`] for a file that is not a healthy store, and
    /// [`EngineError::Storage`] for I/O failures.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<Engine, EngineError> {
        let path = path.as_ref().to_owned();
        let opened = tokio::task::spawn_blocking(move || Store::open_file(&path))
            .await
            .map_err(|e| EngineError::Storage(format!("the open task failed: {e}")))??;
        self.start(opened).await
    }

    /// Opens an engine over a fresh in-memory store, for tests.
    ///
    /// # Errors
    /// [`EngineError::Storage`] if the store cannot be initialised.
    pub async fn open_in_memory(self) -> Result<Engine, EngineError> {
        let opened = Store::open_memory()?;
        self.start(opened).await
    }

    async fn start(self, (store, db): (Store, Arc<redb::Database>)) -> Result<Engine, EngineError> {
        let committer = Committer::spawn(db)?;
        let mut registry = Registry::default();
        for d in self.drivers {
            registry.add(d);
        }
        let clock = self.clock;
        let busy = Arc::new(Busy::default());
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            let weak = me.clone();
            let timer_busy = busy.clone();
            let timers = Timers::spawn(clock.clone(), move |run_id, seq| {
                if let Some(inner) = weak.upgrade() {
                    let busy = timer_busy.guard();
                    tokio::spawn(async move {
                        inner.on_timer(run_id, seq).await;
                        drop(busy);
                    });
                }
            });
            Inner {
                me: me.clone(),
                store,
                committer,
                timers,
                clock,
                registry: RwLock::new(registry),
                locks: Mutex::default(),
                steps: Mutex::default(),
                waiters: Mutex::default(),
                shutdown: watch::Sender::new(false),
                hooks: self.hooks,
                max_payload: self.max_payload,
                data: self.data,
                busy,
                commits_begun: AtomicU64::new(0),
                crashed: AtomicBool::new(false),
            }
        });
        let engine = Engine {
            _open: Arc::new(CloseOnDrop(inner.clone())),
            inner,
        };
        engine.inner.resume(None).await?;
        Ok(engine)
    }
}

impl Engine {
    /// A builder: register workflows, pick a clock, then open.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Opens the store at `path` with no workflows registered; see [`Engine::register`].
    ///
    /// # Errors
    /// As [`EngineBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Engine, EngineError> {
        Self::builder().open(path).await
    }

    /// Registers a workflow on an open engine and resumes its in-flight runs.
    ///
    /// # Errors
    /// [`EngineError::ShutDown`], or a storage error while reading the runs to resume.
    pub async fn register<W: Workflow>(&self, _workflow: W) -> Result<(), EngineError> {
        self.inner.check_open()?;
        let driver: Arc<dyn Driver> = Arc::new(Typed::<W>::new());
        self.inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(driver);
        self.inner.resume(Some(W::NAME)).await
    }

    /// Re-attaches to an existing run.
    ///
    /// # Errors
    /// [`EngineError::UnknownRun`] if there is no such run, [`EngineError::Conflict`] if it
    /// belongs to another workflow.
    pub fn handle<W: Workflow>(
        &self,
        _workflow: W,
        run_id: impl Into<String>,
    ) -> Result<RunHandle<W>, EngineError> {
        let run_id = run_id.into();
        let rec = self.inner.record(&run_id)?;
        if rec.workflow != W::NAME {
            return Err(EngineError::Conflict {
                reason: format!("for workflow `{}`, not `{}`", rec.workflow, W::NAME),
                run_id,
            });
        }
        Ok(RunHandle::new(self.clone(), run_id))
    }

    /// Where the run stands. A run checkpointed by code whose fingerprint differs from the
    /// registered workflow's reports [`RunStatus::Incompatible`].
    ///
    /// # Errors
    /// [`EngineError::UnknownRun`], or a storage error.
    pub fn status(&self, run_id: &str) -> Result<RunStatus, EngineError> {
        let rec = self.inner.record(run_id)?;
        Ok(self.inner.status_of(&rec))
    }

    /// Every run waiting for a signal, with the wait's metadata and deadline, in run id order.
    ///
    /// # Errors
    /// A storage error.
    pub fn pending(&self) -> Result<Vec<PendingWait>, EngineError> {
        self.inner.store.reader()?.pending()
    }

    /// The run's trace, oldest event first.
    ///
    /// # Errors
    /// [`EngineError::UnknownRun`], or a storage error.
    pub fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, EngineError> {
        let reader = self.inner.store.reader()?;
        if !reader.exists(run_id)? {
            return Err(EngineError::UnknownRun {
                run_id: run_id.to_owned(),
            });
        }
        reader.trace(run_id)
    }

    /// Stops timers and running steps, commits what is queued, and closes the store file so
    /// that it can be opened again (in this process or another).
    ///
    /// Steps still running are abandoned; they run again when the store is next opened. Every
    /// later call on this engine or its clones fails with [`EngineError::ShutDown`].
    pub async fn shutdown(&self) {
        if self.inner.begin_shutdown() {
            self.inner.committer.stop().await;
            self.inner.release_store();
        }
    }

    #[doc(hidden)]
    /// Returns once no step runs, no timer due at the clock's current time is left unfired and
    /// no transition is in flight; `workflow_runtime::testing` uses it to run until idle.
    ///
    /// # Panics
    /// When the hooks bound waits ([`Hooks::bound_waits`]) and the engine is still busy once
    /// the bound has passed; the message says what it was busy with.
    pub async fn __settle(&self) {
        let Some(bound) = self.inner.hooks.wait_bound else {
            return self.settle().await;
        };
        if tokio::time::timeout(bound, self.settle()).await.is_err() {
            let inner = &self.inner;
            let mut locked: Vec<String> = lock(&inner.locks).keys().cloned().collect();
            locked.sort();
            let mut stepping: Vec<String> = lock(&inner.steps).keys().cloned().collect();
            stepping.sort();
            panic!(
                "waited {bound:?} for the engine to become idle, and it did not: {} piece(s) \
                 of background work in flight, transitions in flight for runs {locked:?}, \
                 steps running for runs {stepping:?}, crashed: {}",
                inner.busy.count(),
                inner.crashed.load(Ordering::SeqCst)
            );
        }
    }

    async fn settle(&self) {
        let quiet = |inner: &Inner| inner.busy.count() == 0 && lock(&inner.locks).is_empty();
        loop {
            self.inner.timers.sync().await;
            if quiet(&self.inner) {
                // Twice, with the timer task drained in between: a timer that fired just now
                // shows up as busy work on the second look.
                tokio::task::yield_now().await;
                self.inner.timers.sync().await;
                if quiet(&self.inner) {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    #[doc(hidden)]
    /// How many commits this engine began; the crash test counts them.
    pub fn __commits_begun(&self) -> u64 {
        self.inner.commits_begun.load(Ordering::SeqCst)
    }

    #[doc(hidden)]
    /// Whether a simulated crash stopped this engine.
    pub fn __crashed(&self) -> bool {
        self.inner.crashed.load(Ordering::SeqCst)
    }

    #[doc(hidden)]
    /// How many write transactions the committer made; for benchmarks and tests.
    pub fn __commit_count(&self) -> u64 {
        self.inner.committer.commits()
    }
}

pub(crate) struct Inner {
    me: Weak<Inner>,
    store: Store,
    committer: Committer,
    timers: Timers,
    clock: Arc<dyn Clock>,
    registry: RwLock<Registry>,
    /// Per-run locks, present only while someone holds or awaits one.
    locks: Mutex<HashMap<String, RunMutex>>,
    /// The attempt of a step running for each run.
    steps: Mutex<HashMap<String, RunningStep>>,
    /// Runs someone awaits the result of.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    shutdown: watch::Sender<bool>,
    hooks: Hooks,
    max_payload: usize,
    /// The dependencies every step context carries.
    data: DataMap,
    /// Background work in flight, for [`Engine::__settle`].
    busy: Arc<Busy>,
    /// Commits started through [`Inner::commit`], for [`Hooks::crash_at`].
    commits_begun: AtomicU64,
    crashed: AtomicBool,
}

/// A run's lock and how many parties hold or await it.
///
/// The count, not the `Arc`'s strong count, decides when the entry goes: a task aborted while
/// it awaits the lock (a step attempt stopped by a shutdown) drops its clone of the `Arc` at a
/// moment no destructor of ours observes, which used to leave the entry behind for good, so
/// that the engine never looked idle again.
#[derive(Default)]
struct RunMutex {
    mutex: Arc<tokio::sync::Mutex<()>>,
    users: usize,
}

/// Holds a run's lock; forgets the lock when nobody else wants it.
struct RunLock<'a> {
    _interest: Interest<'a>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for RunLock<'_> {
    fn drop(&mut self) {
        // Released before the interest ends, so a waiter never finds the entry gone while the
        // lock is still held.
        drop(self.guard.take());
    }
}

/// One party's interest in a run's lock, from before it awaits the lock until it releases it.
/// Created and dropped synchronously, so cancellation at any `.await` keeps the count right.
struct Interest<'a> {
    inner: &'a Inner,
    run_id: String,
}

impl Drop for Interest<'_> {
    fn drop(&mut self) {
        let mut locks = lock(&self.inner.locks);
        if let Some(entry) = locks.get_mut(&self.run_id) {
            entry.users -= 1;
            if entry.users == 0 {
                locks.remove(&self.run_id);
            }
        }
    }
}

/// Locks a std mutex, ignoring poisoning: every critical section here leaves its map valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Refuses empty names, names with control characters and names over 512 bytes: ids end up in
/// logs, URLs and store keys, where those cause trouble long after they were accepted.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), EngineError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 512 {
        "it is longer than 512 bytes"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(EngineError::InvalidName {
        what: what.to_owned(),
        name: name.to_owned(),
        reason: reason.to_owned(),
    })
}

impl Inner {
    /// Refuses a value over the payload limit.
    fn check_size(
        &self,
        what: impl FnOnce() -> String,
        value: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let bytes = crate::codec::encoded_len(value);
        if bytes > self.max_payload {
            return Err(EngineError::TooLarge {
                what: what(),
                bytes,
                limit: self.max_payload,
            });
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), EngineError> {
        if self.crashed.load(Ordering::SeqCst) {
            Err(EngineError::SimulatedCrash)
        } else if *self.shutdown.borrow() {
            Err(EngineError::ShutDown)
        } else {
            Ok(())
        }
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn driver(&self, workflow: &str) -> Option<Arc<dyn Driver>> {
        self.registry().newest(workflow)
    }

    async fn lock_run(&self, run_id: &str) -> RunLock<'_> {
        let mutex = {
            let mut locks = lock(&self.locks);
            let entry = locks.entry(run_id.to_owned()).or_default();
            entry.users += 1;
            entry.mutex.clone()
        };
        let interest = Interest {
            inner: self,
            run_id: run_id.to_owned(),
        };
        let guard = mutex.lock_owned().await;
        RunLock {
            _interest: interest,
            guard: Some(guard),
        }
    }

    fn record(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        self.store
            .reader()?
            .run(run_id)?
            .ok_or_else(|| EngineError::UnknownRun {
                run_id: run_id.to_owned(),
            })
    }

    /// The stored status, or `Incompatible` when the registered code does not fit the record.
    fn status_of(&self, rec: &RunRecord) -> RunStatus {
        if !rec.is_finished()
            && let versions::Resolution::Incompatible(reason) = self.registry().resolve(rec)
        {
            return RunStatus::Incompatible { reason };
        }
        rec.status.clone()
    }

    /// Commits a checkpoint, then carries out what it started.
    async fn commit(&self, cp: Checkpoint) -> Result<(), EngineError> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(EngineError::SimulatedCrash);
        }
        let snapshot = self.hooks.observer.as_ref().and_then(|_| cp.snapshot());
        let n = self.commits_begun.fetch_add(1, Ordering::SeqCst) + 1;
        let crash = self.hooks.crash.filter(|(at, _)| *at == n).map(|(_, m)| m);
        if crash == Some(CrashMoment::BeforeCommit) {
            self.crash();
            return Err(EngineError::SimulatedCrash);
        }
        // Copied only when a subscriber listens: a log line must follow its durable commit.
        let reported = crate::telemetry::wants_trace_events().then(|| cp.trace_events());
        let (ops, effects) = cp.finish()?;
        self.committer.commit(ops).await?;
        if crash == Some(CrashMoment::AfterCommit) {
            self.crash();
            return Err(EngineError::SimulatedCrash);
        }
        if let Some(reported) = reported {
            reported.report();
        }
        if let (Some(observe), Some(snapshot)) = (&self.hooks.observer, snapshot) {
            observe(&snapshot);
        }
        if let Some(effects) = effects {
            self.apply(effects);
        }
        Ok(())
    }

    /// Stops everything as a dying process would: no further commit, timer or step; the store
    /// stays open until [`Engine::shutdown`] closes it (committing nothing more).
    fn crash(&self) {
        if let Some(on_crash) = &self.hooks.on_crash {
            on_crash();
        }
        self.crashed.store(true, Ordering::SeqCst);
        self.stop_background();
        // Whoever waits for a result would otherwise wait for a run nothing will move.
        for waiter in lock(&self.waiters).values() {
            waiter.notify_waiters();
        }
    }

    /// Stops the timer task and every running step; they run again when the store is next
    /// opened.
    fn stop_background(&self) {
        self.timers.stop();
        for (_, step) in lock(&self.steps).drain() {
            step.abort();
        }
    }

    fn apply(&self, fx: Effects) {
        if let Some(deadline) = fx.cancel_timer {
            self.timers.cancel(deadline, fx.run_id.clone());
        }
        match fx.start {
            Some(cmd @ Command::Step { .. }) => {
                self.launch_step(&fx.run_id, &fx.workflow, fx.seq, &cmd);
            }
            Some(Command::Wait { deadline_ms, .. } | Command::Sleep { deadline_ms }) => {
                self.timers.arm(deadline_ms, fx.run_id.clone(), fx.seq);
            }
            None => {}
        }
        if fx.finished
            && let Some(n) = lock(&self.waiters).get(&fx.run_id)
        {
            n.notify_waiters();
        }
    }

    /// Resumes the in-flight runs of `workflow` (of every registered workflow for `None`): runs
    /// due to execute a step get it spawned, waits and sleeps get their timers re-armed from the
    /// stored deadlines. Reads only the `ready` and `timers` indexes, not every run.
    async fn resume(&self, workflow: Option<&str>) -> Result<(), EngineError> {
        let wanted = |w: &str| workflow.is_none_or(|x| x == w) && self.registry().contains(w);
        let (ready, timers) = {
            let reader = self.store.reader()?;
            (reader.ready()?, reader.timers()?)
        };
        for (run_id, w) in ready {
            if wanted(&w) {
                self.resume_step(&run_id).await?;
            }
        }
        for t in timers {
            if wanted(&t.workflow) {
                self.timers.arm(t.deadline_ms, t.run_id, t.seq);
            }
        }
        Ok(())
    }

    async fn resume_step(&self, run_id: &str) -> Result<(), EngineError> {
        let _lock = self.lock_run(run_id).await;
        let reader = self.store.reader()?;
        let Some(rec) = reader.run(run_id)? else {
            return Ok(());
        };
        let Some(cmd @ Command::Step { .. }) = rec.pending.clone() else {
            return Ok(());
        };
        if rec.is_finished() {
            return Ok(());
        }
        // A run of an older version runs its pending step with the newest code's step table;
        // its state is migrated when the step's result is checkpointed.
        let resolution = self.registry().resolve(&rec);
        match resolution {
            versions::Resolution::Ready(_) | versions::Resolution::Migrate(..) => {
                self.launch_step(run_id, &rec.workflow, rec.seq, &cmd);
                Ok(())
            }
            versions::Resolution::Incompatible(reason) => {
                self.note_incompatible(&reader, run_id, rec, reason).await
            }
            versions::Resolution::Unregistered => Ok(()),
        }
    }

    /// Carries out a run's pending command again: spawns its step or re-arms its timer.
    async fn resume_run(&self, run_id: &str) -> Result<(), EngineError> {
        let rec = self.record(run_id)?;
        match rec.pending {
            Some(Command::Step { .. }) => self.resume_step(run_id).await,
            Some(Command::Wait { deadline_ms, .. } | Command::Sleep { deadline_ms })
                if !rec.is_finished() =>
            {
                self.timers.arm(deadline_ms, run_id.to_owned(), rec.seq);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Records once in the trace that a run cannot be driven by the registered code; the run
    /// record itself stays untouched.
    async fn note_incompatible(
        &self,
        reader: &Reader,
        run_id: &str,
        rec: RunRecord,
        reason: String,
    ) -> Result<(), EngineError> {
        let kind = TraceKind::Incompatible { reason };
        if reader.last_trace(run_id)?.is_some_and(|e| e.kind == kind) {
            return Ok(());
        }
        let mut cp = Checkpoint::load(reader, run_id, self.clock.now_ms(), rec)?;
        cp.trace(kind);
        self.commit(cp).await
    }

    /// Refuses new calls and stops timers and steps; `false` if that already happened.
    fn begin_shutdown(&self) -> bool {
        if self.shutdown.send_replace(true) {
            return false;
        }
        self.stop_background();
        true
    }

    /// Closes the database once the committer has stopped.
    fn release_store(&self) {
        if let Some(db) = self.store.take() {
            store::close(db);
        }
    }
}

/// Reports a failure of background work (a step completion or a timer), which has no caller to
/// return it to. The run stays at its last checkpoint and is retried when the store is next
/// opened.
fn report(run_id: &str, what: &str, e: &EngineError) {
    if !matches!(e, EngineError::ShutDown | EngineError::SimulatedCrash) {
        tracing::error!(run_id, error = %e, "{what} of run `{run_id}` was not recorded: {e}");
    }
}
