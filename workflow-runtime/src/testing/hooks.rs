//! [`Hooks`]: the [`Instrument`] a test engine, the crash test and crash-torture workers give
//! an engine.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::engine::hooks::{CommittedCheckpoint, CrashMoment, Instrument, StepDouble};
use crate::step::{StepContext, StepFuture};

type Observer = Arc<dyn Fn(&CommittedCheckpoint) + Send + Sync>;
type OnCrash = Arc<dyn Fn() + Send + Sync>;

/// Test instrumentation for one engine: step doubles, an observer of committed checkpoints, a
/// simulated crash at a chosen commit, and bounded waits. Give it to
/// [`EngineBuilder::instrument`](crate::EngineBuilder::instrument); clones share the commit
/// counter and the crash flag.
///
/// ```
/// use workflow_runtime::testing::{CrashMoment, Hooks};
///
/// let mut hooks = Hooks::default();
/// hooks.crash_at(3, CrashMoment::AfterCommit);
/// hooks.on_crash(|| eprintln!("the third commit is durable; stopping here"));
/// assert!(!hooks.crashed());
/// ```
#[derive(Clone, Default)]
pub struct Hooks {
    steps: HashMap<String, StepDouble>,
    observer: Option<Observer>,
    /// Crash at the n-th commit (counting from 1).
    crash: Option<(u64, CrashMoment)>,
    on_crash: Option<OnCrash>,
    wait_bound: Option<Duration>,
    commits_begun: Arc<AtomicU64>,
    crashed: Arc<AtomicBool>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("steps", &self.steps.keys().collect::<Vec<_>>())
            .field("observer", &self.observer.is_some())
            .field("crash", &self.crash)
            .field("on_crash", &self.on_crash.is_some())
            .field("wait_bound", &self.wait_bound)
            .field("commits_begun", &self.commits_begun())
            .field("crashed", &self.crashed())
            .finish()
    }
}

impl Hooks {
    /// Runs `f` instead of the step named `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::testing::Hooks;
    ///
    /// #[function]
    /// async fn lookup(id: u64) -> Result<String, StepError> {
    ///     Ok(format!("real-{id}"))
    /// }
    ///
    /// #[workflow]
    /// async fn fetch(ctx: &mut WorkflowContext, id: u64) -> Result<String, WorkflowError> {
    ///     Ok(ctx.step(lookup, id).await?)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let mut hooks = Hooks::default();
    /// hooks.replace_step("lookup", |_ctx, input| Box::pin(async move { Ok(json!(format!("fake-{input}"))) }));
    /// let engine = Engine::builder().register(fetch).instrument(hooks).open_in_memory().await?;
    /// let run = engine.start(fetch, "f-1", 7).await?;
    /// assert_eq!(run.result().await?, Ok("fake-7".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn replace_step(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(StepContext, Value) -> StepFuture<Value> + Send + Sync + 'static,
    ) {
        self.steps.insert(name.into(), Arc::new(f));
    }

    /// Calls `f` after every durable commit that wrote a run's checkpoint.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Hooks;
    /// let mut hooks = Hooks::default();
    /// hooks.observe(|cp| println!("{} checkpoint {}: {}", cp.run_id, cp.seq, cp.status));
    /// ```
    pub fn observe(&mut self, f: impl Fn(&CommittedCheckpoint) + Send + Sync + 'static) {
        self.observer = Some(Arc::new(f));
    }

    /// Stops the engine as if the process died at its `commit`-th commit.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::{CrashMoment, Hooks};
    /// let mut hooks = Hooks::default();
    /// hooks.crash_at(2, CrashMoment::BeforeCommit);
    /// assert!(!hooks.crashed());
    /// ```
    pub fn crash_at(&mut self, commit: u64, moment: CrashMoment) {
        self.crash = Some((commit, moment));
    }

    /// Calls `f` at the instant of the crash set with [`Hooks::crash_at`], before the engine
    /// stops: a crash-torture worker kills its own process there with SIGKILL, turning the
    /// simulated crash into a real process death at an exact point (just before the commit
    /// reaches the store, or just after it is durable and before anything is acknowledged).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workflow_runtime::testing::{CrashMoment, Hooks};
    /// let mut hooks = Hooks::default();
    /// hooks.crash_at(5, CrashMoment::AfterCommit);
    /// // A torture worker turns the simulated crash into a real death of its process.
    /// hooks.on_crash(|| std::process::abort());
    /// ```
    pub fn on_crash(&mut self, f: impl Fn() + Send + Sync + 'static) {
        self.on_crash = Some(Arc::new(f));
    }

    /// Makes every wait for a run's result, and every wait for quiet, fail with a message
    /// naming what it waited for once `bound` has passed, instead of waiting forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::testing::Hooks;
    /// let mut hooks = Hooks::default();
    /// // A run that never ends fails the test after a minute instead of hanging it.
    /// hooks.bound_waits(Duration::from_secs(60));
    /// ```
    pub fn bound_waits(&mut self, bound: Duration) {
        self.wait_bound = Some(bound);
    }

    /// How many commits the instrumented engine began.
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
    /// use workflow_runtime::testing::Hooks;
    /// let hooks = Hooks::default();
    /// let engine = Engine::builder().register(approval).instrument(hooks.clone()).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// assert_eq!(hooks.commits_begun(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn commits_begun(&self) -> u64 {
        self.commits_begun.load(Ordering::SeqCst)
    }

    /// Whether the simulated crash happened.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Hooks;
    /// assert!(!Hooks::default().crashed());
    /// ```
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }
}

impl Instrument for Hooks {
    fn step_double(&self, step: &str) -> Option<StepDouble> {
        self.steps.get(step).cloned()
    }

    fn observes(&self) -> bool {
        self.observer.is_some()
    }

    fn committed(&self, checkpoint: &CommittedCheckpoint) {
        if let Some(observe) = &self.observer {
            observe(checkpoint);
        }
    }

    fn commit_begins(&self) -> Option<CrashMoment> {
        let n = self.commits_begun.fetch_add(1, Ordering::SeqCst) + 1;
        self.crash.filter(|(at, _)| *at == n).map(|(_, m)| m)
    }

    fn crashing(&self, _moment: CrashMoment) {
        if let Some(on_crash) = &self.on_crash {
            on_crash();
        }
        self.crashed.store(true, Ordering::SeqCst);
    }

    fn wait_bound(&self) -> Option<Duration> {
        self.wait_bound
    }
}
