//! Value types below both the engine and the store: statuses, pending waits, signals, and the
//! stored form of a run.

use std::any::Any;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CodecError;
use crate::model::Command;
use crate::stored_state::StoredState;
use crate::trace::format_time_ms;

/// Where a run stands.
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
/// let text = match engine.status("r-1")? {
///     RunStatus::Waiting { signal, wait_id, .. } => format!("waiting for {signal} (wait {wait_id})"),
///     RunStatus::Completed => "done".to_owned(),
///     RunStatus::Failed { message } => format!("failed: {message}"),
///     other => other.to_string(),
/// };
/// assert_eq!(text, "waiting for approve (wait 1)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// A step is scheduled or executing.
    Running,
    /// The run waits for a signal.
    Waiting {
        /// The signal's name.
        signal: String,
        /// The wait's id, as listed by `Engine::pending` and accepted by [`Signal::for_wait`].
        wait_id: String,
        /// When the wait times out, milliseconds since the Unix epoch.
        deadline_ms: u64,
    },
    /// A step failed with a retryable error and is tried again: its next attempt waits out a
    /// durable backoff until `not_before_ms`, then runs.
    Retrying {
        /// The step's name.
        step: String,
        /// The attempt that runs next, from 2.
        attempt: u32,
        /// When that attempt may start, milliseconds since the Unix epoch.
        not_before_ms: u64,
    },
    /// The run sleeps.
    Sleeping {
        /// When it wakes up, milliseconds since the Unix epoch.
        until_ms: u64,
    },
    /// The workflow returned `Ok`.
    Completed,
    /// The workflow returned `Err` (the message is the error as JSON), panicked, or was refused
    /// by the engine.
    Failed {
        /// What went wrong.
        message: String,
    },
    /// The stored run does not fit the registered code; it is parked, untouched.
    Incompatible {
        /// Both fingerprints, or why the state could not be decoded.
        reason: String,
    },
    /// An operator cancelled the run (`Engine::cancel`); the workflow saw the cancellation at
    /// its suspension point, ran what it chose to (compensation), and ended.
    Cancelled {
        /// The operator's reason.
        reason: String,
    },
    /// An operator ended the run at once (`Engine::terminate`); no further workflow code ran.
    Terminated {
        /// The operator's reason.
        reason: String,
    },
}

impl RunStatus {
    /// The status's name without its details, as used by run filters (`running`, `waiting`,
    /// `retrying`, `sleeping`, `completed`, `failed`, `incompatible`, `cancelled`,
    /// `terminated`).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RunStatus;
    /// assert_eq!(RunStatus::Completed.kind(), "completed");
    /// assert_eq!(RunStatus::Failed { message: "boom".into() }.kind(), "failed");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting { .. } => "waiting",
            RunStatus::Retrying { .. } => "retrying",
            RunStatus::Sleeping { .. } => "sleeping",
            RunStatus::Completed => "completed",
            RunStatus::Failed { .. } => "failed",
            RunStatus::Incompatible { .. } => "incompatible",
            RunStatus::Cancelled { .. } => "cancelled",
            RunStatus::Terminated { .. } => "terminated",
        }
    }

    /// Every value [`RunStatus::kind`] returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::RunStatus;
    /// assert!(RunStatus::KINDS.contains(&RunStatus::Running.kind()));
    /// ```
    pub const KINDS: [&'static str; 9] = [
        "running",
        "waiting",
        "retrying",
        "sleeping",
        "completed",
        "failed",
        "incompatible",
        "cancelled",
        "terminated",
    ];
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunStatus::Running => f.write_str("running"),
            RunStatus::Waiting {
                signal,
                wait_id,
                deadline_ms,
            } => write!(
                f,
                "waiting for signal `{signal}` (wait {wait_id}, deadline {})",
                format_time_ms(*deadline_ms)
            ),
            RunStatus::Retrying {
                step,
                attempt,
                not_before_ms,
            } => write!(
                f,
                "retrying step `{step}`: attempt {attempt} from {}",
                format_time_ms(*not_before_ms)
            ),
            RunStatus::Sleeping { until_ms } => {
                write!(f, "sleeping until {}", format_time_ms(*until_ms))
            }
            RunStatus::Completed => f.write_str("completed"),
            RunStatus::Failed { message } => write!(f, "failed: {message}"),
            RunStatus::Incompatible { reason } => write!(f, "incompatible: {reason}"),
            RunStatus::Cancelled { reason } => write!(f, "cancelled: {reason}"),
            RunStatus::Terminated { reason } => write!(f, "terminated: {reason}"),
        }
    }
}

/// A run waiting for a signal, as listed by `Engine::pending`.
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
/// engine.start(approval, "r-1", 250).await?;
/// for wait in engine.pending()? {
///     // Answer exactly this wait: a late answer to an earlier wait is dropped as stale.
///     let answer = Signal::new(&wait.signal, wait.metadata["amount"].as_u64() < Some(500))
///         .for_wait(&wait.wait_id);
///     assert_eq!(engine.send(&wait.run_id, answer).await?, SignalOutcome::Delivered);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingWait {
    /// The run.
    pub run_id: String,
    /// The run's workflow.
    pub workflow: String,
    /// The wait's id; pass it to [`Signal::for_wait`] to answer this wait and no later one.
    pub wait_id: String,
    /// The signal waited for.
    pub signal: String,
    /// The metadata the workflow attached to the wait.
    pub metadata: Value,
    /// When the wait times out, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// For a wait on several signals (`ctx.wait_for_any`): every name that answers it,
    /// `signal` first; empty when `signal` is the only one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
}

/// What happened to a signal.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn two_steps(ctx: &mut WorkflowContext) -> Result<u8, WorkflowError> {
///     let a = ctx.wait_for_signal::<u8>("first", Duration::from_secs(60), ()).await?;
///     let b = ctx.wait_for_signal::<u8>("second", Duration::from_secs(60), ()).await?;
///     Ok(a + b)
/// }
///
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let engine = Engine::builder().register(two_steps).open_in_memory().await?;
/// let run = engine.start(two_steps, "t-1", ()).await?;
/// // Early: kept in the run's inbox until the second wait.
/// assert_eq!(engine.signal("t-1", "second", 2).await?, SignalOutcome::Buffered);
/// let once = Signal::new("first", 1).dedupe_key("msg-17");
/// assert_eq!(engine.send("t-1", once.clone()).await?, SignalOutcome::Delivered);
/// assert_eq!(run.result().await?, Ok(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignalOutcome {
    /// The run was waiting for it; the wait consumed it and the resulting checkpoint is durable.
    Delivered,
    /// No wait for it was active; it is stored durably in the run's inbox and the next wait with
    /// its name consumes it.
    Buffered,
    /// Its de-duplication key was already accepted for this run; nothing changed.
    Duplicate,
    /// It answers a wait that is already over (satisfied or timed out); it was dropped and
    /// nothing changed.
    Stale,
}

/// A signal to send with `Engine::send`.
///
/// ```
/// # use workflow_runtime::Signal;
/// let s = Signal::new("refund_decision", serde_json::json!({"approved": true}))
///     .dedupe_key("review-8812")
///     .for_wait("4");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub(crate) name: String,
    pub(crate) payload: Result<Value, CodecError>,
    pub(crate) dedupe_key: Option<String>,
    pub(crate) wait_id: Option<String>,
}

impl Signal {
    /// A signal with this name and payload. A payload that cannot be encoded as JSON is
    /// reported by `Engine::send` as `SignalError::Codec`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::Signal;
    /// let s = Signal::new("refund_decision", serde_json::json!({ "approved": true }));
    /// assert_eq!(s.name(), "refund_decision");
    /// ```
    pub fn new(name: impl Into<String>, payload: impl Serialize) -> Self {
        let name = name.into();
        Self {
            payload: crate::codec::to_value(&payload)
                .map_err(|e| CodecError::encoding(format!("the payload of signal `{name}`"), e)),
            name,
            dedupe_key: None,
            wait_id: None,
        }
    }

    /// A key that makes re-sending safe: a second signal with the same key for the same run
    /// is reported as [`SignalOutcome::Duplicate`] and changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::Signal;
    /// let s = Signal::new("approve", true).dedupe_key("webhook-delivery-4411");
    /// ```
    #[must_use]
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Addresses the signal to one wait (an id from `Engine::pending` or `RunStatus::Waiting`):
    /// if that wait is over, the signal is [`SignalOutcome::Stale`] instead of being buffered
    /// for a later wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::Signal;
    /// let s = Signal::new("approve", true).for_wait("3");
    /// ```
    #[must_use]
    pub fn for_wait(mut self, wait_id: impl Into<String>) -> Self {
        self.wait_id = Some(wait_id.into());
        self
    }

    /// The signal's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::Signal;
    /// assert_eq!(Signal::new("approve", true).name(), "approve");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The version of the [`RunRecord`] encoding.
pub(crate) const ENVELOPE_FORMAT: u32 = 1;

/// The stored form of a run: the checkpoint envelope a storage backend keeps per run id.
///
/// A backend stores it as it is given (serde) and reads four things from it: `status`
/// (through [`RunRecord::is_finished`]), `pending`, `seq` and `workflow`, from which it keeps
/// its indexes (runs ready to execute a step, timers, waits) up to date.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use serde_json::json;
/// let store = FileStore::open_memory()?;
/// let mut write = CheckpointWrite::new("r-1");
/// write.run = Some(RunWrite::new(RunRecord::new("checkout", json!("Start"), 5), None));
/// store.commit(write).await?;
/// let rec = store.run("r-1")?.expect("committed");
/// assert_eq!((rec.workflow.as_str(), rec.seq, rec.created_ms), ("checkout", 0, 5));
/// assert!(!rec.is_finished());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The version of this encoding when written.
    pub format: u32,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow version that wrote the latest checkpoint.
    pub version: u32,
    /// The layout fingerprint of that version's state enum.
    pub layout_hash: u64,
    /// The body fingerprint of the code that wrote the latest checkpoint.
    pub body_hash: u64,
    /// The sequence number of the last transition checkpointed.
    pub seq: u64,
    /// Where the run stands.
    pub status: RunStatus,
    /// The last good state, as its stored JSON text.
    pub state: StoredState,
    /// What the run is suspended on; `None` once finished.
    pub pending: Option<Command>,
    /// The workflow's output (`{"Ok": ..}` or `{"Err": ..}`) once it returned.
    pub output: Option<Value>,
    /// FNV-1a of the input's JSON, to tell a repeated start from a conflicting one.
    pub input_hash: u64,
    /// When the run was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When the latest checkpoint was written, milliseconds since the Unix epoch.
    pub updated_ms: u64,
    /// An operator's cancellation of the run, once requested (`Engine::cancel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<Cancellation>,
    /// The command the run was suspended on when it ended, so that a failed run can be retried
    /// from there (`Engine::retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Command>,
    /// When an operator erased the run's payloads (`Engine::erase`), milliseconds since the
    /// Unix epoch: its state, output and texts are gone, its status kind and times remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_ms: Option<u64>,
    /// The run that started this one as its child (`ctx.child`), if one did: it is told when
    /// this run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// An operator's request to cancel a run, as kept in its record.
///
/// # Examples
///
/// ```
/// use workflow_runtime::Cancellation;
/// let c = Cancellation::new("the customer withdrew the request");
/// assert!(!c.delivered);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cancellation {
    /// The operator's reason.
    pub reason: String,
    /// Whether the workflow has seen it: a run asleep when cancelled wakes at once and sees the
    /// cancellation at its next step or wait.
    pub delivered: bool,
}

impl Cancellation {
    /// A cancellation the workflow has not seen yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::Cancellation;
    /// assert_eq!(Cancellation::new("withdrawn").reason, "withdrawn");
    /// ```
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            delivered: false,
        }
    }
}

impl RunRecord {
    /// A record of workflow `workflow` at checkpoint 0 with this state, for tests of a
    /// storage backend and for the engine.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{RunStatus, store::RunRecord};
    /// let rec = RunRecord::new("checkout", serde_json::json!("Start"), 0);
    /// assert_eq!((rec.seq, rec.status), (0, RunStatus::Running));
    /// ```
    pub fn new(workflow: impl Into<String>, state: impl Into<StoredState>, now_ms: u64) -> Self {
        Self {
            format: ENVELOPE_FORMAT,
            workflow: workflow.into(),
            version: 1,
            layout_hash: 0,
            body_hash: 0,
            seq: 0,
            status: RunStatus::Running,
            state: state.into(),
            pending: None,
            output: None,
            input_hash: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            cancel: None,
            ended_at: None,
            erased_ms: None,
            parent: None,
        }
    }

    /// Whether the run will never move again (completed, failed, cancelled, terminated, or
    /// parked as incompatible).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{RunStatus, store::RunRecord};
    /// let mut rec = RunRecord::new("checkout", serde_json::json!("Start"), 0);
    /// assert!(!rec.is_finished());
    /// rec.status = RunStatus::Incompatible { reason: "layout changed".into() };
    /// assert!(rec.is_finished() && !rec.is_purgeable());
    /// ```
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status,
            RunStatus::Completed
                | RunStatus::Failed { .. }
                | RunStatus::Incompatible { .. }
                | RunStatus::Cancelled { .. }
                | RunStatus::Terminated { .. }
        )
    }

    /// Whether the run has ended for good and may be purged: finished, and not merely parked
    /// as incompatible (a parked run waits for code that fits it).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{RunStatus, store::RunRecord};
    /// let mut rec = RunRecord::new("checkout", serde_json::json!("Start"), 0);
    /// rec.status = RunStatus::Completed;
    /// assert!(rec.is_purgeable());
    /// ```
    pub fn is_purgeable(&self) -> bool {
        self.is_finished() && !matches!(self.status, RunStatus::Incompatible { .. })
    }

    /// The record an erasure leaves: status kind and times, without the state, output,
    /// pending command or any text that may quote data.
    pub(crate) fn erased(mut self, now_ms: u64) -> Self {
        let erased = || crate::trace::ERASED.to_owned();
        self.state = StoredState::default();
        self.output = None;
        self.pending = None;
        self.ended_at = None;
        match &mut self.status {
            RunStatus::Failed { message } => *message = erased(),
            RunStatus::Cancelled { reason } | RunStatus::Terminated { reason } => {
                *reason = erased();
            }
            _ => {}
        }
        if let Some(cancel) = &mut self.cancel {
            cancel.reason = erased();
        }
        self.erased_ms = Some(now_ms);
        self
    }

    /// The command the run waits on and must be indexed under: `None` once finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{RunStatus, store::RunRecord};
    /// let mut rec = RunRecord::new("checkout", serde_json::json!("Start"), 0);
    /// assert!(rec.indexed_command().is_none()); // nothing pending yet
    /// rec.status = RunStatus::Completed;
    /// assert!(rec.indexed_command().is_none());
    /// ```
    pub fn indexed_command(&self) -> Option<&Command> {
        if self.is_finished() {
            None
        } else {
            self.pending.as_ref()
        }
    }
}

/// A signal that arrived before a wait for it, kept in the run's inbox.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use serde_json::json;
/// let store = FileStore::open_memory()?;
/// for n in 1..=2 {
///     let mut write = CheckpointWrite::new("r-1");
///     write.buffer = Some(InboxEntry::new("note", json!(n), None));
///     store.commit(write).await?;
/// }
/// let inbox = store.inbox("r-1")?;
/// assert_eq!(inbox.iter().map(|(_, e)| e.payload.clone()).collect::<Vec<_>>(), [json!(1), json!(2)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InboxEntry {
    /// The signal's name.
    pub name: String,
    /// Its payload.
    pub payload: Value,
    /// Its de-duplication key, if it was sent with one.
    pub dedupe_key: Option<String>,
}

impl InboxEntry {
    /// A buffered signal.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::InboxEntry;
    /// let e = InboxEntry::new("approve", serde_json::json!(true), Some("k-1".into()));
    /// assert_eq!(e.dedupe_key.as_deref(), Some("k-1"));
    /// ```
    pub fn new(name: impl Into<String>, payload: Value, dedupe_key: Option<String>) -> Self {
        Self {
            name: name.into(),
            payload,
            dedupe_key,
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
