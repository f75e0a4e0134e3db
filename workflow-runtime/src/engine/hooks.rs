//! The engine's side of test instrumentation: the [`Instrument`] trait it calls at fixed
//! points (step doubles, an observer of committed checkpoints, a simulated crash around a
//! commit, bounded waits), and idleness tracking. The implementations live in
//! [`crate::testing`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Command;
use crate::step::{StepContext, StepFuture};
use crate::types::RunStatus;

/// A step implementation with its types erased: a test double.
///
/// # Examples
///
/// ```
/// use workflow_runtime::testing::{Hooks, Instrument, StepDouble};
/// let mut hooks = Hooks::default();
/// // Answers every call with its input: the JSON in, the JSON out.
/// hooks.replace_step("echo", |_ctx, input| Box::pin(async move { Ok(input) }));
/// let double: Option<StepDouble> = hooks.step_double("echo");
/// assert!(double.is_some());
/// ```
pub type StepDouble = Arc<dyn Fn(StepContext, Value) -> StepFuture<Value> + Send + Sync>;

/// A checkpoint as it was committed, handed to the observer after the commit is durable.
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
/// use std::sync::{Arc, Mutex};
/// use workflow_runtime::testing::Hooks;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let mut hooks = Hooks::default();
/// let log = seen.clone();
/// hooks.observe(move |cp| log.lock().unwrap().push((cp.seq, cp.status.kind())));
/// let engine = Engine::builder().register(approval).instrument(hooks).open_in_memory().await?;
/// engine.start(approval, "r-1", 10).await?;
/// engine.signal("r-1", "approve", true).await?;
/// assert_eq!(seen.lock().unwrap().last(), Some(&(2, "completed")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedCheckpoint {
    /// The run.
    pub run_id: String,
    /// The run's workflow.
    pub workflow: String,
    /// The checkpoint's sequence number.
    pub seq: u64,
    /// The engine clock when it was committed, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The state enum value, as stored.
    pub state: Value,
    /// What the run waits for; `None` once it finished.
    pub pending: Option<Command>,
    /// The run's status after the checkpoint.
    pub status: RunStatus,
    /// The output, once the run finished.
    pub output: Option<Value>,
}

/// When a simulated crash happens relative to its commit.
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
/// use workflow_runtime::testing::{CrashMoment, Hooks};
/// let mut hooks = Hooks::default();
/// // The first commit (the run's start) becomes durable, then the "process" dies.
/// hooks.crash_at(1, CrashMoment::AfterCommit);
/// let engine = Engine::builder().register(approval).instrument(hooks.clone()).open_in_memory().await?;
/// let _ = engine.start(approval, "r-1", 10).await;
/// assert!(hooks.crashed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CrashMoment {
    /// The commit never reaches the store.
    BeforeCommit,
    /// The commit is durable, but nothing after it happens: no acknowledgement, no next step.
    AfterCommit,
}

impl fmt::Display for CrashMoment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CrashMoment::BeforeCommit => "before",
            CrashMoment::AfterCommit => "after",
        })
    }
}

/// What a test can make an engine do at its fixed points: replace steps, watch commits,
/// stop as a dying process would around a commit, and bound its waits.
///
/// Given to [`EngineBuilder::instrument`](crate::EngineBuilder::instrument); an engine without
/// one pays a single branch per commit. [`crate::testing::Hooks`] implements it for
/// [`crate::testing::TestEngine`], [`crate::testing::crash_test`] and crash-torture workers.
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
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use workflow_runtime::testing::{CommittedCheckpoint, Instrument};
///
/// /// Counts the checkpoints that wrote a run's record.
/// #[derive(Default)]
/// struct Count(AtomicU64);
///
/// impl Instrument for Count {
///     fn observes(&self) -> bool {
///         true
///     }
///     fn committed(&self, _: &CommittedCheckpoint) {
///         self.0.fetch_add(1, Ordering::SeqCst);
///     }
/// }
///
/// let engine = Engine::builder().register(approval).instrument(Count::default()).open_in_memory().await?;
/// engine.start(approval, "r-1", 10).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub trait Instrument: Send + Sync + 'static {
    /// A double to run instead of the step named `step`, if any.
    fn step_double(&self, _step: &str) -> Option<StepDouble> {
        None
    }

    /// Whether [`Instrument::committed`] wants the committed checkpoints (each costs a copy of
    /// the run's state).
    fn observes(&self) -> bool {
        false
    }

    /// A checkpoint that wrote a run's record is durable.
    fn committed(&self, _checkpoint: &CommittedCheckpoint) {}

    /// The engine is about to commit a checkpoint: return a moment to simulate a crash at it.
    fn commit_begins(&self) -> Option<CrashMoment> {
        None
    }

    /// The simulated crash chosen by [`Instrument::commit_begins`] happens now, before the
    /// engine stops: a crash-torture worker kills its process here.
    fn crashing(&self, _moment: CrashMoment) {}

    /// How long a wait for a run's result, or for quiet ([`crate::testing::settle`]), may last
    /// before it panics with what it waited for; `None` waits as long as it takes.
    fn wait_bound(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Counts background work in flight (step tasks, fired timers) so a test can wait for quiet.
#[derive(Debug, Default)]
pub(crate) struct Busy(AtomicUsize);

impl Busy {
    pub(crate) fn guard(self: &Arc<Self>) -> BusyGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        BusyGuard(self.clone())
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Marks one piece of background work; dropping it (also by aborting its task) ends it.
#[derive(Debug)]
pub(crate) struct BusyGuard(Arc<Busy>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}
