//! The engine: opens the store, drives runs from checkpoint to checkpoint, and resumes them
//! after a restart.
//!
//! Every change to a run happens under that run's lock, from a freshly read envelope, and is
//! acknowledged only after the committer made it durable. Nothing is cached between
//! transitions: a run parked on a wait costs a timer entry and no task or memory otherwise.

mod admin;
mod attempts;
mod batch;
mod checkpoint;
mod children;
mod driver;
mod handle;
pub(crate) mod hooks;
mod ops;
mod schedule;
mod shared;
#[cfg(test)]
mod tests;
mod versions;
mod with_start;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tokio::sync::{Notify, OwnedMutexGuard, watch};

use self::attempts::RunningStep;
use self::checkpoint::{Checkpoint, Effects};
use self::driver::{Driver, Typed};
use self::hooks::{Busy, CrashMoment, Instrument};
use crate::clock::{Clock, SystemClock};
use crate::error::{EngineError, Refused, StoreError};
use crate::model::{Command, Workflow};
use crate::payload::{PayloadCodec, PayloadStore};
use crate::step::DataMap;
use crate::store::{Fence, FileStore, Store};
use crate::timers::{Pager, Timers};
use crate::trace::{TraceEvent, TraceKind};
use crate::types::RunRecord;

pub use self::admin::{
    COMMIT_LATENCY_BUCKETS, Histogram, MAX_PAGE, Metrics, Retention, RunDetail, RunFilter, RunPage,
    RunSummary,
};
pub use self::handle::RunHandle;
pub use self::schedule::{
    CatchUp, Overlap, SCHEDULE_WORKFLOW, Schedule, ScheduleError, ScheduleInfo, schedule_run_id,
};
pub use self::shared::LeaseSettings;
use self::versions::Registry;
pub use self::versions::{IncompatibleRun, VersionSummary};
pub use self::with_start::SignalWithStartError;
pub use crate::types::{PendingWait, RunStatus, Signal, SignalOutcome};

/// A durable workflow engine over one store (a database file by default; see
/// [`crate::store`]).
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
        self.0.begin_shutdown();
        self.0.release_all();
        if self.0.take_store() {
            self.0.store.close_blocking();
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
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # #[workflow]
/// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
/// #     let meta = json!({ "amount": amount });
/// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let engine = Engine::builder()
///     .register(approval)
///     .max_payload_bytes(64 * 1024)
///     .open_in_memory()
///     .await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub struct EngineBuilder {
    drivers: Vec<Arc<dyn Driver>>,
    clock: Arc<dyn Clock>,
    instrument: Option<Arc<dyn Instrument>>,
    max_payload: usize,
    retention: Option<admin::Retention>,
    data: DataMap,
    codec: Option<Arc<dyn PayloadCodec>>,
    shared: Option<LeaseSettings>,
}

/// The default of [`EngineBuilder::max_payload_bytes`]: 1 MiB.
///
/// # Examples
///
/// ```
/// assert_eq!(workflow_runtime::DEFAULT_MAX_PAYLOAD_BYTES, 1024 * 1024);
/// ```
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
            instrument: None,
            max_payload: DEFAULT_MAX_PAYLOAD_BYTES,
            retention: None,
            data: DataMap::default(),
            codec: None,
            shared: None,
        }
    }
}

impl EngineBuilder {
    /// Registers a workflow, so that its runs can be started and its in-flight runs resume when
    /// the engine opens. A later registration under the same name replaces an earlier one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// assert_eq!(engine.workflows(), ["approval"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn register<W: Workflow>(mut self, _workflow: W) -> Self {
        self.drivers.push(Arc::new(Typed::<W>::new()));
        self
    }

    /// Uses this clock for deadlines and trace times instead of the system clock; tests pass a
    /// [`ManualClock`](crate::ManualClock) to move time by hand.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let clock = ManualClock::new(0);
    /// let engine = Engine::builder().register(approval).clock(clock.clone()).open_in_memory().await?;
    /// let run = engine.start(approval, "r-1", 10).await?;
    /// // A minute later by the manual clock, the wait times out.
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(run.result().await?, Err(WorkflowError::new("timed out waiting for a signal")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::SignalError;
    /// let engine = Engine::builder().register(approval).max_payload_bytes(16).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// let refused = engine.signal("r-1", "approve", "a payload well over sixteen bytes").await;
    /// assert!(matches!(refused, Err(SignalError::TooLarge { limit: 16, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Purges ended runs (completed, failed, cancelled, terminated) once they are older than
    /// the policy's age, with their trace, inbox and dedupe keys, in bounded batches, from a
    /// background task; open runs and runs parked as incompatible are never purged. Without
    /// it, nothing is ever removed except by [`Engine::purge`] and [`Engine::purge_ended`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::Retention;
    /// let week = Duration::from_secs(7 * 24 * 3600);
    /// let engine = Engine::builder()
    ///     .register(approval)
    ///     .retention(Retention::new(week).every(Duration::from_secs(3600)).batch(500))
    ///     .open_in_memory()
    ///     .await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use std::sync::Arc;
    ///
    /// struct Prices(Vec<u64>);
    ///
    /// #[function]
    /// async fn price(ctx: StepContext, item: usize) -> Result<u64, StepError> {
    ///     Ok(ctx.data::<Prices>()?.0[item])
    /// }
    ///
    /// #[workflow]
    /// async fn quote(ctx: &mut WorkflowContext, item: usize) -> Result<u64, WorkflowError> {
    ///     Ok(ctx.step(price, item).await?)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let prices = Arc::new(Prices(vec![250, 400]));
    /// let engine = Engine::builder()
    ///     .register(quote)
    ///     .data_shared(prices.clone())
    ///     .open_in_memory()
    ///     .await?;
    /// assert_eq!(engine.start(quote, "q-1", 1).await?.result().await?, Ok(400));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn data_shared<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.data.insert(value);
        self
    }

    pub(crate) fn data_map(mut self, data: DataMap) -> Self {
        self.data = data;
        self
    }

    /// Seals every stored payload with `codec` (encryption at rest): states, outputs, step
    /// inputs, wait metadata, buffered signals and every payload and message of the trace, on
    /// their way to the store, and opens them on their way back (see [`crate::payload`]). With
    /// the crate feature `encryption`, `payload::ChaChaCodec` is an
    /// authenticated cipher with key ids and rotation.
    ///
    /// A store written with a codec must be opened with one that holds its keys: a payload
    /// that does not open fails the call that reads it with
    /// [`StoreError::Sealed`](crate::StoreError::Sealed), and the run stays as stored.
    #[must_use]
    pub fn payload_codec(mut self, codec: impl PayloadCodec) -> Self {
        self.codec = Some(Arc::new(codec));
        self
    }

    pub(crate) fn payload_codec_shared(mut self, codec: Arc<dyn PayloadCodec>) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Instruments the engine for tests: step doubles, an observer of commits, a simulated
    /// crash, bounded waits (see [`Instrument`] and [`crate::testing::Hooks`]).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::testing::Hooks;
    ///
    /// let mut hooks = Hooks::default();
    /// hooks.bound_waits(Duration::from_secs(60));
    /// let builder = Engine::builder().instrument(hooks);
    /// ```
    #[must_use]
    pub fn instrument(mut self, instrument: impl Instrument) -> Self {
        self.instrument = Some(Arc::new(instrument));
        self
    }

    /// Opens the store file at `path`, creating it if missing, and resumes every in-flight run
    /// of the registered workflows.
    ///
    /// # Errors
    /// [`EngineError::Open`]: [`OpenError::AlreadyOpen`](crate::OpenError::AlreadyOpen) if
    /// another engine holds the file, [`OpenError::NotAStore`](crate::OpenError::NotAStore) or
    /// [`OpenError::Corrupt`](crate::OpenError::Corrupt) for a file that is not a healthy store,
    /// [`OpenError::Storage`](crate::OpenError::Storage) for I/O failures.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("shop.db");
    /// let engine = Engine::builder().register(approval).open(&path).await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// engine.shutdown().await;
    ///
    /// // Reopened, the run is still waiting.
    /// let engine = Engine::builder().register(approval).open(&path).await?;
    /// assert_eq!(engine.pending()?[0].run_id, "r-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn open(self, path: impl AsRef<Path>) -> Result<Engine, EngineError> {
        let path = path.as_ref().to_owned();
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let opened = if multi_thread {
            // On the caller's thread, which a multi-threaded runtime allows to block: after a
            // crash redb repairs the file by reading all of it into its cache, and the
            // allocator of a fresh thread (a blocking pool's) grows its heap a page at a time,
            // one system call per page: that made an open after kill -9 take a third longer
            // than the same open on the thread of `block_on` (`BENCHMARKS.md`, issue 17).
            tokio::task::block_in_place(|| FileStore::open(&path))?
        } else {
            match tokio::task::spawn_blocking(move || FileStore::open(&path)).await {
                Ok(opened) => opened?,
                // The open task panicked (or was cancelled by a runtime shutting down).
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        };
        self.open_store(opened).await
    }

    /// Opens an engine over a fresh in-memory store, for tests.
    ///
    /// # Errors
    /// [`EngineError::Open`] if the store cannot be initialised.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// assert!(engine.pending()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn open_in_memory(self) -> Result<Engine, EngineError> {
        self.open_store(FileStore::open_memory()?).await
    }

    /// Opens an engine over any [`Store`] (see [`crate::store`] for writing a backend) and
    /// resumes every in-flight run of the registered workflows.
    ///
    /// # Errors
    /// A storage error while reading the runs to resume.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::store::FileStore;
    /// let store = FileStore::open_memory()?;
    /// let engine = Engine::builder().register(approval).open_store(store).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn open_store(self, store: impl Store) -> Result<Engine, EngineError> {
        self.start(Arc::new(store)).await
    }

    async fn start(self, store: Arc<dyn Store>) -> Result<Engine, EngineError> {
        // Installed without a codec too, so that a sealed store is refused rather than misread.
        let store: Arc<dyn Store> = Arc::new(PayloadStore::new(store, self.codec));
        let mut registry = Registry::default();
        for d in self.drivers {
            registry.add(d);
        }
        let clock = self.clock;
        let opened_ms = clock.now_ms();
        let busy = Arc::new(Busy::default());
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            let weak = me.clone();
            let timer_busy = busy.clone();
            // The only user of its store pages its timers in as they come due; a worker of a
            // shared store holds the timers it claims.
            let pager = self.shared.is_none().then(|| {
                let (store, registered) = (store.clone(), me.clone());
                Pager::new(
                    Box::new(move |after, due_by, limit| store.timers_page(after, due_by, limit)),
                    // A schedule's timer is driven whatever is registered (as in `resume`):
                    // one whose workflow is missing fires again after `Engine::register`,
                    // which reads the timers from the start.
                    Box::new(move |workflow| {
                        workflow == SCHEDULE_WORKFLOW
                            || registered
                                .upgrade()
                                .is_some_and(|inner| inner.registry().contains(workflow))
                    }),
                )
            });
            let timers = Timers::spawn(clock.clone(), pager, move |run_id, seq| {
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
                timers,
                clock,
                registry: RwLock::new(registry),
                locks: Mutex::default(),
                steps: Mutex::default(),
                batches: batch::Batches::default(),
                waiters: Mutex::default(),
                ended: Mutex::default(),
                hot: Mutex::default(),
                shutdown: watch::Sender::new(false),
                store_open: AtomicBool::new(true),
                instrument: self.instrument,
                max_payload: self.max_payload,
                data: self.data,
                busy,
                counters: admin::Counters::default(),
                recovery: Mutex::default(),
                shared: self.shared.map(shared::Shared::new),
                opened_ms,
            }
        });
        let engine = Engine {
            _open: Arc::new(CloseOnDrop(inner.clone())),
            inner,
        };
        engine.inner.resume(None).await?;
        engine.inner.start_shared();
        if let Some(retention) = self.retention {
            tokio::spawn(Inner::retain(Arc::downgrade(&engine.inner), retention));
        }
        Ok(engine)
    }
}

impl Engine {
    /// A builder: register workflows, pick a clock, then open.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Opens the store at `path` with no workflows registered; see [`Engine::register`].
    ///
    /// # Errors
    /// As [`EngineBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let engine = Engine::open(dir.path().join("ops.db")).await?;
    /// assert!(engine.workflows().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Engine, EngineError> {
        Self::builder().open(path).await
    }

    /// Registers a workflow on an open engine and resumes its in-flight runs.
    ///
    /// # Errors
    /// [`EngineError::ShutDown`], or a storage error while reading the runs to resume.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let engine = Engine::open(dir.path().join("shop.db")).await?;
    /// engine.register(approval).await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn register<W: Workflow>(&self, _workflow: W) -> Result<(), EngineError> {
        self.inner.check_open()?;
        let driver: Arc<dyn Driver> = Arc::new(Typed::<W>::new());
        self.inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(driver);
        Ok(self.inner.resume(Some(W::NAME)).await?)
    }

    /// Re-attaches to an existing run.
    ///
    /// # Errors
    /// [`EngineError::UnknownRun`] if there is no such run, [`EngineError::Conflict`] if it
    /// belongs to another workflow.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// // Later, perhaps in another request handler: attach to the run by its id.
    /// let run = engine.handle(approval, "r-1")?;
    /// engine.signal("r-1", "approve", true).await?;
    /// assert_eq!(run.result().await?, Ok(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// assert!(matches!(engine.status("r-1")?, RunStatus::Waiting { .. }));
    /// assert!(matches!(engine.status("r-2"), Err(EngineError::UnknownRun { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn status(&self, run_id: &str) -> Result<RunStatus, EngineError> {
        let rec = self.inner.record(run_id)?;
        Ok(self.inner.status_of(&rec))
    }

    /// Every run waiting for a signal, with the wait's metadata and deadline, in run id order.
    ///
    /// # Errors
    /// A storage error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 120).await?;
    /// let waits = engine.pending()?;
    /// assert_eq!(waits.len(), 1);
    /// assert_eq!((waits[0].run_id.as_str(), waits[0].signal.as_str()), ("r-1", "approve"));
    /// assert_eq!(waits[0].metadata, json!({ "amount": 120 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn pending(&self) -> Result<Vec<PendingWait>, EngineError> {
        let mut waits = self.inner.store.pending_waits()?;
        for wait in &mut waits {
            crate::secret::redact(&mut wait.metadata);
        }
        Ok(waits)
    }

    /// The run's trace, oldest event first.
    ///
    /// # Errors
    /// [`EngineError::UnknownRun`], or a storage error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// let run = engine.start(approval, "r-1", 10).await?;
    /// engine.signal("r-1", "approve", true).await?;
    /// run.result().await?;
    /// let kinds: Vec<&str> = engine.trace("r-1")?.iter().map(|e| e.kind.name()).collect();
    /// assert_eq!(kinds.first(), Some(&"started"));
    /// assert_eq!(kinds.last(), Some(&"completed"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, EngineError> {
        let mut trace = self.inner.store.trace(run_id)?;
        // Events are redacted as they are recorded; this also covers a store written before.
        for event in &mut trace {
            event.kind.redact();
        }
        // Every run's trace starts with its creation, so only an empty one needs a second look.
        if trace.is_empty() && self.inner.store.run(run_id)?.is_none() {
            return Err(EngineError::UnknownRun {
                run_id: run_id.to_owned(),
            });
        }
        Ok(trace)
    }

    /// Stops timers and running steps, commits what is queued, and closes the store file so
    /// that it can be opened again (in this process or another).
    ///
    /// Steps still running are abandoned; they run again when the store is next opened. Every
    /// later call on this engine or its clones fails with [`EngineError::ShutDown`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.shutdown().await;
    /// assert!(matches!(engine.status("r-1"), Err(EngineError::ShutDown)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        self.inner.begin_shutdown();
        self.inner.release_all();
        if self.inner.take_store() {
            // Closing only fails when the store is already closed.
            let _ = self.inner.store.close().await;
        }
    }

    /// How many durable write transactions the store has made since it was opened; group
    /// commit puts the checkpoints of several runs into one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// let before = engine.commit_count();
    /// engine.start(approval, "r-1", 10).await?;
    /// assert!(engine.commit_count() > before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn commit_count(&self) -> u64 {
        self.inner.store.commit_count()
    }

    /// Returns once no step runs, no timer due at the clock's current time is left unfired and
    /// no transition is in flight; `workflow_runtime::testing::settle` exposes it.
    ///
    /// # Panics
    /// When the instrument bounds waits ([`Instrument::wait_bound`]) and the engine is still
    /// busy once the bound has passed; the message says what it was busy with.
    pub(crate) async fn settle_bounded(&self) {
        let Some(bound) = self.inner.wait_bound() else {
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
                 steps running for runs {stepping:?}, stopped: {}",
                inner.busy.count(),
                *inner.shutdown.borrow()
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
}

pub(crate) struct Inner {
    me: Weak<Inner>,
    store: Arc<dyn Store>,
    timers: Timers,
    clock: Arc<dyn Clock>,
    registry: RwLock<Registry>,
    /// Per-run locks, present only while someone holds or awaits one.
    locks: Mutex<HashMap<String, RunMutex>>,
    /// The attempt of a step running for each run.
    steps: Mutex<HashMap<String, RunningStep>>,
    /// The record of each run whose last commit by this engine scheduled a step, as committed,
    /// with the store's epoch then and the fence it was written under: the step's result
    /// starts from it instead of reading the store (see [`Inner::hot_record`]).
    hot: Mutex<HashMap<String, (u64, Fence, RunRecord)>>,
    /// The batches of steps running, and their results waiting for a commit.
    batches: batch::Batches,
    /// Runs someone awaits the result of.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// The record of each awaited run that ended by a commit of this engine, as committed: the
    /// waiters take their answer from it instead of reading the run again. Kept only while a
    /// waiter is registered (lock order: `waiters`, then `ended`), dropped by the run's next
    /// commit like a hot record.
    ended: Mutex<HashMap<String, RunRecord>>,
    /// Set once the engine refuses calls: shut down, or stopped by a simulated crash.
    shutdown: watch::Sender<bool>,
    /// Cleared by whoever closes the store (a simulated crash leaves it open until then).
    store_open: AtomicBool,
    instrument: Option<Arc<dyn Instrument>>,
    max_payload: usize,
    /// The dependencies every step context carries.
    data: DataMap,
    /// Background work in flight, for [`Engine::settle_bounded`].
    busy: Arc<Busy>,
    /// Counters for [`Engine::metrics`].
    counters: admin::Counters,
    /// Recovery from device failures of the store.
    recovery: Mutex<Recovery>,
    /// Leases and claims when the store is shared with other workers; `None` for the only
    /// writer of its store.
    shared: Option<Arc<shared::Shared>>,
    /// When this engine opened its store, milliseconds since the Unix epoch: a schedule's tick
    /// before it came due while no engine ran (`CatchUp::Skip` drops it).
    opened_ms: u64,
}

/// Whether a recovery task runs, and how many device failures were seen.
#[derive(Default)]
struct Recovery {
    running: bool,
    failures: u64,
}

/// A commit handed to the store, and what to do once it is acknowledged. Kept small (the
/// rarely present parts boxed): it lives in the future of every task that commits.
struct Committing {
    ack: crate::store::Acknowledgement,
    crash: Option<CrashMoment>,
    began: std::time::Instant,
    reported: Option<Box<checkpoint::Reported>>,
    snapshot: Option<Box<hooks::CommittedCheckpoint>>,
    effects: Option<Box<checkpoint::Effects>>,
    /// The record as committed, when it schedules a step, with the store's epoch before the
    /// commit and the commit's fence: kept for the step's result ([`Inner::hot_record`]).
    hot: Option<Box<(u64, Fence, RunRecord)>>,
    /// The record as committed, when it ends a run someone awaits ([`Inner::ended_record`]).
    ended: Option<Box<RunRecord>>,
    /// Shared mode: the run, for what follows a failed commit or an announcement.
    shared_run: Option<String>,
    /// Shared mode: announce the run to the other workers once the commit is durable.
    announce: bool,
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
    /// The store's epoch when the current holder took the lock, before it read anything: its
    /// checkpoint carries it, so that a store reopened since refuses it.
    epoch: u64,
}

/// Holds a run's lock; forgets the lock when nobody else wants it.
struct RunLock<'a> {
    _interest: Interest<'a>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for RunLock<'_> {
    fn drop(&mut self) {
        // Still under the lock: a lease given back here cannot race an operation on the run.
        self._interest.inner.settle(&self._interest.run_id);
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
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), Refused> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 512 {
        "it is longer than 512 bytes"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(Refused::InvalidName {
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
    ) -> Result<(), Refused> {
        let bytes = crate::codec::encoded_len(value);
        if bytes > self.max_payload {
            return Err(Refused::TooLarge {
                what: what(),
                bytes,
                limit: self.max_payload,
            });
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if *self.shutdown.borrow() {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn wait_bound(&self) -> Option<std::time::Duration> {
        self.instrument.as_ref().and_then(|i| i.wait_bound())
    }

    /// Whether the caller is the one to close the store.
    fn take_store(&self) -> bool {
        self.store_open.swap(false, Ordering::SeqCst)
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
        let epoch = self.store.epoch();
        if let Some(entry) = lock(&self.locks).get_mut(run_id) {
            entry.epoch = epoch;
        }
        self.acquire(run_id);
        RunLock {
            _interest: interest,
            guard: Some(guard),
        }
    }

    fn record(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        self.store
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
    ///
    /// Not an `async fn`: everything before the store's acknowledgement runs here, at the call,
    /// so that the returned future holds only what is left for after it. A future holding the
    /// checkpoint itself (its record, its writes, the snapshot for an observer) across the
    /// await grew to kilobytes, and every task that commits (a step attempt's, a signal's)
    /// carried it: tokio copies a task's future several times when it spawns and completes
    /// it, which cost more CPU per transition than the engine's own work (BENCHMARKS.md).
    fn commit(
        &self,
        mut cp: Checkpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        // The children a checkpoint asks for are created in its own commit.
        let (begun, again) = match cp.spawn.is_empty() {
            true => (self.begin_commit(cp), None),
            false => {
                // Shared mode: another process may create one of the children's ids at the
                // same instant (`Engine::start` with that id), and the store then refuses the
                // whole commit; planned again, the child is adopted or a conflict.
                let copy = self.shared.as_ref().map(|_| cp.clone());
                match self.plan_children(&mut cp) {
                    Ok(()) => {
                        let again = copy.map(|copy| Box::new((copy, cp.creates_others())));
                        (self.begin_commit(cp), again)
                    }
                    Err(e) => (Err(e), None),
                }
            }
        };
        async move {
            let Committing {
                ack,
                crash,
                began,
                reported,
                snapshot,
                effects,
                hot,
                ended,
                shared_run,
                announce,
            } = begun?;
            if let Err(e) = ack.await {
                if let (StoreError::NotOwner { .. }, Some(again)) = (&e, again) {
                    let (copy, created) = *again;
                    if created
                        .iter()
                        .any(|id| matches!(self.store.run(id), Ok(Some(_))))
                    {
                        let retry: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> =
                            Box::pin(self.commit(copy));
                        return retry.await;
                    }
                }
                if e.is_device_failure() {
                    self.store_failed();
                }
                // The run's id without a copy per commit: a write that touched the run carries
                // it in its effects (shared mode keeps it anyway).
                let run_id = shared_run
                    .as_deref()
                    .or(effects.as_ref().map(|fx| fx.run_id.as_str()));
                if let Some(run_id) = run_id {
                    self.commit_failed(run_id, &e);
                }
                return Err(e);
            }
            if announce && let Some(run_id) = &shared_run {
                self.announce(run_id);
            }
            let took = began.elapsed();
            if crash == Some(CrashMoment::AfterCommit) {
                self.crash(CrashMoment::AfterCommit);
                return Err(StoreError::Closed);
            }
            if let Some(reported) = reported {
                reported.report();
            }
            if let (Some(i), Some(snapshot)) = (&self.instrument, snapshot) {
                i.committed(&snapshot);
            }
            self.counters.committed(effects.is_some(), took);
            if let (Some(hot), Some(effects)) = (hot, &effects) {
                lock(&self.hot).insert(effects.run_id.clone(), *hot);
            }
            if let (Some(rec), Some(effects)) = (ended, &effects) {
                // Only while a waiter is registered: its leaving removes the record.
                let waiters = lock(&self.waiters);
                if waiters.contains_key(&effects.run_id) {
                    lock(&self.ended).insert(effects.run_id.clone(), *rec);
                }
            }
            if let Some(effects) = effects {
                self.apply(*effects);
            }
            Ok(())
        }
    }

    /// The part of [`Inner::commit`] before the store acknowledges: hooks, the copy of the
    /// trace for a subscriber, and handing the write to the store.
    fn begin_commit(&self, cp: Checkpoint) -> Result<Committing, StoreError> {
        if *self.shutdown.borrow() {
            return Err(StoreError::Closed);
        }
        let (crash, snapshot) = match &self.instrument {
            None => (None, None),
            Some(i) => (
                i.commit_begins(),
                if i.observes() {
                    cp.snapshot().map(Box::new)
                } else {
                    None
                },
            ),
        };
        if crash == Some(CrashMoment::BeforeCommit) {
            self.crash(CrashMoment::BeforeCommit);
            return Err(StoreError::Closed);
        }
        // Copied only when a subscriber listens: a log line must follow its durable commit.
        // The store numbers trace events as it commits them; under the run's lock nobody else
        // appends to this run's trace, so the numbers follow its last event.
        let reported = match crate::telemetry::wants_trace_events() {
            true => {
                let next = self.store.last_trace(&cp.run_id)?.map_or(0, |e| e.seq + 1);
                Some(Box::new(cp.trace_events(next)))
            }
            false => None,
        };
        let creates = cp.creates();
        let (mut write, effects) = cp.finish();
        // Whatever this commit writes, a record kept from before it is stale from now on.
        self.forget_hot(&write.run_id);
        let ended = match (&effects, &write.run) {
            (Some(fx), Some(run))
                if fx.finished
                    && self.shared.is_none()
                    && lock(&self.waiters).contains_key(&write.run_id) =>
            {
                Some(Box::new(run.record.clone()))
            }
            _ => None,
        };
        let announce;
        (write.fence, announce) = self.fence(&write, creates)?;
        let hot = match (&effects, &write.run) {
            (Some(fx), Some(run)) if matches!(fx.start, Some(Command::Step { .. })) => Some(
                Box::new((self.store.epoch(), write.fence, run.record.clone())),
            ),
            _ => None,
        };
        // Every commit happens under its run's lock, whose holder noted the epoch.
        write.epoch = lock(&self.locks).get(&write.run_id).map(|e| e.epoch);
        // Kept only when the store is shared: what follows the commit needs the id then.
        let shared_run = self.shared.as_ref().map(|_| write.run_id.clone());
        Ok(Committing {
            // Wall time, not the engine's clock: a test clock stands still while the disk works.
            began: std::time::Instant::now(),
            ack: self.store.commit(write),
            crash,
            reported,
            snapshot,
            effects: effects.map(Box::new),
            hot,
            ended,
            shared_run,
            announce,
        })
    }

    /// The run's record as this engine last committed it, if that commit scheduled a step and
    /// nothing was committed for the run since; taken, so that the step's result does not read
    /// the store for what this engine wrote itself (a read transaction and a decode per step).
    ///
    /// Every commit of a run by this engine passes [`Inner::begin_commit`] or
    /// [`Inner::forget_hot`] first, and a record committed before the store was reopened after
    /// a device failure is not trusted. In shared mode the record is trusted only under the
    /// lease it was written under, still held: nobody else writes a run's record without its
    /// lease, and if another worker took the run over meanwhile, the commit that follows is
    /// refused by that same fence, as it would be after a read.
    fn hot_record(&self, run_id: &str) -> Option<RunRecord> {
        let (epoch, fence, rec) = lock(&self.hot).remove(run_id)?;
        let trusted = match fence {
            Fence::Exclusive => self.shared.is_none(),
            _ => fence == self.held_fence(run_id),
        };
        (trusted && epoch == self.store.epoch()).then_some(rec)
    }

    /// Drops the kept record of a run about to be written.
    fn forget_hot(&self, run_id: &str) {
        lock(&self.hot).remove(run_id);
        lock(&self.ended).remove(run_id);
    }

    /// The record of `run_id` as the commit that ended it wrote it, if someone awaited the
    /// run then and nothing was committed for it since.
    fn ended_record(&self, run_id: &str) -> Option<RunRecord> {
        lock(&self.ended).get(run_id).cloned()
    }

    /// Stops everything as a dying process would: no further commit, timer or step, and every
    /// later call fails with [`EngineError::ShutDown`]; the store stays open until
    /// [`Engine::shutdown`] closes it (committing nothing more).
    fn crash(&self, moment: CrashMoment) {
        if let Some(i) = &self.instrument {
            i.crashing(moment);
        }
        self.begin_shutdown();
    }

    /// Stops the timer task and every running step; they run again when the store is next
    /// opened.
    fn stop_background(&self) {
        self.timers.stop();
        for (_, step) in lock(&self.steps).drain() {
            step.abort();
        }
        self.batches.abort_all();
    }

    fn apply(&self, mut fx: Effects) {
        for child in std::mem::take(&mut fx.children) {
            self.apply(child);
        }
        if let Some(parent) = &fx.parent {
            self.wake_parent(parent);
        }
        if let Some(deadline) = fx.cancel_timer {
            self.timers.cancel(deadline, fx.run_id.clone());
        }
        match fx.start {
            // Shared with other workers, only a run whose lease this engine holds is driven
            // here, and a long wait is left to whichever worker claims its timer.
            Some(cmd @ Command::Step { .. }) if self.may_drive(&fx.run_id, &fx.workflow) => {
                self.launch_step(&fx.run_id, &fx.workflow, fx.seq, &cmd);
            }
            Some(cmd @ Command::Batch { .. }) if self.may_drive(&fx.run_id, &fx.workflow) => {
                self.launch_batch(&fx.run_id, &fx.workflow, fx.seq, &cmd);
            }
            // A child adopted at its id may have ended before the parent asked for it.
            Some(Command::Children { .. }) => self.wake_parent(&fx.run_id),
            Some(Command::Wait { deadline_ms, .. } | Command::Sleep { deadline_ms })
                if !self.park(&fx.run_id, deadline_ms, fx.seq) =>
            {
                self.timers.arm(deadline_ms, fx.run_id.clone(), fx.seq);
            }
            _ => {}
        }
        if fx.finished
            && let Some(n) = lock(&self.waiters).get(&fx.run_id)
        {
            n.notify_waiters();
        }
    }

    /// Resumes the in-flight runs of `workflow` (of every registered workflow for `None`): runs
    /// due to execute a step get it spawned, waits and sleeps get their timers paged in from the
    /// stored deadlines as they come due. Reads only the `ready` index, not every run.
    async fn resume(&self, workflow: Option<&str>) -> Result<(), StoreError> {
        if self.resume_shared() {
            return Ok(());
        }
        // Schedules are re-armed with every registration too: one that came due while its
        // workflow was not registered yet fires once it is.
        let wanted = |w: &str| {
            w == SCHEDULE_WORKFLOW
                || (workflow.is_none_or(|x| x == w) && self.registry().contains(w))
        };
        // This engine is its store's only user (its writes are `Fence::Exclusive`): it reads the
        // ready runs without claiming them, since a lease per parked run would only cost memory
        // in proportion to the store. Its timers stay in the store: the timer task pages in
        // those due soon, from the start again now that the workflows or the store changed.
        self.timers.reload();
        for run in self.store.ready()? {
            if wanted(&run.workflow) {
                self.resume_step(&run.run_id).await?;
            }
        }
        Ok(())
    }

    async fn resume_step(&self, run_id: &str) -> Result<(), StoreError> {
        let _lock = self.lock_run(run_id).await;
        let Some(rec) = self.store.run(run_id)? else {
            return Ok(());
        };
        if matches!(rec.pending, Some(Command::Children { .. })) && !rec.is_finished() {
            // Under this run's lock: the outcomes are read by a task that takes it after.
            self.wake_parent(run_id);
            return Ok(());
        }
        let Some(cmd @ (Command::Step { .. } | Command::Batch { .. })) = rec.pending.clone() else {
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
                self.launch_batch(run_id, &rec.workflow, rec.seq, &cmd);
                Ok(())
            }
            versions::Resolution::Incompatible(reason) => {
                self.note_incompatible(run_id, rec, reason).await
            }
            versions::Resolution::Unregistered => Ok(()),
        }
    }

    /// Carries out a run's pending command again: spawns its step or re-arms its timer.
    async fn resume_run(&self, run_id: &str) -> Result<(), EngineError> {
        let rec = self.record(run_id)?;
        match rec.pending {
            Some(Command::Step { .. } | Command::Batch { .. } | Command::Children { .. }) => {
                Ok(self.resume_step(run_id).await?)
            }
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
        run_id: &str,
        rec: RunRecord,
        reason: String,
    ) -> Result<(), StoreError> {
        let kind = TraceKind::Incompatible { reason };
        if self
            .store
            .last_trace(run_id)?
            .is_some_and(|e| e.kind == kind)
        {
            return Ok(());
        }
        let mut cp = Checkpoint::load(run_id, self.clock.now_ms(), rec);
        cp.trace(kind);
        self.commit(cp).await
    }

    /// Makes sure an answer given from reads alone (a start of a run that exists, a signal to a
    /// run that has ended) rests on acknowledged state.
    ///
    /// After a device failure, reads may show a checkpoint whose commit was refused because
    /// its sync failed: the page cache holds it, the disk may not. It becomes durable when the
    /// store recovers (it rewrites what the cache shows) and is lost if the process dies first.
    /// So once the store has had a device failure, such an answer waits for an empty commit
    /// under the run's lock: refused while the device fails, and refused if the store was
    /// reopened since the reads (its epoch moved), it succeeds only when what was read is
    /// durable. Before any device failure reads show only acknowledged state, and nothing is
    /// written.
    ///
    /// `locked` says the caller holds the run's lock, whose epoch the commit then carries.
    /// Without it the commit is a plain barrier, which is enough for an answer that needs no
    /// later write: it succeeds only once the store has recovered, by rewriting what the
    /// page cache shows, or never had to.
    async fn confirm(&self, run_id: &str, locked: bool) -> Result<(), StoreError> {
        if self.store.epoch() == 0 {
            return Ok(());
        }
        let mut write = crate::store::CheckpointWrite::new(run_id);
        if locked {
            write.epoch = lock(&self.locks).get(run_id).map(|e| e.epoch);
        }
        self.forget_hot(run_id);
        let result = self.store.commit(write).await;
        if result.as_ref().is_err_and(StoreError::is_device_failure) {
            self.store_failed();
        }
        result
    }

    /// Notes that a commit failed because the store's device did, and starts the recovery
    /// task unless it runs.
    ///
    /// The run whose commit failed stays at its last acknowledged checkpoint, but nothing in
    /// memory will drive it again: a step's result, a timer's firing are gone. And when the
    /// device failed while syncing, the refused commit may be on the disk after all, with no
    /// step launched or timer armed for it. So once the store takes writes again, the engine
    /// resumes every run from what the store holds, as if it had just been opened.
    fn store_failed(&self) {
        let mut recovery = lock(&self.recovery);
        recovery.failures += 1;
        if recovery.running {
            return;
        }
        recovery.running = true;
        tokio::spawn(Inner::recover(self.me.clone()));
    }

    /// Probes the store with a backoff until it takes writes again, then resumes every run
    /// from the store, until no device failure happened during a resume.
    async fn recover(me: Weak<Inner>) {
        const FIRST: std::time::Duration = std::time::Duration::from_millis(10);
        const MAX: std::time::Duration = std::time::Duration::from_secs(1);
        let mut backoff = FIRST;
        loop {
            tokio::time::sleep(backoff).await;
            let Some(inner) = me.upgrade() else { return };
            if *inner.shutdown.borrow() {
                lock(&inner.recovery).running = false;
                return;
            }
            let seen = lock(&inner.recovery).failures;
            let resumed = match inner.store.probe_writes().await {
                Ok(()) => inner.resume(None).await,
                Err(e) => Err(e),
            };
            match resumed {
                Ok(()) => {
                    // A run may have ended by a commit whose answer was an error (its sync
                    // failed, yet it reached the disk): whoever waits for a result looks again.
                    for waiter in lock(&inner.waiters).values() {
                        waiter.notify_waiters();
                    }
                    let mut recovery = lock(&inner.recovery);
                    if recovery.failures == seen {
                        recovery.running = false;
                        tracing::info!("the store recovered; every run resumed from it");
                        return;
                    }
                    // Another commit failed meanwhile: its run may have been left behind.
                    backoff = FIRST;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the store does not take writes yet");
                    backoff = (backoff * 2).min(MAX);
                }
            }
        }
    }

    /// Refuses new calls and stops timers and steps, once; whoever waits for a result is
    /// woken by the same signal.
    fn begin_shutdown(&self) {
        if !self.shutdown.send_replace(true) {
            self.stop_background();
        }
    }
}

/// Reports a failure of background work (a step completion or a timer), which has no caller to
/// return it to. The run stays at its last checkpoint; after a device failure the engine
/// resumes it once the store takes writes again (`Inner::store_failed`), otherwise it is
/// retried when the store is next opened.
fn report(run_id: &str, what: &str, e: &StoreError) {
    if !matches!(e, StoreError::Closed) {
        tracing::error!(run_id, error = %e, "{what} of run `{run_id}` was not recorded: {e}");
    }
}
