//! Durable workflows for Rust, compiled to explicit state machines and checkpointed into an
//! embedded database file (or any other [`store::Store`]).
//!
//! Mark steps (side effects) with [`macro@function`] and the orchestration with
//! [`macro@workflow`]; run them with an [`Engine`]. The workflow macro compiles the body into
//! `name::State`, an enum with one variant per suspension point holding the locals still
//! needed after it, and `name::advance`, a synchronous transition function. The engine
//! checkpoints the state into its store at every step and every signal wait, so a process can die
//! at any moment and resume from the last checkpoint.
//!
//! ```no_run
//! use workflow_runtime::prelude::*;
//!
//! #[function]
//! async fn charge(ctx: StepContext, amount: u64) -> Result<String, StepError> {
//!     // Forward the key: a retry or a restart reaches the provider with the same one.
//!     Ok(format!("paid {amount} with key {}", ctx.idempotency_key()))
//! }
//!
//! #[workflow]
//! async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
//!     let confirmed = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
//!     if confirmed != Ok(true) {
//!         return Ok("cancelled".into());
//!     }
//!     let receipt = ctx.step(charge, amount).await?;
//!     Ok(receipt)
//! }
//!
//! # fn main() {}
//! # async fn run() -> Result<(), EngineError> {
//! let engine = Engine::builder().register(checkout).open("shop.db").await?;
//! let run = engine.start(checkout, "order-17", 4_000).await?;
//! engine.signal("order-17", "confirm", true).await?;
//! println!("{:?}", run.result().await?);
//! # Ok(()) }
//! ```
//!
//! # Testing workflows
//!
//! [`testing::TestEngine`] runs workflows on in-memory storage with a manual clock, replaces
//! steps with doubles, records every checkpoint, restarts on the same store, and resumes from a
//! recorded checkpoint or a `name::State` built by hand. [`testing::crash_test`] crashes a run
//! just before and just after every commit and checks that it still ends the same way, and
//! [`testing::golden`] keeps stored states in fixture files so an incompatible change fails
//! `cargo test`. A complete test:
//!
//! ```
//! use workflow_runtime::prelude::*;
//! use workflow_runtime::testing::{Script, TestEngine, crash_test};
//!
//! #[function]
//! async fn charge(amount: u64) -> Result<String, StepError> {
//!     Ok(format!("receipt-{amount}"))
//! }
//!
//! #[workflow]
//! async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
//!     let confirmed = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
//!     if confirmed != Ok(true) {
//!         return Ok("cancelled".into());
//!     }
//!     let receipt = ctx.step(charge, amount).await?;
//!     Ok(receipt)
//! }
//!
//! # fn main() {
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // The payment provider is a double; the clock moves by hand.
//! let te = TestEngine::builder()
//!     .register(checkout)
//!     .replace::<charge>(|_ctx, amount| Ok(format!("fake-{amount}")))
//!     .build()
//!     .await;
//! let paid = te.start(checkout, "order-1", 40).await.unwrap();
//! te.signal("order-1", "confirm", true).await.unwrap();
//! assert_eq!(paid.result().await.unwrap(), Ok("fake-40".to_owned()));
//! assert_eq!(te.calls_of::<charge>("order-1"), 1);
//!
//! let lapsed = te.start(checkout, "order-2", 15).await.unwrap();
//! te.advance(Duration::from_secs(3_600)).await;
//! assert_eq!(lapsed.result().await.unwrap(), Ok("cancelled".to_owned()));
//!
//! // Every checkpoint the run wrote, decoded with the current code.
//! let states: Vec<String> = te.checkpoints("order-1").iter().map(|c| c.variant()).collect();
//! assert_eq!(states, ["AwaitingConfirm", "Charge", "Charge"]);
//!
//! // A crash before and after each commit; the outcome never changes.
//! let report = crash_test(
//!     TestEngine::builder().register(checkout),
//!     checkout,
//!     40,
//!     Script::new().signal("confirm", true),
//! )
//! .await;
//! report.assert_ok();
//! # });
//! # }
//! ```
//!
//! # Errors
//!
//! Each operation returns the error of its own family: [`Engine::start`] a [`StartError`],
//! [`Engine::send`] and [`Engine::signal`] a [`SignalError`], [`RunHandle::result`] a
//! [`ResultError`], opening an [`OpenError`]. A storage failure is a [`StoreError`] and an
//! encoding failure a [`CodecError`], each with its cause as the
//! [`source`](std::error::Error::source), so a full disk is matchable:
//!
//! ```
//! use workflow_runtime::store::StoreError;
//! use workflow_runtime::{SignalError, SignalOutcome};
//!
//! fn describe(answer: Result<SignalOutcome, SignalError>) -> String {
//!     match answer {
//!         Ok(outcome) => format!("{outcome:?}"),
//!         Err(SignalError::RunFinished { status, .. }) => format!("too late: {status}"),
//!         Err(SignalError::Storage(StoreError::NoSpace { .. })) => {
//!             "the disk is full; nothing was recorded".to_owned()
//!         }
//!         Err(e) => e.to_string(),
//!     }
//! }
//! ```
//!
//! [`EngineError`] is the umbrella every family converts into, variant for variant, for `?`.
//! Every error enum, and every public enum that can grow, is `#[non_exhaustive]`. Where
//! generated code meets the engine, a payload that does not fit its wait is a [`PayloadError`]
//! and a refused `migrate_from` conversion a [`MigrationError`]; no public function returns
//! `Result<_, String>`.
//!
//! # Writing a storage backend
//!
//! The engine reaches persistence only through the [`store::Store`] trait: reads of runs,
//! inboxes, traces, dedupe keys and pending waits; claims of ready runs and due timers with an
//! owner and a lease; and one call that commits a checkpoint durably and acknowledges it (or
//! refuses it, for instance because the writer's lease was taken over). The store derives its
//! index rows from each record, so the engine knows nothing of tables. [`store::FileStore`] is
//! the embedded implementation; [`EngineBuilder::open_store`] opens an engine over any other.
//! The [`store`] module documents the contract, and [`testing::conformance`] is the suite a
//! backend must pass, instantiated with [`store_conformance!`].
#![warn(unreachable_pub)]

extern crate self as workflow_runtime;

mod authoring;
mod children;
mod clock;
mod codec;
mod engine;
mod error;
mod model;
pub mod payload;
mod retry;
pub mod secret;
mod signals;
mod step;
pub mod store;
mod stored_state;
mod telemetry;
pub mod testing;
mod timers;
mod trace;
mod types;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;

pub use authoring::{FanOutAllPoint, FanOutPoint, SleepPoint, StepFn, StepPoint, WaitPoint};
pub use children::{
    ChildError, ChildErrorKind, ChildItem, ChildPoint, ChildrenPoint, StartChildPoint,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    COMMIT_LATENCY_BUCKETS, DEFAULT_MAX_PAYLOAD_BYTES, Engine, EngineBuilder, Histogram,
    IncompatibleRun, LeaseSettings, MAX_PAGE, Metrics, PendingWait, Retention, RunDetail,
    RunFilter, RunHandle, RunPage, RunStatus, RunSummary, Signal, SignalOutcome,
    SignalWithStartError, VersionSummary,
};
pub use engine::{
    CatchUp, Overlap, SCHEDULE_WORKFLOW, Schedule, ScheduleError, ScheduleInfo, schedule_run_id,
};
pub use error::{
    CodecError, EngineError, MigrationError, OpenError, OpsError, PayloadError, ResultError,
    SignalError, StartError, StoreError,
};
pub use model::{WaitError, Workflow, WorkflowContext, WorkflowError, WorkflowOutput};
pub use retry::{PolicyError, RetryPolicy};
pub use secret::Secret;
pub use signals::VariantsError;
pub use step::{Function, Persist, StepContext, StepError, StepErrorKind};
pub use trace::{TraceEvent, TraceKind, format_time_ms};
pub use types::Cancellation;
pub use workflow_macros::{function, workflow};

/// Everything a workflow author needs: `use workflow_runtime::prelude::*;`.
///
/// The macros, the contexts and errors a workflow and its steps see, the engine and what its
/// calls return, [`RetryPolicy`], and `json!` and [`Duration`](std::time::Duration) for signal metadata and
/// timeouts.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[function]
/// async fn greet(name: String) -> Result<String, StepError> {
///     Ok(format!("hello, {name}"))
/// }
///
/// #[workflow]
/// async fn hello(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
///     Ok(ctx.step(greet, name).await?)
/// }
/// # fn main() {}
/// ```
pub mod prelude {
    pub use crate::{
        ChildError, ChildErrorKind, Engine, EngineBuilder, EngineError, Function, ManualClock,
        PendingWait, RetryPolicy, RunHandle, RunStatus, Secret, Signal, SignalOutcome, StepContext,
        StepError, StepErrorKind, TraceEvent, WaitError, Workflow, WorkflowContext, WorkflowError,
        function, workflow,
    };
    pub use serde_json::json;
    pub use std::time::Duration;
}
