//! The workflow side of the model: what `#[workflow]` generates code against.

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{MigrationError, PayloadError};
use crate::retry::RetryPolicy;
use crate::step::{Persist, StepEntry, StepError};

/// What woke a run up; the input of one transition.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::{Command, Event, Transition};
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// // Drive the transition function by hand, no engine involved.
/// let mut ctx = WorkflowContext::new("o-1", 0, 1);
/// let Transition::Suspend(waiting, _) = checkout::advance(checkout::State::Start { amount: 40 }, Event::Start, &mut ctx) else {
///     panic!("the workflow waits first");
/// };
/// let Transition::Suspend(charging, Command::Step { name, .. }) =
///     checkout::advance(waiting, Event::signal(true), &mut ctx)
/// else {
///     panic!("then it charges");
/// };
/// assert_eq!(name, "charge");
/// let done = checkout::advance(charging, Event::step_ok::<charge>("r-40".into()), &mut ctx);
/// assert!(matches!(done, Transition::Complete(Ok(ref r)) if r == "r-40"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The run was just created from its `Start` state.
    Start,
    /// The pending step finished (its output as JSON) or failed.
    StepDone(Result<Value, StepError>),
    /// A signal arrived for the pending wait.
    Signal(Value),
    /// The pending wait's deadline passed.
    TimedOut,
    /// The pending sleep's deadline passed.
    Woke,
    /// Every step of the pending batch finished: their results, in the batch's order.
    BatchDone(Vec<Result<Value, StepError>>),
    /// Every child run of the pending [`Command::Children`] ended (or, for children started
    /// detached, was created): their outcomes in the command's order. A detached child's
    /// outcome is its run id, as a JSON string.
    ChildrenDone(Vec<Result<Value, crate::ChildError>>),
    /// An operator cancelled the run at its pending step or wait (`Engine::cancel`).
    Cancelled {
        /// The operator's reason.
        reason: String,
    },
}

impl Event {
    /// A successful step completion, typed; handy when driving a state by hand in a test.
    ///
    /// # Panics
    /// If the value cannot be encoded as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::{Command, Event, Transition};
    /// # #[function]
    /// # async fn charge(amount: u64) -> Result<String, StepError> {
    /// #     Ok(format!("receipt-{amount}"))
    /// # }
    /// # #[workflow]
    /// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    /// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
    /// #     if ok != Ok(true) {
    /// #         return Ok("cancelled".into());
    /// #     }
    /// #     Ok(ctx.step(charge, amount).await?)
    /// # }
    /// # fn main() {
    /// let ev = Event::step_ok::<charge>("receipt-1".to_owned());
    /// assert_eq!(ev, Event::StepDone(Ok(json!("receipt-1"))));
    /// # }
    /// ```
    pub fn step_ok<F: crate::Function>(output: F::Output) -> Self {
        Event::StepDone(Ok(
            serde_json::to_value(output).expect("step output encodes as JSON")
        ))
    }

    /// A failed step completion.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::{Command, Event, Transition};
    /// # #[function]
    /// # async fn charge(amount: u64) -> Result<String, StepError> {
    /// #     Ok(format!("receipt-{amount}"))
    /// # }
    /// # #[workflow]
    /// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    /// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
    /// #     if ok != Ok(true) {
    /// #         return Ok("cancelled".into());
    /// #     }
    /// #     Ok(ctx.step(charge, amount).await?)
    /// # }
    /// # fn main() {
    /// let mut ctx = WorkflowContext::new("o-1", 0, 2);
    /// let charging = checkout::State::Charge {};
    /// let out = checkout::advance(charging, Event::step_err(StepError::permanent("declined")), &mut ctx);
    /// assert!(matches!(out, Transition::Complete(Err(ref e)) if e.message == "declined"));
    /// # }
    /// ```
    pub fn step_err(error: StepError) -> Self {
        Event::StepDone(Err(error))
    }

    /// A signal payload, typed.
    ///
    /// # Panics
    /// If the value cannot be encoded as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::{Command, Event, Transition};
    /// # #[function]
    /// # async fn charge(amount: u64) -> Result<String, StepError> {
    /// #     Ok(format!("receipt-{amount}"))
    /// # }
    /// # #[workflow]
    /// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    /// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
    /// #     if ok != Ok(true) {
    /// #         return Ok("cancelled".into());
    /// #     }
    /// #     Ok(ctx.step(charge, amount).await?)
    /// # }
    /// # fn main() {
    /// assert_eq!(Event::signal(true), Event::Signal(json!(true)));
    /// # }
    /// ```
    pub fn signal<T: serde::Serialize>(payload: T) -> Self {
        Event::Signal(serde_json::to_value(payload).expect("signal payload encodes as JSON"))
    }
}

/// What a suspended run waits for; stored in the checkpoint next to the state.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::{Command, Event, Transition};
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// let mut ctx = WorkflowContext::new("o-1", 1_000, 1);
/// match checkout::advance(checkout::State::Start { amount: 40 }, Event::Start, &mut ctx) {
///     Transition::Suspend(_, Command::Wait { name, deadline_ms, .. }) => {
///         assert_eq!((name.as_str(), deadline_ms), ("confirm", 1_000 + 3_600_000));
///     }
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Run the named step with this input.
    Step {
        /// The step's `Function::NAME`.
        name: String,
        /// The step's input as JSON.
        input: Value,
        /// The policy the workflow chose for this call (`ctx.step(f, x).retry(policy)`);
        /// `None` uses the step's own ([`Function::RETRY`](crate::Function::RETRY)), as
        /// registered when the attempt runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<RetryPolicy>,
        /// The attempt to run next, from 1; the engine moves it on after a retryable failure.
        #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
        attempt: u32,
        /// The end of the backoff before `attempt`, milliseconds since the Unix epoch; `None`
        /// for an attempt that may start at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before_ms: Option<u64>,
    },
    /// Wait for a signal with this name until the absolute deadline.
    Wait {
        /// The signal's name.
        name: String,
        /// Absolute deadline, milliseconds since the Unix epoch.
        deadline_ms: u64,
        /// Caller-supplied metadata shown by `Engine::pending`.
        metadata: Value,
        /// For a wait on several signals (`ctx.wait_for_any`): every name that satisfies it,
        /// `name` first; empty for a wait on `name` alone. The first of them to arrive wins,
        /// and its payload reaches the workflow as `{ name: payload }`, serde's form of the
        /// enum variant that stands for the signal.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        any_of: Vec<String>,
    },
    /// Sleep until the absolute deadline.
    Sleep {
        /// Absolute deadline, milliseconds since the Unix epoch.
        deadline_ms: u64,
    },
    /// Run several steps at once (`ctx.join`, `ctx.fan_out`); each result is stored here as
    /// it arrives, and the workflow continues once all are in.
    Batch {
        /// The steps, in the order the workflow receives their results.
        items: Vec<BatchItem>,
        /// How many may run at the same time; 0 for no bound.
        #[serde(default, skip_serializing_if = "is_zero")]
        limit: u32,
    },
    /// Start child runs of other registered workflows (`ctx.child`, `ctx.start_child`,
    /// `ctx.fan_out_children`). The children are created in the same commit as the checkpoint
    /// that suspends here; each outcome is stored here as its child ends, and the workflow
    /// continues once all are in. Detached children are not awaited: the workflow continues
    /// in that same checkpoint with their run ids.
    Children {
        /// The children, in the order the workflow receives their outcomes.
        items: Vec<crate::ChildItem>,
        /// Started detached: nothing awaits them, and cancelling the parent leaves them alone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        detached: bool,
    },
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One step of a [`Command::Batch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem {
    /// The step's `Function::NAME`.
    pub name: String,
    /// The step's input as JSON.
    pub input: Value,
    /// The policy chosen for this call, `None` for the step's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// The step's result once it is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Result<Value, StepError>>,
}

impl BatchItem {
    /// An item that runs step `name` with `input`, no result yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::BatchItem;
    /// let item = BatchItem::new("load_ticket", serde_json::json!("T-1"));
    /// assert!(item.result.is_none());
    /// ```
    pub fn new(name: impl Into<String>, input: Value) -> Self {
        Self {
            name: name.into(),
            input,
            retry: None,
            result: None,
        }
    }
}

impl Command {
    /// Whether this command is a wait that a signal named `signal` satisfies.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Command;
    /// let wait = Command::wait_any(&["approve", "reject"], 60_000, serde_json::Value::Null);
    /// assert!(wait.waits_for("reject"));
    /// assert!(!wait.waits_for("cancel"));
    /// ```
    pub fn waits_for(&self, signal: &str) -> bool {
        match self {
            Command::Wait { name, any_of, .. } if any_of.is_empty() => name == signal,
            Command::Wait { any_of, .. } => any_of.iter().any(|n| n == signal),
            _ => false,
        }
    }

    /// The names a wait is satisfied by (one for a plain wait); empty for a step or a sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Command;
    /// let wait = Command::wait_any(&["approve", "reject"], 60_000, serde_json::Value::Null);
    /// assert_eq!(wait.signal_names(), ["approve", "reject"]);
    /// ```
    pub fn signal_names(&self) -> Vec<String> {
        match self {
            Command::Wait { name, any_of, .. } if any_of.is_empty() => vec![name.clone()],
            Command::Wait { any_of, .. } => any_of.clone(),
            _ => Vec::new(),
        }
    }

    /// A wait for the signal `name` until `deadline_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Command;
    /// assert!(Command::wait("approve", 1_000, serde_json::Value::Null).waits_for("approve"));
    /// ```
    pub fn wait(name: impl Into<String>, deadline_ms: u64, metadata: Value) -> Self {
        Command::Wait {
            name: name.into(),
            deadline_ms,
            metadata,
            any_of: Vec::new(),
        }
    }

    /// A wait that the first of the signals `names` satisfies, until `deadline_ms`.
    ///
    /// # Panics
    /// If `names` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Command;
    /// let wait = Command::wait_any(&["approve", "reject"], 1_000, serde_json::Value::Null);
    /// assert!(wait.waits_for("approve"));
    /// ```
    pub fn wait_any(names: &[&str], deadline_ms: u64, metadata: Value) -> Self {
        assert!(!names.is_empty(), "a wait needs at least one signal name");
        Command::Wait {
            name: names[0].to_owned(),
            deadline_ms,
            metadata,
            any_of: names.iter().map(|&n| n.to_owned()).collect(),
        }
    }

    /// The event that delivers the signal `signal` with `payload` to this wait: the payload
    /// itself for a plain wait, `{ signal: payload }` for a wait on several names.
    pub(crate) fn signal_event(&self, signal: &str, payload: Value) -> Event {
        match self {
            Command::Wait { any_of, .. } if !any_of.is_empty() => {
                let mut tagged = serde_json::Map::new();
                tagged.insert(signal.to_owned(), payload);
                Event::Signal(Value::Object(tagged))
            }
            _ => Event::Signal(payload),
        }
    }
}

fn first_attempt() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_first_attempt(attempt: &u32) -> bool {
    *attempt == 1
}

/// The result of one call to a workflow's transition function.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::{Command, Event, Transition};
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// let mut ctx = WorkflowContext::new("o-1", 0, 1);
/// let Transition::Suspend(waiting, _) = checkout::advance(checkout::State::Start { amount: 40 }, Event::Start, &mut ctx) else {
///     panic!("the workflow waits first");
/// };
/// // A payload of the wrong type is refused; the state stays as it was.
/// let refused = checkout::advance(waiting, Event::signal("yes"), &mut ctx);
/// assert!(matches!(refused, Transition::Reject(ref m) if m.contains("does not decode into `bool`")));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Transition<S, O> {
    /// The run stopped at a suspension point: checkpoint the state and carry out the command.
    Suspend(S, Command),
    /// The run finished with this output.
    Complete(O),
    /// The event does not fit the state (for example a signal payload of the wrong shape); the
    /// state is unchanged and the event is refused with this message.
    Reject(String),
}

/// The error a waited signal produces when its deadline passes first.
///
/// Match on it to handle the timeout, or let `?` turn it into a [`WorkflowError`]; see
/// [`WorkflowContext::wait_for_signal`].
///
/// ```
/// use workflow_runtime::{WaitError, WorkflowError};
/// let e: WorkflowError = WaitError::TimedOut.into();
/// assert_eq!(e.message, "timed out waiting for a signal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum WaitError {
    /// No signal arrived before the deadline.
    #[error("timed out waiting for a signal")]
    TimedOut,
    /// An operator cancelled the run while it waited (`Engine::cancel`); the run ends
    /// `Cancelled` whatever the workflow returns, after the steps it runs to compensate.
    #[error("the run was cancelled while waiting for a signal")]
    Cancelled,
}

/// A general-purpose workflow error; `?` converts step and wait errors into it.
///
/// A workflow may return any storable error type instead; this one suits most.
///
/// ```
/// use serde_json::json;
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn ship(ctx: &mut WorkflowContext, weight_g: u64) -> Result<(), WorkflowError> {
///     if weight_g > 30_000 {
///         return Err(WorkflowError {
///             message: "too heavy for parcel post".into(),
///             details: Some(json!({ "weight_g": weight_g })),
///         });
///     }
///     Err("no carrier configured".into())
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WorkflowError {
    /// Human-readable description.
    pub message: String,
    /// Optional structured details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl WorkflowError {
    /// An error with the given message.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::WorkflowError;
    /// let e = WorkflowError::new("no carrier accepts the parcel");
    /// assert_eq!(e.to_string(), "no carrier accepts the parcel");
    /// assert!(e.details.is_none());
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: None,
        }
    }
}

impl From<StepError> for WorkflowError {
    fn from(e: StepError) -> Self {
        Self {
            message: e.message,
            details: e.details,
        }
    }
}

impl From<WaitError> for WorkflowError {
    fn from(e: WaitError) -> Self {
        Self::new(e.to_string())
    }
}

impl From<String> for WorkflowError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for WorkflowError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// The return type of a workflow: `Result<T, E>` with both sides storable.
///
/// ```
/// use workflow_runtime::WorkflowOutput;
/// let out: Result<u64, String> = Ok(3);
/// assert!(out.is_success());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow output",
    label = "a workflow returns `Result<T, E>` where `T` and `E` implement serde's `Serialize` and `Deserialize`"
)]
pub trait WorkflowOutput: Persist {
    /// Whether the run succeeded.
    fn is_success(&self) -> bool;
}

impl<T: Persist, E: Persist> WorkflowOutput for Result<T, E> {
    fn is_success(&self) -> bool {
        self.is_ok()
    }
}

/// What workflow code sees of the engine between suspension points, and what it suspends
/// through: [`step`](WorkflowContext::step), [`wait_for_signal`](WorkflowContext::wait_for_signal),
/// [`wait_for_any`](WorkflowContext::wait_for_any), [`sleep`](WorkflowContext::sleep) and the
/// parallel forms [`fan_out`](WorkflowContext::fan_out) and
/// [`fan_out_all`](WorkflowContext::fan_out_all), plus `ctx.join((f, x), (g, y), ..)` and
/// `ctx.join_all(..)`, which the `#[workflow]` macro recognises for any number of steps (see
/// the README, "Parallel steps"), and the child runs of other workflows:
/// [`child`](WorkflowContext::child), [`start_child`](WorkflowContext::start_child) and
/// [`fan_out_children`](WorkflowContext::fan_out_children).
///
/// Code between suspension points may run again after a crash, so it reads time from the
/// context, not from the system clock: the context's time is the transition's.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn stamp(ctx: &mut WorkflowContext) -> Result<String, WorkflowError> {
///     Ok(format!("{} at {}", ctx.run_id(), ctx.now_millis()))
/// }
///
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let clock = ManualClock::new(1_000);
/// let engine = Engine::builder().register(stamp).clock(clock).open_in_memory().await?;
/// let run = engine.start(stamp, "s-1", ()).await?;
/// assert_eq!(run.result().await?, Ok("s-1 at 1000".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WorkflowContext {
    run_id: String,
    now_ms: u64,
    seq: u64,
}

impl WorkflowContext {
    /// A context for one transition; the engine builds it, tests driving `advance` may too.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("o-1", 1_000, 4);
    /// assert_eq!((ctx.run_id(), ctx.now_millis(), ctx.seq()), ("o-1", 1_000, 4));
    /// ```
    pub fn new(run_id: impl Into<String>, now_ms: u64, seq: u64) -> Self {
        Self {
            run_id: run_id.into(),
            now_ms,
            seq,
        }
    }

    /// The run's id.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("o-1", 0, 1).run_id(), "o-1");
    /// ```
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The engine clock's time when this transition started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("o-1", 1_500, 1);
    /// assert_eq!(ctx.now(), UNIX_EPOCH + Duration::from_millis(1_500));
    /// ```
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms)
    }

    /// [`WorkflowContext::now`] as milliseconds since the Unix epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("o-1", 1_500, 1).now_millis(), 1_500);
    /// ```
    pub fn now_millis(&self) -> u64 {
        self.now_ms
    }

    /// The sequence number of the checkpoint this transition will write.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("o-1", 0, 7).seq(), 7);
    /// ```
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The absolute deadline `d` from this transition's time, in milliseconds since the Unix
    /// epoch; saturates rather than wrapping for an absurd duration.
    pub(crate) fn deadline(&self, d: Duration) -> u64 {
        self.now_ms
            .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// One typed migration between two versions of a workflow, as `#[workflow(migrate_from = ..)]`
/// declares it; `migrate` decodes the old state, converts it with the user's `TryFrom`, and
/// encodes the new one.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use workflow_runtime::prelude::*;
///
/// #[workflow(name = "order", version = 1)]
/// async fn order_v1(ctx: &mut WorkflowContext, cents: u64) -> Result<u64, WorkflowError> {
///     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(60), ()).await?;
///     Ok(if ok { cents } else { 0 })
/// }
///
/// // v2 keeps the amount in euros; runs waiting in v1 are converted when the engine loads them.
/// #[workflow(name = "order", version = 2, migrate_from = order_v1)]
/// async fn order_v2(ctx: &mut WorkflowContext, euros: f64) -> Result<u64, WorkflowError> {
///     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(60), ()).await?;
///     Ok(if ok { (euros * 100.0) as u64 } else { 0 })
/// }
///
/// impl TryFrom<order_v1::State> for order_v2::State {
///     type Error = String;
///     fn try_from(old: order_v1::State) -> Result<Self, String> {
///         match old {
///             order_v1::State::AwaitingConfirm { cents } => {
///                 Ok(order_v2::State::AwaitingConfirm { euros: cents as f64 / 100.0 })
///             }
///             other => Err(format!("no v2 state for {other:?}")),
///         }
///     }
/// }
///
/// # fn main() {
/// let chain = <order_v2::Def as Workflow>::migrations();
/// assert_eq!((chain[0].from_version, chain[0].to_version), (1, 2));
/// let v1_state = serde_json::to_value(order_v1::State::AwaitingConfirm { cents: 250 }).unwrap();
/// let v2_state = (chain[0].migrate)(v1_state).unwrap();
/// assert_eq!(v2_state, json!({ "AwaitingConfirm": { "euros": 2.5 } }));
/// // A state the conversion refuses gives a MigrationError; the run would be parked, untouched.
/// let refused = (chain[0].migrate)(json!("Start")).unwrap_err();
/// assert!(refused.message().starts_with("the v1 state does not decode") || refused.message().starts_with("the migration from v1 to v2 refused"));
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct Migration {
    /// The version it migrates from.
    pub from_version: u32,
    /// The layout fingerprint it migrates from.
    pub from_layout: u64,
    /// The version it produces.
    pub to_version: u32,
    /// The layout fingerprint it produces.
    pub to_layout: u64,
    /// The conversion, on stored JSON.
    pub migrate: fn(Value) -> Result<Value, MigrationError>,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Migration(v{} {:016x} -> v{} {:016x})",
            self.from_version, self.from_layout, self.to_version, self.to_layout
        )
    }
}

impl Migration {
    /// The chain that leads from the state written at `from` (version, layout) to `to`, in the
    /// order to apply it; `Err` names the (version, layout) no migration leaves from.
    pub(crate) fn path(
        migrations: &[Migration],
        from: (u32, u64),
        to: (u32, u64),
    ) -> Result<Vec<Migration>, (u32, u64)> {
        let mut plan = Vec::new();
        let mut at = from;
        while at != to {
            // More steps than migrations means the chain loops; it can never arrive.
            let next = migrations
                .iter()
                .find(|m| (m.from_version, m.from_layout) == at)
                .filter(|_| plan.len() < migrations.len())
                .ok_or(at)?;
            plan.push(*next);
            at = (next.to_version, next.to_layout);
        }
        Ok(plan)
    }

    /// Puts a stored state through a chain of migrations.
    pub(crate) fn apply_all(plan: &[Migration], mut state: Value) -> Result<Value, MigrationError> {
        for m in plan {
            state = (m.migrate)(state)?;
        }
        Ok(state)
    }
}

/// A workflow compiled by `#[workflow]`; the value named like the function implements it.
///
/// Implemented only by generated code. Name it in code generic over workflows, or to read
/// what the macro recorded.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow(name = "review", version = 2)]
/// async fn review(ctx: &mut WorkflowContext, doc: String) -> Result<bool, WorkflowError> {
///     let ok = ctx.wait_for_signal::<bool>("verdict", Duration::from_secs(60), ()).await?;
///     Ok(ok)
/// }
///
/// fn describe<W: Workflow>(_: W) -> String {
///     format!("{} v{} waits for {:?}", W::NAME, W::VERSION, W::SIGNALS.unwrap_or_default())
/// }
///
/// # fn main() {
/// assert_eq!(describe(review), r#"review v2 waits for ["verdict"]"#);
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow",
    label = "not a `#[workflow]`",
    note = "`ctx.child(w, input)`, `ctx.start_child(w, input)` and `ctx.fan_out_children(w, items)` take the name of a `#[workflow] async fn` registered with the engine; a `#[function]` is a step, called with `ctx.step(f, input)`"
)]
pub trait Workflow: Copy + Send + Sync + 'static {
    /// The stored name of the workflow.
    const NAME: &'static str;
    /// The workflow's version (`#[workflow(version = N)]`, default 1).
    const VERSION: u32;
    /// Fingerprint of the stored layout: state variants, their fields and types, the input
    /// and output types and the signatures of the steps called.
    const LAYOUT_HASH: u64;
    /// Fingerprint of the whole function body.
    const BODY_HASH: u64;
    /// The state graph as a Mermaid `stateDiagram-v2` (`#[workflow]` derives it from the body:
    /// a node per stored state, an edge where the body goes from one to the next). Empty for a
    /// workflow written by hand.
    const MERMAID: &'static str = "";
    /// The workflow's input: its single parameter after the context, a tuple of several, or `()`.
    type Input: Persist;
    /// The workflow's `Result<T, E>`.
    type Output: WorkflowOutput;
    /// The state enum (`name::State`).
    type State: Persist + Clone + Debug;
    /// The state a new run starts in.
    fn start(input: Self::Input) -> Self::State;
    /// The transition function: runs the workflow from `state` with `event` up to its next
    /// suspension point or its end.
    fn advance(
        state: Self::State,
        event: Event,
        ctx: &mut WorkflowContext,
    ) -> Transition<Self::State, Self::Output>;
    /// Every step the workflow calls.
    fn steps() -> Vec<StepEntry>;
    /// Every signal name the workflow waits on, sorted, when every `wait_for_signal` names
    /// its signal with a string literal; `None` when some name is computed at run time, and
    /// then any name is accepted. The engine refuses a signal whose name no registered
    /// version of the run's workflow waits on, so that a mistyped name is an error instead of
    /// a signal buffered forever.
    const SIGNALS: Option<&'static [&'static str]> = None;
    /// Checks a payload against the type waited for under `name`, when the workflow names the
    /// signal literally; `None` when no wait has that name.
    fn check_signal(name: &str, payload: &Value) -> Option<Result<(), PayloadError>>;
    /// The name of the state's variant.
    fn variant_name(state: &Self::State) -> &'static str;
    /// The migrations that bring older versions' states to this one, newest first
    /// (`#[workflow(migrate_from = previous)]`, chained through the previous version's own).
    fn migrations() -> Vec<Migration> {
        Vec::new()
    }
}
