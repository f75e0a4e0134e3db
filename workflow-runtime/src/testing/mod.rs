//! Testing workflows with plain `cargo test`: no server, no files, no waiting.
//!
//! - [`TestEngine`]: an engine on in-memory storage with a [`ManualClock`] (jump 7 days in
//!   microseconds), test doubles for `#[function]` steps, helpers that run until the engine is
//!   idle, a log of every step call and every checkpoint a run wrote, restarts on the same
//!   store, and runs placed at any checkpoint (recorded, or a `name::State` built by hand).
//! - [`crash_test`]: runs a workflow with a script of signals and clock moves, then crashes it
//!   just before and just after every commit, restarts, finishes the script and checks that the
//!   outcome is the same and that no step ran under an idempotency key the crash-free run never
//!   used.
//! - [`MemoryDisk`]: the in-memory storage a test engine runs on, shared across restarts, whose
//!   writes can be made to fail like a full disk
//!   ([`FileStore::open_disk`](crate::store::FileStore::open_disk)).
//! - [`Hooks`]: the [`Instrument`] behind all of this, for an engine built by hand
//!   ([`EngineBuilder::instrument`]), with [`settle`] to wait for quiet.
//! - [`conformance`]: the tests every storage backend must pass.
//! - [`golden`]: checkpoints written to fixture files and checked against the current code, so
//!   an incompatible change to a stored state fails `cargo test`.
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
//!     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
//!     if ok != Ok(true) {
//!         return Ok("cancelled".into());
//!     }
//!     let receipt = ctx.step(charge, amount).await?;
//!     Ok(receipt)
//! }
//!
//! # fn main() {
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let te = TestEngine::builder()
//!     .register(checkout)
//!     .replace::<charge>(|_ctx, amount| Ok(format!("fake-{amount}")))
//!     .build()
//!     .await;
//! let run = te.start(checkout, "order-1", 40).await.unwrap();
//! te.advance(Duration::from_secs(3_600)).await; // the confirmation window passes
//! assert_eq!(run.result().await.unwrap(), Ok("cancelled".to_owned()));
//!
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

pub mod conformance;
mod crash;
pub mod golden;
mod hooks;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use self::crash::{CrashCase, CrashReport, Script, ScriptAction, crash_test};
pub use self::hooks::Hooks;
/// The transition function's vocabulary, for tests that drive `name::advance` by hand or
/// check what a checkpoint waits for.
pub use crate::children::ChildItem;
use crate::clock::ManualClock;
pub use crate::engine::hooks::{CommittedCheckpoint, CrashMoment, Instrument, StepDouble};
use crate::error::CodecError;
pub use crate::model::{BatchItem, Command, Event, Transition};
use crate::step::DataMap;
use crate::store::FileStore;
pub use crate::store::{CutMode, CutReport, DiskFault, DiskFaults, MemoryDisk, PowerLossDisk};
use crate::{
    Engine, EngineBuilder, EngineError, Function, RunHandle, Signal, SignalError, SignalOutcome,
    StartError, StepContext, StepError, Workflow,
};

/// One step invocation as a test engine saw it.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
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
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let te = TestEngine::builder().register(checkout).build().await;
/// te.start(checkout, "o-1", 40).await?;
/// te.signal("o-1", "confirm", true).await?;
/// let call = &te.step_calls()[0];
/// assert_eq!((call.step.as_str(), call.attempt), ("charge", 1));
/// assert_eq!(call.input, json!(40));
/// assert_eq!(call.result, Ok(json!("receipt-40")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepCall {
    /// The run.
    pub run_id: String,
    /// The step's name.
    pub step: String,
    /// The invocation's idempotency key.
    pub idempotency_key: String,
    /// The attempt.
    pub attempt: u32,
    /// The input, as JSON.
    pub input: Value,
    /// The output as JSON, or the error.
    pub result: Result<Value, StepError>,
}

#[derive(Debug, Default)]
struct Log {
    checkpoints: Vec<CommittedCheckpoint>,
    steps: Vec<StepCall>,
}

type Register = Arc<dyn Fn(EngineBuilder) -> EngineBuilder + Send + Sync>;

/// What a test engine is built from; kept to build it again after a restart.
#[derive(Clone, Default)]
struct Setup {
    workflows: Vec<Register>,
    /// The real steps of the registered workflows.
    steps: HashMap<String, StepDouble>,
    /// Test doubles, by step name.
    doubles: HashMap<String, StepDouble>,
    /// The steps' dependencies (`EngineBuilder::data`).
    data: DataMap,
    /// The payload codec (`EngineBuilder::payload_codec`).
    codec: Option<Arc<dyn crate::payload::PayloadCodec>>,
}

/// Configures a [`TestEngine`].
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
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
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let te = TestEngine::builder()
///     .register(checkout)
///     .replace::<charge>(|_ctx, amount| Ok(format!("fake-{amount}")))
///     .start_at_ms(1_700_000_000_000)
///     .build()
///     .await;
/// assert_eq!(te.now_ms(), 1_700_000_000_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct TestEngineBuilder {
    setup: Setup,
    start_ms: u64,
    crash: Option<(u64, CrashMoment)>,
}

impl std::fmt::Debug for TestEngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngineBuilder")
            .field("doubles", &self.setup.doubles.keys().collect::<Vec<_>>())
            .field("start_ms", &self.start_ms)
            .finish_non_exhaustive()
    }
}

impl TestEngineBuilder {
    /// Registers a workflow.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// assert_eq!(te.engine().workflows(), ["checkout"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn register<W: Workflow>(mut self, workflow: W) -> Self {
        self.setup
            .workflows
            .push(Arc::new(move |b: EngineBuilder| b.register(workflow)));
        for entry in W::steps() {
            let call = entry.call;
            self.setup.steps.insert(
                entry.name.to_owned(),
                Arc::new(move |ctx, input| call(ctx, input)),
            );
        }
        self
    }

    /// Replaces the step `F` with `double` for this engine: the workflow calls `double` with
    /// the step's typed input wherever it calls `F`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder()
    ///     .register(checkout)
    ///     .replace::<charge>(|_ctx, _amount| Err(StepError::permanent("card declined")))
    ///     .build()
    ///     .await;
    /// let run = te.start(checkout, "o-1", 40).await?;
    /// te.signal("o-1", "confirm", true).await?;
    /// assert_eq!(run.result().await?, Err(WorkflowError::new("card declined")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn replace<F: Function>(
        self,
        double: impl Fn(StepContext, F::Input) -> Result<F::Output, StepError> + Send + Sync + 'static,
    ) -> Self {
        let double = Arc::new(double);
        self.replace_async::<F, _>(move |ctx, input| {
            let out = double(ctx, input);
            async move { out }
        })
    }

    /// Replaces the step `F` with an async `double` (one that waits, or fails after a delay).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder()
    ///     .register(checkout)
    ///     .replace_async::<charge, _>(|ctx, amount| async move {
    ///         // A double may await, and sees the real step's context.
    ///         tokio::task::yield_now().await;
    ///         Ok(format!("{amount} under {}", ctx.idempotency_key()))
    ///     })
    ///     .build()
    ///     .await;
    /// let run = te.start(checkout, "o-1", 40).await?;
    /// te.signal("o-1", "confirm", true).await?;
    /// assert!(run.result().await?.unwrap().starts_with("40 under "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn replace_async<F: Function, Fut>(
        mut self,
        double: impl Fn(StepContext, F::Input) -> Fut + Send + Sync + 'static,
    ) -> Self
    where
        Fut: Future<Output = Result<F::Output, StepError>> + Send + 'static,
    {
        let double = Arc::new(double);
        let erased: StepDouble = Arc::new(move |ctx, input: Value| {
            let double = double.clone();
            Box::pin(async move {
                let input: F::Input = serde_json::from_value(input).map_err(|e| {
                    StepError::permanent(format!("the input of `{}` does not decode: {e}", F::NAME))
                })?;
                let out = double(ctx, input).await?;
                serde_json::to_value(out).map_err(|e| {
                    StepError::permanent(format!(
                        "the output of `{}` does not encode: {e}",
                        F::NAME
                    ))
                })
            })
        });
        self.setup.doubles.insert(F::NAME.to_owned(), erased);
        self
    }

    /// Gives every step (and every double) a dependency of type `T`, as
    /// [`EngineBuilder::data`] does; it survives [`TestEngine::restart`].
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// use workflow_runtime::testing::TestEngine;
    ///
    /// struct Greeting(&'static str);
    ///
    /// #[function]
    /// async fn greet(ctx: StepContext, name: String) -> Result<String, StepError> {
    ///     Ok(format!("{}, {name}", ctx.data::<Greeting>()?.0))
    /// }
    ///
    /// #[workflow]
    /// async fn hello(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    ///     Ok(ctx.step(greet, name).await?)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(hello).data(Greeting("Hello")).build().await;
    /// let run = te.start(hello, "h-1", "Ada".to_owned()).await.unwrap();
    /// assert_eq!(run.result().await.unwrap(), Ok("Hello, Ada".to_owned()));
    /// # });
    /// # }
    /// ```
    #[must_use]
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.setup.data.insert(Arc::new(value));
        self
    }

    /// Seals every stored payload with `codec`, as
    /// [`EngineBuilder::payload_codec`] does; kept across restarts and in every engine a
    /// [`crash_test`] builds from this builder.
    #[must_use]
    pub fn payload_codec(mut self, codec: impl crate::payload::PayloadCodec) -> Self {
        self.setup.codec = Some(Arc::new(codec));
        self
    }

    /// Starts the manual clock at this time (milliseconds since the Unix epoch); the default is
    /// 2026-01-01T00:00:00Z.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).start_at_ms(0).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// // The wait's deadline is an hour after the clock's start.
    /// assert_eq!(te.engine().pending()?[0].deadline_ms, 3_600_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn start_at_ms(mut self, ms: u64) -> Self {
        self.start_ms = ms;
        self
    }

    /// Makes the engine stop as if the process died at its `commit`-th commit (counting from
    /// 1, since the last restart), just before or just after it is durable; then
    /// [`TestEngine::crashed`] is true and [`TestEngine::restart`] reopens the same store. For
    /// crash tests of operations [`crash_test`] does not script.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::{CrashMoment, TestEngine};
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext) -> Result<bool, WorkflowError> {
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), ()).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let mut te = TestEngine::builder().register(approval).crash_at(1, CrashMoment::AfterCommit).build().await;
    /// assert!(te.engine().start(approval, "a-1", ()).await.is_err());
    /// assert!(te.crashed());
    /// te.restart().await;
    /// assert!(matches!(te.engine().status("a-1")?, RunStatus::Waiting { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn crash_at(mut self, commit: u64, moment: CrashMoment) -> Self {
        self.crash = Some((commit, moment));
        self
    }

    /// Opens the engine.
    ///
    /// # Panics
    /// If the in-memory store cannot be created (it always can).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let run = te.start(checkout, "o-1", 40).await?;
    /// assert!(matches!(run.status()?, RunStatus::Waiting { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn build(self) -> TestEngine {
        let memory = MemoryDisk::default();
        let clock = ManualClock::new(self.start_ms);
        let log = Arc::new(Mutex::new(Log::default()));
        let (engine, hooks) = open(&self.setup, &memory, &clock, self.crash, &log).await;
        TestEngine {
            engine,
            hooks,
            clock,
            memory,
            setup: self.setup,
            log,
        }
    }
}

async fn open(
    setup: &Setup,
    memory: &MemoryDisk,
    clock: &ManualClock,
    crash: Option<(u64, CrashMoment)>,
    log: &Arc<Mutex<Log>>,
) -> (Engine, Hooks) {
    let mut hooks = Hooks::default();
    let mut steps = setup.steps.clone();
    steps.extend(setup.doubles.clone());
    for (name, f) in steps {
        let log = log.clone();
        hooks.replace_step(name, move |ctx: StepContext, input: Value| {
            let fut = f(ctx.clone(), input.clone());
            let log = log.clone();
            Box::pin(async move {
                let result = fut.await;
                lock(&log).steps.push(StepCall {
                    run_id: ctx.run_id().to_owned(),
                    step: ctx.step_name().to_owned(),
                    idempotency_key: ctx.idempotency_key(),
                    attempt: ctx.attempt(),
                    input,
                    result: result.clone(),
                });
                result
            })
        });
    }
    let observed = log.clone();
    hooks.observe(move |cp| lock(&observed).checkpoints.push(cp.clone()));
    if let Some((commit, moment)) = crash {
        hooks.crash_at(commit, moment);
    }
    hooks.bound_waits(wait_bound());
    let mut builder = Engine::builder()
        .clock(clock.clone())
        .data_map(setup.data.clone())
        .instrument(hooks.clone());
    for register in &setup.workflows {
        builder = register(builder);
    }
    if let Some(codec) = &setup.codec {
        builder = builder.payload_codec_shared(codec.clone());
    }
    let store = FileStore::open_disk(memory.clone()).expect("an in-memory store opens");
    let engine = builder
        .open_store(store)
        .await
        .expect("an in-memory store opens");
    (engine, hooks)
}

/// Returns once `engine` is idle: no step runs, no timer due at its clock's current time is
/// left unfired, and no transition is in flight. Run it after moving a
/// [`ManualClock`] to let everything that came due happen.
///
/// # Panics
/// When the engine's [`Instrument`] bounds waits ([`Hooks::bound_waits`]) and the engine is
/// still busy once the bound has passed; the message says what it was busy with.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// use workflow_runtime::testing::{Hooks, settle};
/// # #[workflow]
/// # async fn nap(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
/// #     ctx.sleep(Duration::from_secs(60)).await;
/// #     Ok(())
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let clock = ManualClock::new(0);
/// let mut hooks = Hooks::default();
/// hooks.bound_waits(Duration::from_secs(60));
/// let engine = Engine::builder()
///     .register(nap)
///     .clock(clock.clone())
///     .instrument(hooks)
///     .open_in_memory()
///     .await?;
/// engine.start(nap, "n-1", ()).await?;
/// clock.advance(Duration::from_secs(60));
/// // Everything that came due has happened once `settle` returns.
/// settle(&engine).await;
/// assert_eq!(engine.status("n-1")?, RunStatus::Completed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub async fn settle(engine: &Engine) {
    engine.settle_bounded().await;
}

/// How long a test engine waits for quiet or for a run's result before it fails the test:
/// generous, since a debug build on a loaded machine is slow, but finite, so that a hang
/// fails CI with a message instead of stalling it. `WORKFLOW_TEST_WAIT_SECS` overrides it.
fn wait_bound() -> Duration {
    const DEFAULT_SECS: u64 = 120;
    let secs = std::env::var("WORKFLOW_TEST_WAIT_SECS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&s: &u64| s > 0)
        .unwrap_or(DEFAULT_SECS);
    Duration::from_secs(secs)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An engine for tests: in-memory storage, a manual clock, step doubles, and a log of every
/// checkpoint and step call. Every method that changes something returns once the engine is
/// idle again (no step running, no timer due), so a test reads like a story.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
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
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let te = TestEngine::builder().register(checkout).build().await;
/// let run = te.start(checkout, "o-1", 40).await?;
/// te.advance(Duration::from_secs(3_600)).await;
/// assert_eq!(run.result().await?, Ok("cancelled".to_owned()));
/// assert_eq!(te.calls_of::<charge>("o-1"), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub struct TestEngine {
    engine: Engine,
    /// The current engine's instrumentation (each restart installs a new one).
    hooks: Hooks,
    clock: ManualClock,
    memory: MemoryDisk,
    setup: Setup,
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngine")
            .field("now_ms", &crate::Clock::now_ms(&self.clock))
            .finish_non_exhaustive()
    }
}

impl TestEngine {
    /// A builder: register workflows and replace steps, then build.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn builder() -> TestEngineBuilder {
        TestEngineBuilder {
            setup: Setup::default(),
            start_ms: crate::Clock::now_ms(&ManualClock::default()),
            crash: None,
        }
    }

    /// How many commits the current engine began (since the last restart).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::testing::TestEngine;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().build().await;
    /// assert_eq!(te.commits_begun(), 0);
    /// # });
    /// ```
    pub fn commits_begun(&self) -> u64 {
        self.hooks.commits_begun()
    }

    /// Whether the current engine stopped at its simulated crash
    /// ([`TestEngineBuilder::crash_at`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::testing::TestEngine;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// assert!(!TestEngine::builder().build().await.crashed());
    /// # });
    /// ```
    pub fn crashed(&self) -> bool {
        self.hooks.crashed()
    }

    /// The engine, for everything this wrapper does not cover.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// assert_eq!(te.engine().pending()?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The in-memory storage the engine runs on (to look at what it holds).
    pub fn disk(&self) -> &MemoryDisk {
        &self.memory
    }

    /// The manual clock.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let before = te.now_ms();
    /// // Moving the clock directly fires nothing by itself; `TestEngine::advance` also runs until idle.
    /// te.clock().advance(Duration::from_secs(5));
    /// assert_eq!(te.now_ms(), before + 5_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The clock's time, milliseconds since the Unix epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).start_at_ms(42).build().await;
    /// assert_eq!(te.now_ms(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn now_ms(&self) -> u64 {
        crate::Clock::now_ms(&self.clock)
    }

    /// Starts a run and runs it until it waits, sleeps or finishes.
    ///
    /// # Errors
    /// As [`Engine::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let run = te.start(checkout, "o-1", 40).await?;
    /// // It has already run up to its wait.
    /// assert_eq!(te.engine().state_name("o-1").as_deref(), Some("AwaitingConfirm"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn start<W: Workflow>(
        &self,
        workflow: W,
        run_id: &str,
        input: W::Input,
    ) -> Result<RunHandle<W>, StartError> {
        let handle = self.engine.start(workflow, run_id, input).await;
        self.run_until_idle().await;
        handle
    }

    /// Sends a signal and runs until idle.
    ///
    /// # Errors
    /// As [`Engine::signal`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let run = te.start(checkout, "o-1", 40).await?;
    /// assert_eq!(te.signal("o-1", "confirm", true).await?, SignalOutcome::Delivered);
    /// // The step ran before `signal` returned.
    /// assert_eq!(te.calls_of::<charge>("o-1"), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn signal(
        &self,
        run_id: &str,
        name: &str,
        payload: impl Serialize,
    ) -> Result<SignalOutcome, SignalError> {
        let outcome = self.engine.signal(run_id, name, payload).await;
        self.run_until_idle().await;
        outcome
    }

    /// Sends a signal built with [`Signal`] (dedupe key, wait id) and runs until idle.
    ///
    /// # Errors
    /// As [`Engine::send`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// let confirm = Signal::new("confirm", true).dedupe_key("click-1");
    /// assert_eq!(te.send("o-1", confirm.clone()).await?, SignalOutcome::Delivered);
    /// assert_eq!(te.send("o-1", confirm).await?, SignalOutcome::Duplicate);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn send(&self, run_id: &str, signal: Signal) -> Result<SignalOutcome, SignalError> {
        let outcome = self.engine.send(run_id, signal).await;
        self.run_until_idle().await;
        outcome
    }

    /// Moves the clock forward, fires every timer that came due and runs until idle.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let run = te.start(checkout, "o-1", 40).await?;
    /// te.advance(Duration::from_secs(3_599)).await;
    /// assert!(matches!(run.status()?, RunStatus::Waiting { .. }));
    /// te.advance(Duration::from_secs(1)).await;
    /// assert_eq!(run.status()?, RunStatus::Completed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.run_until_idle().await;
    }

    /// Returns once no step runs, no due timer is unfired and no transition is in flight.
    ///
    /// # Panics
    /// When the engine is still busy after 120 s (`WORKFLOW_TEST_WAIT_SECS` changes it), with
    /// what it was busy with: a hang fails the test instead of stalling the suite. Waiting for
    /// a run's result on a test engine is bounded the same way.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// // Signalled through the engine itself, the step may still be running...
    /// te.engine().signal("o-1", "confirm", true).await?;
    /// // ...until the engine is idle.
    /// te.run_until_idle().await;
    /// assert_eq!(te.calls_of::<charge>("o-1"), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn run_until_idle(&self) {
        self.engine.settle_bounded().await;
    }

    /// Every checkpoint `run_id` wrote, oldest first, since this test engine was built
    /// (restarts included).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// te.signal("o-1", "confirm", true).await?;
    /// let states: Vec<String> = te.checkpoints("o-1").iter().map(|c| c.variant()).collect();
    /// assert_eq!(states, ["AwaitingConfirm", "Charge", "Charge"]);
    /// assert_eq!(te.checkpoints("o-1").last().unwrap().status, RunStatus::Completed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn checkpoints(&self, run_id: &str) -> Vec<CommittedCheckpoint> {
        lock(&self.log)
            .checkpoints
            .iter()
            .filter(|c| c.run_id == run_id)
            .cloned()
            .collect()
    }

    /// Every step call, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// te.signal("o-1", "confirm", true).await?;
    /// let keys: Vec<String> = te.step_calls().into_iter().map(|c| c.idempotency_key).collect();
    /// assert_eq!(keys.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn step_calls(&self) -> Vec<StepCall> {
        lock(&self.log).steps.clone()
    }

    /// How many times the step `F` was called for `run_id`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// te.signal("o-1", "confirm", true).await?;
    /// assert_eq!(te.calls_of::<charge>("o-1"), 1);
    /// assert_eq!(te.calls_of::<charge>("o-2"), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn calls_of<F: Function>(&self, run_id: &str) -> usize {
        lock(&self.log)
            .steps
            .iter()
            .filter(|c| c.run_id == run_id && c.step == F::NAME)
            .count()
    }

    /// Closes the engine and opens a new one on the same store and clock, as a restarted
    /// process would; in-flight steps run again, timers are re-armed. Runs until idle.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let mut te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// // The process dies and comes back: the run still waits, durably.
    /// te.restart().await;
    /// te.signal("o-1", "confirm", true).await?;
    /// let run = te.engine().handle(checkout, "o-1")?;
    /// assert_eq!(run.result().await?, Ok("receipt-40".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn restart(&mut self) {
        self.engine.shutdown().await;
        (self.engine, self.hooks) =
            open(&self.setup, &self.memory, &self.clock, None, &self.log).await;
        self.run_until_idle().await;
    }

    /// Closes the engine and opens one with other workflows registered on the same store and
    /// clock, as deploying new code does; in-flight runs resume on what fits them. Doubles and
    /// dependencies (`data`) given before stay unless the new builder replaces them.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// # #[workflow(name = "checkout", version = 2, migrate_from = checkout)]
    /// # async fn checkout_v2(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    /// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(7_200), ()).await;
    /// #     if ok != Ok(true) {
    /// #         return Ok("cancelled".into());
    /// #     }
    /// #     Ok(ctx.step(charge, amount).await?)
    /// # }
    /// # impl TryFrom<checkout::State> for checkout_v2::State {
    /// #     type Error = String;
    /// #     fn try_from(old: checkout::State) -> Result<Self, String> {
    /// #         serde_json::from_value(serde_json::to_value(old).map_err(|e| e.to_string())?)
    /// #             .map_err(|e| e.to_string())
    /// #     }
    /// # }
    /// let mut te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// // Deploy v2 next to v1: the waiting run migrates and finishes on the new code.
    /// te.swap(|b| b.register(checkout).register(checkout_v2)).await;
    /// te.signal("o-1", "confirm", true).await?;
    /// let run = te.engine().handle(checkout_v2, "o-1")?;
    /// assert_eq!(run.result().await?, Ok("receipt-40".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn swap(&mut self, register: impl FnOnce(TestEngineBuilder) -> TestEngineBuilder) {
        let builder = register(TestEngineBuilder {
            setup: Setup::default(),
            start_ms: self.now_ms(),
            crash: None,
        });
        let mut setup = builder.setup;
        // Doubles given when the engine was built stay in place across a deploy.
        for (name, double) in &self.setup.doubles {
            setup
                .doubles
                .entry(name.clone())
                .or_insert_with(|| double.clone());
        }
        // So do the steps' dependencies, for every type the new builder does not give.
        setup.data.keep_missing(&self.setup.data);
        self.setup = setup;
        self.restart().await;
    }

    /// Places a new run at a recorded checkpoint (from this or another test engine) and runs it
    /// until idle: a step it waited for runs, a wait waits again, a sleep sleeps again.
    ///
    /// # Errors
    /// [`EngineError::Conflict`] if the run id exists, [`EngineError::NotRegistered`], or
    /// [`EngineError::RunFinished`] if the checkpoint is a finished run's.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// let waiting = te.checkpoints("o-1")[0].clone();
    /// // A second run placed at the first one's wait.
    /// let copy = te.resume_from(checkout, "o-2", &waiting).await?;
    /// te.signal("o-2", "confirm", true).await?;
    /// assert_eq!(copy.result().await?, Ok("receipt-40".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn resume_from<W: Workflow>(
        &self,
        workflow: W,
        run_id: &str,
        checkpoint: &CommittedCheckpoint,
    ) -> Result<RunHandle<W>, EngineError> {
        let pending = checkpoint
            .pending
            .clone()
            .ok_or_else(|| EngineError::RunFinished {
                run_id: checkpoint.run_id.clone(),
                status: checkpoint.status.clone(),
            })?;
        let handle = self
            .engine
            .import(
                workflow,
                run_id,
                checkpoint.state.clone(),
                checkpoint.seq,
                pending,
            )
            .await;
        self.run_until_idle().await;
        Ok(handle?)
    }

    /// Places a new run in a state built by hand, suspended on `pending` (see
    /// [`TestEngine::awaiting_step`], [`TestEngine::awaiting_signal`], [`TestEngine::sleeping`]),
    /// and runs it until idle.
    ///
    /// # Errors
    /// As [`TestEngine::resume_from`], and [`EngineError::Codec`] if the state does not encode.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// // A run built by hand, waiting for the charge of 99.
    /// let state = checkout::State::Charge {};
    /// let run = te.resume_state(checkout, "o-9", state, te.awaiting_step::<charge>(99)).await?;
    /// assert_eq!(run.result().await?, Ok("receipt-99".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn resume_state<W: Workflow>(
        &self,
        workflow: W,
        run_id: &str,
        state: W::State,
        pending: Command,
    ) -> Result<RunHandle<W>, EngineError> {
        let state = serde_json::to_value(&state)
            .map_err(|e| CodecError::encoding(format!("the state of run `{run_id}`"), e))?;
        let handle = self
            .engine
            .import(workflow, run_id, state, 1, pending)
            .await;
        self.run_until_idle().await;
        Ok(handle?)
    }

    /// What a state waiting for the result of step `F` on `input` is suspended on.
    ///
    /// # Panics
    /// If the input does not encode as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::testing::Command;
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// assert!(matches!(te.awaiting_step::<charge>(99), Command::Step { ref name, .. } if name == "charge"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn awaiting_step<F: Function>(&self, input: F::Input) -> Command {
        crate::__private::v1::step_command::<F>(input)
    }

    /// What a state waiting `timeout` (from now) for the signal `name` is suspended on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let state = checkout::State::AwaitingConfirm { amount: 5 };
    /// let wait = te.awaiting_signal("confirm", Duration::from_secs(60), json!(null));
    /// let run = te.resume_state(checkout, "o-5", state, wait).await?;
    /// te.advance(Duration::from_secs(60)).await;
    /// assert_eq!(run.result().await?, Ok("cancelled".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn awaiting_signal(&self, name: &str, timeout: Duration, metadata: Value) -> Command {
        Command::wait(
            name,
            self.now_ms().saturating_add(millis(timeout)),
            metadata,
        )
    }

    /// What a state sleeping for `duration` (from now) is suspended on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::testing::Command;
    /// let te = TestEngine::builder().register(checkout).start_at_ms(0).build().await;
    /// assert!(matches!(te.sleeping(Duration::from_secs(2)), Command::Sleep { deadline_ms: 2_000, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn sleeping(&self, duration: Duration) -> Command {
        Command::Sleep {
            deadline_ms: self.now_ms().saturating_add(millis(duration)),
        }
    }

    /// Shuts the engine down.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// let engine = te.engine().clone();
    /// te.shutdown().await;
    /// assert!(matches!(engine.status("o-1"), Err(EngineError::ShutDown)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl CommittedCheckpoint {
    /// The state decoded with the current code.
    ///
    /// # Errors
    /// The decoding error, when the stored state does not fit `W::State`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// let state = te.checkpoints("o-1")[0].decode(checkout)?;
    /// assert!(matches!(state, checkout::State::AwaitingConfirm { amount: 40 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn decode<W: Workflow>(&self, _workflow: W) -> Result<W::State, CodecError> {
        crate::codec::from_value_ref(&self.state).map_err(|e| {
            CodecError::decoding(
                format!(
                    "the state of checkpoint {} of run `{}`",
                    self.seq, self.run_id
                ),
                e,
            )
        })
    }

    /// The name of the state's variant, read from the stored JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::testing::TestEngine;
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
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(checkout).build().await;
    /// te.start(checkout, "o-1", 40).await?;
    /// assert_eq!(te.checkpoints("o-1")[0].variant(), "AwaitingConfirm");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn variant(&self) -> String {
        variant_of(&self.state)
    }
}

pub(crate) fn variant_of(state: &Value) -> String {
    match state {
        Value::Object(m) if m.len() == 1 => m.keys().next().cloned().unwrap_or_default(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
