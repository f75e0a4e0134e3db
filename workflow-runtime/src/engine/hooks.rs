//! Instrumentation used by [`crate::testing`]: step doubles, an observer of committed
//! checkpoints, a simulated crash around a chosen commit, and idleness tracking.
//!
//! Everything here is off unless a test engine sets it, and costs one branch per commit then.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::types::RunStatus;
use crate::model::Command;
use crate::step::{StepContext, StepFuture};

/// A step implementation with its types erased.
pub(crate) type StepFn = Arc<dyn Fn(StepContext, Value) -> StepFuture<Value> + Send + Sync>;

/// What [`Hooks::observe`] installs.
pub(crate) type Observer = Arc<dyn Fn(&CommittedCheckpoint) + Send + Sync>;

/// What [`Hooks::on_crash`] installs.
pub(crate) type OnCrash = Arc<dyn Fn() + Send + Sync>;

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

/// Test instrumentation for one engine.
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct Hooks {
    pub(crate) steps: HashMap<String, StepFn>,
    pub(crate) observer: Option<Observer>,
    /// Crash at the n-th commit (counting from 1).
    pub(crate) crash: Option<(u64, CrashMoment)>,
    /// Runs at the instant of that crash, before the engine stops.
    pub(crate) on_crash: Option<OnCrash>,
    /// How long `RunHandle::result` and `Engine::__settle` may wait before they fail the
    /// test; `None` waits as long as it takes.
    pub(crate) wait_bound: Option<std::time::Duration>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("steps", &self.steps.keys().collect::<Vec<_>>())
            .field("observer", &self.observer.is_some())
            .field("crash", &self.crash)
            .field("on_crash", &self.on_crash.is_some())
            .field("wait_bound", &self.wait_bound)
            .finish()
    }
}

impl Hooks {
    /// Runs `f` instead of the step named `name`.
    pub fn replace_step(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(StepContext, Value) -> StepFuture<Value> + Send + Sync + 'static,
    ) {
        self.steps.insert(name.into(), Arc::new(f));
    }

    /// Calls `f` after every durable commit that wrote a run's checkpoint.
    pub fn observe(&mut self, f: impl Fn(&CommittedCheckpoint) + Send + Sync + 'static) {
        self.observer = Some(Arc::new(f));
    }

    /// Stops the engine as if the process died at its `commit`-th commit.
    pub fn crash_at(&mut self, commit: u64, moment: CrashMoment) {
        self.crash = Some((commit, moment));
    }

    /// Calls `f` at the instant of the crash set with [`Hooks::crash_at`], before the engine
    /// stops: a crash-torture worker kills its own process there with SIGKILL, turning the
    /// simulated crash into a real process death at an exact point (just before the commit
    /// reaches the store, or just after it is durable and before anything is acknowledged).
    pub fn on_crash(&mut self, f: impl Fn() + Send + Sync + 'static) {
        self.on_crash = Some(Arc::new(f));
    }

    /// Makes every wait for a run's result, and every wait for quiet, fail with a message
    /// naming what it waited for once `bound` has passed, instead of waiting forever.
    pub fn bound_waits(&mut self, bound: std::time::Duration) {
        self.wait_bound = Some(bound);
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
