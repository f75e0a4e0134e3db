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
pub type StepDouble = Arc<dyn Fn(StepContext, Value) -> StepFuture<Value> + Send + Sync>;

/// A checkpoint as it was committed, handed to the observer after the commit is durable.
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
