//! Operating runs: listing them by filter, cancelling, terminating, retrying a failed one, and
//! purging ended runs (on demand, or by a retention policy in bounded batches).
//!
//! Every change here is one checkpoint under the run's lock, like any transition, so a crash
//! leaves each run either as it was or fully changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::hooks::CrashMoment;
use super::{Engine, Inner, lock};
use crate::error::{OpsError, StoreError};
use crate::model::Command;
use crate::store::CheckpointWrite;
use crate::trace::TraceKind;
use crate::types::{RunRecord, RunStatus};

/// The most runs one [`Engine::runs`] page holds.
///
/// # Examples
///
/// ```
/// use workflow_runtime::{MAX_PAGE, RunFilter};
/// let widest = RunFilter { limit: Some(MAX_PAGE), ..RunFilter::default() };
/// ```
pub const MAX_PAGE: usize = 1000;

/// Which runs [`Engine::runs`] lists; every field left `None` matches everything.
///
/// ```
/// # use workflow_runtime::RunFilter;
/// let waiting_reviews = RunFilter {
///     workflow: Some("refund_review".into()),
///     waiting_for: Some("refund_decision".into()),
///     ..RunFilter::default()
/// };
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFilter {
    /// Runs of this workflow.
    pub workflow: Option<String>,
    /// Runs whose latest checkpoint was written by this version.
    pub version: Option<u32>,
    /// Runs with this status kind ([`RunStatus::kind`]: `waiting`, `failed`, ...).
    pub status: Option<String>,
    /// Runs created at or after this time, milliseconds since the Unix epoch.
    pub created_from_ms: Option<u64>,
    /// Runs created before this time, milliseconds since the Unix epoch.
    pub created_until_ms: Option<u64>,
    /// Runs waiting for a signal with this name.
    pub waiting_for: Option<String>,
    /// Only runs whose id sorts after this one: the `next` of the previous page.
    pub after: Option<String>,
    /// The most runs to return (default 100, at most [`MAX_PAGE`]).
    pub limit: Option<usize>,
}

/// One run as listed by [`Engine::runs`].
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
/// use workflow_runtime::RunFilter;
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// engine.start(approval, "r-1", 10).await?;
/// let page = engine.runs(&RunFilter::default())?;
/// let summary = &page.runs[0];
/// assert_eq!((summary.run_id.as_str(), summary.workflow.as_str()), ("r-1", "approval"));
/// assert_eq!(summary.status.kind(), "waiting");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// The version that wrote its latest checkpoint.
    pub version: u32,
    /// Where it stands.
    pub status: RunStatus,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When its latest checkpoint was written, milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// Everything stored about one run, as [`Engine::inspect`] returns it.
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
/// let detail = engine.inspect("r-1")?;
/// assert_eq!(detail.state_name.as_deref(), Some("AwaitingApprove"));
/// assert!(detail.output.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunDetail {
    /// The run's id.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// The version that wrote its latest checkpoint.
    pub version: u32,
    /// Where it stands.
    pub status: RunStatus,
    /// The name of the state variant it is stored in (a node of [`Engine::diagram`]).
    pub state_name: Option<String>,
    /// The stored state, as JSON.
    pub state: serde_json::Value,
    /// What it is suspended on; `None` once ended.
    pub pending: Option<Command>,
    /// What the workflow returned, once it returned.
    pub output: Option<serde_json::Value>,
    /// The seq of its latest checkpoint.
    pub seq: u64,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When its latest checkpoint was written, milliseconds since the Unix epoch.
    pub updated_ms: u64,
    /// The run that started this one as its awaited child, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A page of runs, in run id order.
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
/// use workflow_runtime::RunFilter;
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// for id in ["a", "b", "c"] {
///     engine.start(approval, id, 10).await?;
/// }
/// // Two pages of two: follow `next` until it is `None`.
/// let mut filter = RunFilter { limit: Some(2), ..RunFilter::default() };
/// let mut ids = Vec::new();
/// loop {
///     let page = engine.runs(&filter)?;
///     ids.extend(page.runs.into_iter().map(|r| r.run_id));
///     match page.next {
///         Some(after) => filter.after = Some(after),
///         None => break,
///     }
/// }
/// assert_eq!(ids, ["a", "b", "c"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// Pass as [`RunFilter::after`] for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// When ended runs are purged by the engine itself (see [`EngineBuilder::retention`]).
///
/// [`EngineBuilder::retention`]: crate::EngineBuilder::retention
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::Retention;
/// let policy = Retention::new(Duration::from_secs(30 * 24 * 3600));
/// assert_eq!((policy.every, policy.batch), (Duration::from_secs(60), 256));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Runs that ended at least this long ago (on the engine's clock) are purged.
    pub max_age: Duration,
    /// How often to look, on the runtime's timer.
    pub every: Duration,
    /// The most runs purged per store transaction, so that a large backlog never holds the
    /// store for long.
    pub batch: usize,
}

impl Retention {
    /// Purges runs that ended at least `max_age` ago, looking every minute, 256 runs per
    /// batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::Retention;
    /// let month = Retention::new(Duration::from_secs(30 * 24 * 3600));
    /// assert_eq!(month.max_age.as_secs(), 2_592_000);
    /// ```
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            every: Duration::from_secs(60),
            batch: 256,
        }
    }

    /// Looks this often instead of every minute.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::Retention;
    /// let hourly = Retention::new(Duration::from_secs(86_400)).every(Duration::from_secs(3_600));
    /// assert_eq!(hourly.every.as_secs(), 3_600);
    /// ```
    #[must_use]
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Purges at most this many runs per batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::Retention;
    /// let small = Retention::new(Duration::from_secs(86_400)).batch(50);
    /// assert_eq!(small.batch, 50);
    /// ```
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
}

fn matches(filter: &RunFilter, run_id: &str, rec: &RunRecord, status: &RunStatus) -> bool {
    filter.after.as_ref().is_none_or(|a| run_id > a.as_str())
        && filter.workflow.as_ref().is_none_or(|w| *w == rec.workflow)
        && filter.version.is_none_or(|v| v == rec.version)
        && filter.status.as_ref().is_none_or(|s| s == status.kind())
        && filter.created_from_ms.is_none_or(|t| rec.created_ms >= t)
        && filter.created_until_ms.is_none_or(|t| rec.created_ms < t)
        && filter
            .waiting_for
            .as_ref()
            .is_none_or(|w| matches!(status, RunStatus::Waiting { signal, .. } if signal == w))
}

impl Engine {
    /// Everything stored about a run: status, state, pending command, output.
    ///
    /// # Errors
    /// [`OpsError::UnknownRun`], or a storage error.
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
    /// use workflow_runtime::OpsError;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// let detail = engine.inspect("r-1")?;
    /// assert_eq!(detail.workflow, "approval");
    /// assert!(matches!(detail.status, RunStatus::Waiting { .. }));
    /// assert!(matches!(engine.inspect("nope"), Err(OpsError::UnknownRun { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn inspect(&self, run_id: &str) -> Result<RunDetail, OpsError> {
        let inner = &self.inner;
        inner.check_open()?;
        let rec = inner.store.run(run_id)?.ok_or_else(|| unknown(run_id))?;
        let status = inner.status_of(&rec);
        let mut pending = if rec.is_finished() {
            None
        } else {
            rec.pending.clone()
        };
        // An operations view: secrets show as the placeholder (the state keeps them).
        match &mut pending {
            Some(Command::Step { input, .. }) => crate::secret::redact(input),
            Some(Command::Wait { metadata, .. }) => crate::secret::redact(metadata),
            _ => {}
        }
        let mut state = rec.state.to_value();
        crate::secret::redact(&mut state);
        let mut output = rec.output;
        if let Some(output) = &mut output {
            crate::secret::redact(output);
        }
        let state_name = match &state {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(m) if m.len() == 1 => m.keys().next().cloned(),
            _ => None,
        };
        Ok(RunDetail {
            run_id: run_id.to_owned(),
            workflow: rec.workflow,
            version: rec.version,
            status,
            state_name,
            state,
            pending,
            output,
            seq: rec.seq,
            created_ms: rec.created_ms,
            updated_ms: rec.updated_ms,
            parent: rec.parent,
        })
    }

    /// The names of the registered workflows, sorted.
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
    pub fn workflows(&self) -> Vec<&'static str> {
        self.inner.registry().names()
    }

    /// The state graph of the newest registered version of `workflow`, as Mermaid text
    /// ([`Workflow::MERMAID`](crate::Workflow::MERMAID)); `None` if it is not registered.
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
    /// let mermaid = engine.diagram("approval").expect("registered");
    /// assert!(mermaid.starts_with("stateDiagram-v2"));
    /// assert_eq!(engine.diagram("unknown"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn diagram(&self, workflow: &str) -> Option<&'static str> {
        self.inner.driver(workflow).map(|d| d.mermaid())
    }

    /// The name of the state variant a run is stored in (`Start`, or the variant of its
    /// suspension point), as the nodes of [`Engine::diagram`] name it; `None` for an unknown
    /// run or a state that is not a stored variant.
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
    /// assert_eq!(engine.state_name("r-1").as_deref(), Some("AwaitingApprove"));
    /// assert_eq!(engine.state_name("nope"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn state_name(&self, run_id: &str) -> Option<String> {
        let rec = self.inner.store.run(run_id).ok()??;
        // The state is stored as serde's externally tagged enum: `"Unit"` or `{"Variant": ..}`.
        match rec.state.to_value() {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Object(m) if m.len() == 1 => m.keys().next().cloned(),
            _ => None,
        }
    }

    /// One page of the runs that match `filter`, in run id order.
    ///
    /// Reads every run record, except with [`RunFilter::waiting_for`], which reads the store's
    /// index of waits and only the records of the runs in it: meant for operators, not for a
    /// request path.
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for an unknown status kind or a zero limit, or a storage error.
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
    /// use workflow_runtime::RunFilter;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// let waiting = RunFilter {
    ///     waiting_for: Some("approve".into()),
    ///     ..RunFilter::default()
    /// };
    /// assert_eq!(engine.runs(&waiting)?.runs.len(), 1);
    /// let failed = RunFilter { status: Some("failed".into()), ..RunFilter::default() };
    /// assert!(engine.runs(&failed)?.runs.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn runs(&self, filter: &RunFilter) -> Result<RunPage, OpsError> {
        let inner = &self.inner;
        inner.check_open()?;
        if let Some(s) = &filter.status
            && !RunStatus::KINDS.contains(&s.as_str())
        {
            return Err(OpsError::Invalid {
                what: "status filter".to_owned(),
                reason: format!("`{s}` is not one of {}", RunStatus::KINDS.join(", ")),
            });
        }
        let limit = filter.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_PAGE {
            return Err(OpsError::Invalid {
                what: "limit".to_owned(),
                reason: format!("{limit} is not between 1 and {MAX_PAGE}"),
            });
        }
        let mut page = RunPage {
            runs: Vec::new(),
            next: None,
        };
        // Adds a run that matches; false once the page is full (and `next` set).
        let mut take = |run_id: String, rec: RunRecord| -> bool {
            let status = inner.status_of(&rec);
            if !matches(filter, &run_id, &rec, &status) {
                return true;
            }
            if page.runs.len() == limit {
                page.next = page.runs.last().map(|r| r.run_id.clone());
                return false;
            }
            page.runs.push(RunSummary {
                run_id,
                workflow: rec.workflow,
                version: rec.version,
                status,
                created_ms: rec.created_ms,
                updated_ms: rec.updated_ms,
            });
            true
        };
        match &filter.waiting_for {
            // Every waiting run has a row in the store's waits index, so "who waits for this
            // signal" reads the waits and their runs, not every run stored. Each record is
            // still checked against the whole filter, as the scan does.
            Some(signal) => {
                let mut ids: Vec<String> = inner
                    .store
                    .pending_waits()?
                    .into_iter()
                    .filter(|w| w.signal == *signal)
                    .filter(|w| filter.after.as_ref().is_none_or(|a| w.run_id > *a))
                    .map(|w| w.run_id)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                for run_id in ids {
                    if let Some(rec) = inner.store.run(&run_id)?
                        && !take(run_id, rec)
                    {
                        break;
                    }
                }
            }
            None => {
                for (run_id, rec) in inner.store.runs()? {
                    if !take(run_id, rec) {
                        break;
                    }
                }
            }
        }
        Ok(page)
    }

    /// Cancels a run: its workflow sees the cancellation at its current suspension point, as
    /// an error value it can handle. A pending step resolves with a [`StepError`] of kind
    /// [`StepErrorKind::Cancelled`] (a running attempt is stopped); a pending wait resolves
    /// with [`WaitError::Cancelled`]; a sleep ends early and the cancellation reaches the next
    /// step or wait. The workflow may run steps to compensate (they run normally) and then
    /// return; whatever it returns, the run ends [`RunStatus::Cancelled`]. Cancelling a run
    /// already cancelled changes nothing.
    ///
    /// The cancellation is committed with the transition it causes, before this returns.
    ///
    /// [`StepError`]: crate::StepError
    /// [`StepErrorKind::Cancelled`]: crate::StepErrorKind::Cancelled
    /// [`WaitError::Cancelled`]: crate::WaitError::Cancelled
    ///
    /// # Errors
    /// [`OpsError::UnknownRun`], [`OpsError::RunFinished`], [`OpsError::NotRegistered`] or
    /// [`OpsError::Incompatible`] (the workflow's code must run; terminate such a run), or a
    /// storage error (then nothing changed).
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
    /// let status = engine.cancel("r-1", "the customer withdrew the request").await?;
    /// assert_eq!(status.kind(), "cancelled");
    /// assert_eq!(
    ///     run.status()?,
    ///     RunStatus::Cancelled { reason: "the customer withdrew the request".into() }
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn cancel(&self, run_id: &str, reason: &str) -> Result<RunStatus, OpsError> {
        self.inner.cancel_run(run_id, reason).await
    }

    /// Ends a run at once with [`RunStatus::Terminated`]: no further workflow code runs, a
    /// running step attempt is stopped, buffered signals are dropped. Works for runs the
    /// registered code cannot drive too.
    ///
    /// # Errors
    /// [`OpsError::UnknownRun`], [`OpsError::RunFinished`], or a storage error (then nothing
    /// changed).
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
    /// use workflow_runtime::OpsError;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// engine.terminate("r-1", "opened by mistake").await?;
    /// assert_eq!(engine.status("r-1")?.kind(), "terminated");
    /// // An ended run cannot be ended again.
    /// let again = engine.terminate("r-1", "twice").await;
    /// assert!(matches!(again, Err(OpsError::RunFinished { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn terminate(&self, run_id: &str, reason: &str) -> Result<(), OpsError> {
        self.inner.terminate_run(run_id, reason).await
    }

    /// Takes a [`RunStatus::Failed`] run back to its last checkpoint and runs the step it
    /// failed at again (from attempt 1, with a fresh idempotency key: the failed attempt's key
    /// may be remembered by a provider together with its failure). The state is the stored one;
    /// nothing is replayed. Meant for after a fix: the newest registered code runs it.
    ///
    /// # Errors
    /// [`OpsError::UnknownRun`], [`OpsError::NotFailed`], [`OpsError::NothingToRetry`],
    /// [`OpsError::NotRegistered`], [`OpsError::Incompatible`], or a storage error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use std::sync::atomic::{AtomicBool, Ordering};
    /// # static DOWN: AtomicBool = AtomicBool::new(true);
    /// # #[function]
    /// # async fn charge(cents: u64) -> Result<u64, StepError> {
    /// #     if DOWN.load(Ordering::SeqCst) {
    /// #         return Err(StepError::permanent("the provider is down"));
    /// #     }
    /// #     Ok(cents)
    /// # }
    /// # #[workflow]
    /// # async fn pay(ctx: &mut WorkflowContext, cents: u64) -> Result<u64, WorkflowError> {
    /// #     Ok(ctx.step(charge, cents).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(pay).open_in_memory().await?;
    /// let run = engine.start(pay, "p-1", 300).await?;
    /// assert!(run.result().await?.is_err());
    /// assert_eq!(run.status()?.kind(), "failed");
    ///
    /// // The provider is back: run the failed step again.
    /// DOWN.store(false, Ordering::SeqCst);
    /// engine.retry("p-1").await?;
    /// assert_eq!(run.result().await?, Ok(300));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn retry(&self, run_id: &str) -> Result<(), OpsError> {
        let inner = &self.inner;
        inner.check_open()?;
        let _lock = inner.lock_run(run_id).await;
        inner.lease_for_op(run_id).await?;
        let rec = inner.store.run(run_id)?.ok_or_else(|| unknown(run_id))?;
        if !matches!(rec.status, RunStatus::Failed { .. }) {
            return Err(OpsError::NotFailed {
                run_id: run_id.to_owned(),
                status: rec.status,
            });
        }
        let Some(cmd @ Command::Step { .. }) = rec.ended_at.clone() else {
            return Err(OpsError::NothingToRetry {
                run_id: run_id.to_owned(),
            });
        };
        let workflow = rec.workflow.clone();
        let (_, mut cp) = match inner.prepare(run_id, rec).await? {
            Ok(ready) => ready,
            Err(Some(reason)) => {
                return Err(OpsError::Incompatible {
                    run_id: run_id.to_owned(),
                    reason,
                });
            }
            Err(None) => return Err(OpsError::NotRegistered { workflow }),
        };
        let step = match &cmd {
            Command::Step { name, .. } => name.clone(),
            _ => unreachable!("matched as a step above"),
        };
        cp.trace(TraceKind::Retried { step });
        cp.resume_failed(cmd);
        Ok(inner.commit(cp).await?)
    }

    /// Removes an ended run (completed, failed, cancelled or terminated) with its trace, inbox
    /// and dedupe keys; its id may then be used again. A run that is open or parked as
    /// incompatible is never purged.
    ///
    /// # Errors
    /// [`OpsError::UnknownRun`], [`OpsError::NotPurgeable`], or a storage error (then nothing
    /// was removed).
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
    /// use workflow_runtime::OpsError;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// // An open run stays.
    /// assert!(matches!(engine.purge("r-1").await, Err(OpsError::NotPurgeable { .. })));
    /// engine.signal("r-1", "approve", true).await?;
    /// engine.purge("r-1").await?;
    /// assert!(matches!(engine.status("r-1"), Err(EngineError::UnknownRun { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn purge(&self, run_id: &str) -> Result<(), OpsError> {
        let inner = &self.inner;
        inner.check_open()?;
        let rec = inner.store.run(run_id)?.ok_or_else(|| unknown(run_id))?;
        if !rec.is_purgeable() {
            return Err(OpsError::NotPurgeable {
                run_id: run_id.to_owned(),
                status: rec.status,
            });
        }
        // Checked again under the run's lock, where the purge happens.
        if inner.commit_purges(vec![run_id.to_owned()]).await? == 0 {
            let rec = inner.store.run(run_id)?.ok_or_else(|| unknown(run_id))?;
            return Err(OpsError::NotPurgeable {
                run_id: run_id.to_owned(),
                status: rec.status,
            });
        }
        Ok(())
    }

    /// Erases an ended run's payloads (a data-protection request), keeping only its status
    /// kind, its times and the shape of its trace: its state, output, step inputs and outputs,
    /// signal payloads, wait metadata, failure message, operators' reasons and de-duplication
    /// keys are removed, in one durable transaction, and a final `erased` event is traced.
    /// [`RunHandle::result`](crate::RunHandle::result) then answers
    /// [`ResultError::Erased`](crate::ResultError::Erased). Erasing an erased run changes
    /// nothing.
    ///
    /// What stays: the run id, the workflow's name and version, the status kind, the times,
    /// and the names of the steps, signals and waits in the trace. Bytes the store freed are
    /// not overwritten at once (see the README's "Sensitive data").
    ///
    /// # Errors
    /// [`OpsError::UnknownRun`], [`OpsError::NotErasable`] for a run that has not ended (or
    /// is parked as incompatible), or a storage error (then nothing was erased).
    pub async fn erase(&self, run_id: &str) -> Result<(), OpsError> {
        self.inner.check_open()?;
        self.inner.erase(run_id).await
    }

    /// Erases every run whose id starts with `prefix` (the runs of one customer, when run ids
    /// begin with a customer key such as `cust-42/`), as [`Engine::erase`]; returns their ids.
    /// Refuses, erasing none, if any of them has not ended.
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for an empty prefix, [`OpsError::NotErasable`] naming the first
    /// open run, or a storage error (then the runs before it in id order were erased).
    pub async fn erase_prefix(&self, prefix: &str) -> Result<Vec<String>, OpsError> {
        let inner = &self.inner;
        inner.check_open()?;
        if prefix.is_empty() {
            return Err(OpsError::Invalid {
                what: "prefix".to_owned(),
                reason: "an empty prefix would erase every run; name the key".to_owned(),
            });
        }
        let matching: Vec<(String, RunRecord)> = inner
            .store
            .runs()?
            .into_iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .collect();
        if let Some((run_id, rec)) = matching.iter().find(|(_, rec)| !rec.is_purgeable()) {
            return Err(OpsError::NotErasable {
                run_id: run_id.clone(),
                status: rec.status.clone(),
            });
        }
        let mut erased = Vec::with_capacity(matching.len());
        for (run_id, _) in matching {
            inner.erase(&run_id).await?;
            erased.push(run_id);
        }
        Ok(erased)
    }

    /// Purges up to `batch` runs that ended at least `max_age` ago (on the engine's clock),
    /// oldest id first, in one store transaction where the store groups them; returns how many
    /// were purged. Call it again while it returns `batch` to work through a backlog.
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for a zero batch, or a storage error (then none of the batch was
    /// removed, or, if the store committed them separately, some were).
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
    /// for id in ["a", "b", "c"] {
    ///     engine.start(approval, id, 10).await?;
    ///     engine.signal(id, "approve", true).await?;
    /// }
    /// // Work through the backlog two runs per transaction.
    /// let mut purged = 0;
    /// loop {
    ///     let n = engine.purge_ended(Duration::ZERO, 2).await?;
    ///     purged += n;
    ///     if n < 2 {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(purged, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn purge_ended(&self, max_age: Duration, batch: usize) -> Result<usize, OpsError> {
        self.inner.purge_ended(max_age, batch).await
    }
}

impl Inner {
    /// [`Engine::cancel`]; the awaited children of a run suspended on them are cancelled
    /// after it.
    pub(super) async fn cancel_run(
        &self,
        run_id: &str,
        reason: &str,
    ) -> Result<RunStatus, OpsError> {
        let inner = self;
        inner.check_open()?;
        let _lock = inner.lock_run(run_id).await;
        inner.lease_for_op(run_id).await?;
        // Asked again (a client retrying after a lost answer): done already.
        if let Some(rec) = inner.store.run(run_id)?
            && rec.cancel.is_some()
        {
            return Ok(rec.status);
        }
        let rec = inner.open_record(run_id)?;
        let workflow = rec.workflow.clone();
        let (d, mut cp) = match inner.prepare(run_id, rec).await? {
            Ok(ready) => ready,
            Err(Some(reason)) => {
                return Err(OpsError::Incompatible {
                    run_id: run_id.to_owned(),
                    reason,
                });
            }
            Err(None) => return Err(OpsError::NotRegistered { workflow }),
        };
        inner.stop_step(run_id);
        cp.request_cancel(reason);
        if let Some(event) = cp.deliver_cancel() {
            cp.drive(&*d, &*inner.store, event, None)?;
        }
        let status = cp.rec.status.clone();
        let children = inner.open_children(&cp.rec);
        inner.commit(cp).await?;
        drop(_lock);
        inner.cancel_children(reason, children).await;
        Ok(status)
    }

    /// [`Engine::terminate`]; the awaited children of a run suspended on them are terminated
    /// after it.
    pub(super) async fn terminate_run(&self, run_id: &str, reason: &str) -> Result<(), OpsError> {
        let inner = self;
        inner.check_open()?;
        let _lock = inner.lock_run(run_id).await;
        inner.lease_for_op(run_id).await?;
        let rec = inner.open_record(run_id)?;
        inner.stop_step(run_id);
        let children = inner.open_children(&rec);
        let mut cp = Checkpoint::load(run_id, inner.clock.now_ms(), rec);
        cp.end(
            RunStatus::Terminated {
                reason: reason.to_owned(),
            },
            TraceKind::Terminated {
                reason: reason.to_owned(),
            },
        );
        // The awaited children end in the same commit, so a crash cannot leave them running
        // for a parent that is gone; their own children are terminated after it.
        let (_child_locks, grandchildren) = inner.terminate_with(&mut cp, reason, children).await?;
        inner.commit(cp).await?;
        drop(_lock);
        drop(_child_locks);
        for (child, open) in grandchildren {
            let why = format!("its parent `{child}` was terminated: {reason}");
            inner.terminate_children(&why, open).await;
        }
        Ok(())
    }
}

fn unknown(run_id: &str) -> OpsError {
    OpsError::UnknownRun {
        run_id: run_id.to_owned(),
    }
}

impl Inner {
    /// Rewrites an ended run and its trace without their payloads, under the run's lock.
    async fn erase(&self, run_id: &str) -> Result<(), OpsError> {
        let _lock = self.lock_run(run_id).await;
        self.lease_for_op(run_id).await?;
        let rec = self.store.run(run_id)?.ok_or_else(|| unknown(run_id))?;
        if !rec.is_purgeable() {
            return Err(OpsError::NotErasable {
                run_id: run_id.to_owned(),
                status: rec.status,
            });
        }
        if rec.erased_ms.is_some() {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        let mut trace = self.store.trace(run_id)?;
        for event in &mut trace {
            event.kind.erase();
        }
        let checkpoint = rec.seq;
        trace.push(crate::trace::TraceEvent {
            seq: 0,
            at_ms: now_ms,
            checkpoint,
            kind: TraceKind::Erased,
        });
        let mut write = CheckpointWrite::purging(run_id);
        write.run = Some(crate::store::RunWrite::new(rec.erased(now_ms), None));
        write.trace = trace;
        if *self.shutdown.borrow() {
            return Err(OpsError::ShutDown);
        }
        self.forget_hot(run_id);
        self.store.commit(write).await?;
        tracing::info!(run_id, "erased the payloads of run `{run_id}`");
        Ok(())
    }

    /// The record of a run that has not ended yet.
    fn open_record(&self, run_id: &str) -> Result<RunRecord, OpsError> {
        let rec = self.store.run(run_id)?.ok_or_else(|| unknown(run_id))?;
        if rec.is_finished() && !matches!(rec.status, RunStatus::Incompatible { .. }) {
            return Err(OpsError::RunFinished {
                run_id: run_id.to_owned(),
                status: rec.status,
            });
        }
        Ok(rec)
    }

    /// Stops the attempt running for a run whose pending step is being answered otherwise; its
    /// result, had it arrived, would have been dropped as stale anyway.
    fn stop_step(&self, run_id: &str) {
        if let Some(step) = lock(&self.steps).remove(run_id) {
            step.abort();
        }
    }

    /// Purges these runs, each under its lock and re-checked, all submitted before any is
    /// awaited so that the store can write them in one transaction. Runs that changed or
    /// vanished in the meantime are skipped. Returns how many were purged.
    async fn commit_purges(&self, run_ids: Vec<String>) -> Result<usize, OpsError> {
        let mut held = Vec::with_capacity(run_ids.len());
        for run_id in &run_ids {
            let guard = self.lock_run(run_id).await;
            if self.store.run(run_id)?.is_some_and(|r| r.is_purgeable()) {
                held.push((run_id.as_str(), guard));
            }
        }
        if held.is_empty() {
            return Ok(0);
        }
        if *self.shutdown.borrow() {
            return Err(OpsError::ShutDown);
        }
        let crash = self.instrument.as_ref().and_then(|i| i.commit_begins());
        if crash == Some(CrashMoment::BeforeCommit) {
            self.crash(CrashMoment::BeforeCommit);
            return Err(OpsError::ShutDown);
        }
        let acks: Vec<_> = held
            .iter()
            .map(|(run_id, _)| {
                self.forget_hot(run_id);
                self.store.commit(CheckpointWrite::purging(*run_id))
            })
            .collect();
        let mut purged = 0;
        let mut failure: Option<StoreError> = None;
        for ((run_id, _), ack) in held.iter().zip(acks) {
            match ack.await {
                Ok(()) => {
                    purged += 1;
                    // The run's own trace goes with it, so the purge is reported here.
                    tracing::info!(run_id = *run_id, "purged run `{run_id}`");
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if crash == Some(CrashMoment::AfterCommit) {
            self.crash(CrashMoment::AfterCommit);
            return Err(OpsError::ShutDown);
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(purged),
        }
    }

    async fn purge_ended(&self, max_age: Duration, batch: usize) -> Result<usize, OpsError> {
        self.check_open()?;
        if batch == 0 {
            return Err(OpsError::Invalid {
                what: "batch".to_owned(),
                reason: "it must be at least 1".to_owned(),
            });
        }
        let age = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let cutoff = self.clock.now_ms().saturating_sub(age);
        let due: Vec<String> = self
            .store
            .runs()?
            .into_iter()
            .filter(|(_, rec)| rec.is_purgeable() && rec.updated_ms <= cutoff)
            .map(|(id, _)| id)
            .take(batch)
            .collect();
        self.commit_purges(due).await
    }

    /// Runs the retention policy until the engine shuts down. Holds the engine only while it
    /// purges, so that dropping the engine still closes the store.
    pub(super) async fn retain(engine: std::sync::Weak<Inner>, retention: Retention) {
        let mut stop = match engine.upgrade() {
            Some(inner) => inner.shutdown.subscribe(),
            None => return,
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(retention.every) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            let Some(inner) = engine.upgrade() else {
                return;
            };
            loop {
                match inner.purge_ended(retention.max_age, retention.batch).await {
                    Ok(n) if n == retention.batch => tokio::task::yield_now().await,
                    Ok(_) => break,
                    Err(OpsError::ShutDown) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "purging ended runs failed: {e}");
                        break;
                    }
                }
            }
        }
    }
}

/// The upper bounds, in seconds, of the commit latency histogram's buckets (`+Inf` follows):
/// from a tenth of a millisecond (a checkpoint in memory) to seconds (a slow disk under load).
pub const COMMIT_LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The metric names, as both the `metrics` facade and [`Metrics::prometheus`] use them.
mod names {
    pub(super) const TRANSITIONS: &str = "workflow_transitions_total";
    pub(super) const CHECKPOINTS: &str = "workflow_checkpoints_total";
    pub(super) const STORE_COMMITS: &str = "workflow_store_commits_total";
    pub(super) const STEP_ATTEMPTS: &str = "workflow_step_attempts_total";
    pub(super) const STEP_FAILURES: &str = "workflow_step_failures_total";
    pub(super) const COMMIT_SECONDS: &str = "workflow_checkpoint_commit_seconds";
    pub(super) const RUNS: &str = "workflow_runs";
}

/// The engine's counters since it was opened.
///
/// Each one is also reported through the `metrics` facade as it moves, so an application that
/// installs a recorder (a Prometheus exporter, StatsD, ...) gets them in its own pipeline; the
/// engine keeps its own copy because a facade cannot be read back, and the admin API answers
/// from that copy without needing a global recorder.
#[derive(Debug, Default)]
pub(super) struct Counters {
    transitions: AtomicU64,
    commits: AtomicU64,
    step_attempts: AtomicU64,
    step_failures: AtomicU64,
    commit_latency: LatencyHistogram,
}

impl Counters {
    /// A checkpoint is durable; `moved` when it moved the run; `took` from handing it to the
    /// store to the store's acknowledgement (group commit waits included).
    pub(super) fn committed(&self, moved: bool, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::CHECKPOINTS).increment(1);
        if moved {
            self.transitions.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(names::TRANSITIONS).increment(1);
        }
        self.commit_latency.record(took);
        metrics::histogram!(names::COMMIT_SECONDS).record(took.as_secs_f64());
    }

    pub(super) fn step_attempt(&self) {
        self.step_attempts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::STEP_ATTEMPTS).increment(1);
    }

    pub(super) fn step_failure(&self) {
        self.step_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::STEP_FAILURES).increment(1);
    }
}

/// Fixed buckets of atomic counts: recording is two additions, no lock.
#[derive(Debug)]
struct LatencyHistogram {
    /// Counts per bucket, not cumulative; the last is `+Inf`.
    buckets: [AtomicU64; COMMIT_LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = COMMIT_LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(COMMIT_LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Histogram {
        let mut seen = 0;
        let mut buckets = Vec::with_capacity(COMMIT_LATENCY_BUCKETS.len());
        for (bound, n) in COMMIT_LATENCY_BUCKETS.iter().zip(&self.buckets) {
            seen += n.load(Ordering::Relaxed);
            buckets.push((*bound, seen));
        }
        let count = seen + self.buckets[COMMIT_LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        Histogram {
            buckets,
            count,
            sum_seconds: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

/// A histogram as Prometheus shows one: cumulative counts per upper bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Histogram {
    /// `(upper bound, observations at most that)`, bounds ascending; the `+Inf` bucket is
    /// [`Histogram::count`].
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// The sum of the observations.
    pub sum_seconds: f64,
}

/// A snapshot of the engine's metrics (see [`Engine::metrics`]).
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
/// let m = engine.metrics()?;
/// assert_eq!(m.runs_by_status["waiting"], 1);
/// assert!(m.checkpoints >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Checkpoints that moved a run (a transition, a failure, a cancellation...), since open.
    pub transitions: u64,
    /// Checkpoints committed (including those that only buffer a signal or add to the trace).
    pub checkpoints: u64,
    /// Durable write transactions of the store (group commit puts several checkpoints in one).
    pub store_commits: u64,
    /// Step attempts started.
    pub step_attempts: u64,
    /// Step attempts that failed (retried or not).
    pub step_failures: u64,
    /// How long checkpoints took from being handed to the store until they were durable, in
    /// seconds (buckets [`COMMIT_LATENCY_BUCKETS`]).
    pub commit_latency: Histogram,
    /// Stored runs by status kind ([`RunStatus::kind`]), every kind present.
    pub runs_by_status: BTreeMap<String, u64>,
}

impl Metrics {
    /// The metrics in the Prometheus text exposition format (version 0.0.4).
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
    /// let text = engine.metrics()?.prometheus();
    /// assert!(text.contains("workflow_runs{status=\"waiting\"} 1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                names::TRANSITIONS,
                "Checkpoints that moved a run.",
                self.transitions,
            ),
            (
                names::CHECKPOINTS,
                "Checkpoints committed.",
                self.checkpoints,
            ),
            (
                names::STORE_COMMITS,
                "Durable store transactions.",
                self.store_commits,
            ),
            (
                names::STEP_ATTEMPTS,
                "Step attempts started.",
                self.step_attempts,
            ),
            (
                names::STEP_FAILURES,
                "Step attempts that failed.",
                self.step_failures,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let h = &self.commit_latency;
        let name = names::COMMIT_SECONDS;
        let _ = writeln!(
            out,
            "# HELP {name} Time from handing a checkpoint to the store until it is durable.\n\
             # TYPE {name} histogram"
        );
        for (bound, n) in &h.buckets {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum_seconds);
        let _ = writeln!(out, "{name}_count {}", h.count);
        let name = names::RUNS;
        let _ = writeln!(
            out,
            "# HELP {name} Stored runs by status.\n# TYPE {name} gauge"
        );
        for (status, n) in &self.runs_by_status {
            let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
        }
        out
    }
}

impl Engine {
    /// The engine's counters and the stored runs by status. Reads every run record.
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
    /// engine.start(approval, "r-1", 10).await?;
    /// let m = engine.metrics()?;
    /// assert_eq!(m.runs_by_status["waiting"], 1);
    /// assert_eq!(m.step_attempts, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn metrics(&self) -> Result<Metrics, OpsError> {
        let inner = &self.inner;
        inner.check_open()?;
        let mut runs_by_status: BTreeMap<String, u64> = RunStatus::KINDS
            .iter()
            .map(|k| ((*k).to_owned(), 0))
            .collect();
        for (_, rec) in inner.store.runs()? {
            *runs_by_status
                .entry(inner.status_of(&rec).kind().to_owned())
                .or_default() += 1;
        }
        // Gauges of a scan: the facade sees them as fresh as the last snapshot taken.
        for (status, n) in &runs_by_status {
            metrics::gauge!(names::RUNS, "status" => status.clone()).set(*n as f64);
        }
        let c = &inner.counters;
        Ok(Metrics {
            transitions: c.transitions.load(Ordering::Relaxed),
            checkpoints: c.commits.load(Ordering::Relaxed),
            store_commits: inner.store.commit_count(),
            step_attempts: c.step_attempts.load(Ordering::Relaxed),
            step_failures: c.step_failures.load(Ordering::Relaxed),
            commit_latency: c.commit_latency.snapshot(),
            runs_by_status,
        })
    }
}
