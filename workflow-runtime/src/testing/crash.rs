//! Crash at every commit: the strongest cheap evidence that a workflow survives restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::CrashMoment;
use super::{TestEngine, TestEngineBuilder};
use crate::{OpsError, RunStatus, Signal, SignalError, StartError, Workflow};

/// The run id crash tests use.
const RUN: &str = "crash-test";

/// One thing that happens to a run from outside.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::testing::{Script, ScriptAction};
/// let script = Script::new().advance(Duration::from_secs(60)).cancel("withdrawn");
/// assert!(matches!(script.actions()[0], ScriptAction::Advance(d) if d.as_secs() == 60));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum ScriptAction {
    /// Send a signal. Without a dedupe key the crash test gives it `script-<index>`: a client
    /// that retries after a crash must name its signal, or a retry could answer a later wait.
    Signal {
        /// The signal's name.
        name: String,
        /// The payload.
        payload: Value,
        /// The dedupe key.
        dedupe_key: Option<String>,
    },
    /// Move the manual clock forward.
    Advance(Duration),
    /// Cancel the run (`Engine::cancel`).
    Cancel {
        /// The reason given.
        reason: String,
    },
}

/// What happens to a run, in order, after it starts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::testing::Script;
/// let script = Script::new()
///     .signal("confirm", true)
///     .advance(Duration::from_secs(3_600))
///     .signal_keyed("note", "late", "note-1");
/// assert_eq!(script.actions().len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Script {
    actions: Vec<ScriptAction>,
}

impl Script {
    /// An empty script.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Script;
    /// assert!(Script::new().actions().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Then a signal.
    ///
    /// # Panics
    /// If the payload does not encode as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Script;
    /// let script = Script::new().signal("confirm", true);
    /// ```
    #[must_use]
    pub fn signal(mut self, name: &str, payload: impl Serialize) -> Self {
        let payload = serde_json::to_value(payload).expect("a script payload encodes as JSON");
        self.actions.push(ScriptAction::Signal {
            name: name.to_owned(),
            payload,
            dedupe_key: None,
        });
        self
    }

    /// Then a signal with a dedupe key.
    ///
    /// # Panics
    /// If the payload does not encode as JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Script;
    /// // The same decision delivered twice by a retrying client: the key makes it count once.
    /// let script = Script::new()
    ///     .signal_keyed("confirm", true, "click-1")
    ///     .signal_keyed("confirm", true, "click-1");
    /// ```
    #[must_use]
    pub fn signal_keyed(mut self, name: &str, payload: impl Serialize, dedupe_key: &str) -> Self {
        let payload = serde_json::to_value(payload).expect("a script payload encodes as JSON");
        self.actions.push(ScriptAction::Signal {
            name: name.to_owned(),
            payload,
            dedupe_key: Some(dedupe_key.to_owned()),
        });
        self
    }

    /// Then the clock moves forward.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::testing::Script;
    /// let script = Script::new().advance(Duration::from_secs(7 * 24 * 3600));
    /// ```
    #[must_use]
    pub fn advance(mut self, by: Duration) -> Self {
        self.actions.push(ScriptAction::Advance(by));
        self
    }

    /// Then an operator cancels the run.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::Script;
    /// let script = Script::new().cancel("the customer withdrew the request");
    /// ```
    #[must_use]
    pub fn cancel(mut self, reason: &str) -> Self {
        self.actions.push(ScriptAction::Cancel {
            reason: reason.to_owned(),
        });
        self
    }

    /// The actions, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::testing::{Script, ScriptAction};
    /// let script = Script::new().signal("confirm", true);
    /// assert!(matches!(&script.actions()[0], ScriptAction::Signal { name, .. } if name == "confirm"));
    /// ```
    pub fn actions(&self) -> &[ScriptAction] {
        &self.actions
    }
}

/// One simulated crash and what the run did after it.
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
/// use workflow_runtime::testing::{Script, crash_test};
/// let report = crash_test(TestEngine::builder().register(checkout), checkout, 40, Script::new().signal("confirm", true)).await;
/// for case in &report.cases {
///     println!("crash {} commit {}: {:?}", case.moment, case.commit, case.outcome);
/// }
/// assert!(report.cases.iter().all(|c| c.outcome == report.outcome));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct CrashCase {
    /// The commit the crash was placed at, counting from 1.
    pub commit: u64,
    /// Just before or just after that commit.
    pub moment: CrashMoment,
    /// Whether the crash happened (a path with fewer commits never reaches it).
    pub crashed: bool,
    /// The run's output as JSON, or why there is none.
    pub outcome: Result<Value, String>,
    /// Idempotency keys whose step ran more than once (at-least-once, expected after a crash
    /// between a step's end and its checkpoint).
    pub reruns: Vec<String>,
    /// The run's trace after the restart, one line per event.
    pub trace: Vec<String>,
}

/// What [`crash_test`] found.
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
/// use workflow_runtime::testing::{Script, crash_test};
/// let report = crash_test(TestEngine::builder().register(checkout), checkout, 40, Script::new().signal("confirm", true)).await;
/// assert!(report.is_ok(), "{:?}", report.violations);
/// assert_eq!(report.cases.len() as u64, 2 * report.commits);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    /// The workflow's name.
    pub workflow: String,
    /// How many commits the crash-free run made.
    pub commits: u64,
    /// The crash-free run's output as JSON, or why there is none.
    pub outcome: Result<Value, String>,
    /// The idempotency keys the crash-free run's steps used.
    pub keys: Vec<String>,
    /// The crash-free run's trace.
    pub trace: Vec<String>,
    /// Every crash simulated.
    pub cases: Vec<CrashCase>,
    /// Everything that went wrong, each with both outcomes and traces.
    pub violations: Vec<String>,
}

impl CrashReport {
    /// Whether every crash led to the crash-free outcome with no new step invocation.
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
    /// use workflow_runtime::testing::{Script, crash_test};
    /// let script = Script::new().signal("confirm", false);
    /// let report = crash_test(TestEngine::builder().register(checkout), checkout, 40, script).await;
    /// assert!(report.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics with every violation if there is one.
    ///
    /// # Panics
    /// When a crash changed the outcome, lost the run or made a step run under a new key.
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
    /// use workflow_runtime::testing::{Script, crash_test};
    /// crash_test(TestEngine::builder().register(checkout), checkout, 40, Script::new().signal("confirm", true))
    ///     .await
    ///     .assert_ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "{self}");
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let crashed = self.cases.iter().filter(|c| c.crashed).count();
        let reruns: usize = self.cases.iter().map(|c| c.reruns.len()).sum();
        writeln!(
            f,
            "crash test of `{}`: {} commits, {} crashes simulated, {} step re-runs with the same key, {} violations",
            self.workflow,
            self.commits,
            crashed,
            reruns,
            self.violations.len()
        )?;
        for v in &self.violations {
            writeln!(f, "\n{v}")?;
        }
        Ok(())
    }
}

fn lines(te: &TestEngine) -> Vec<String> {
    te.engine()
        .trace(RUN)
        .map(|t| t.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// Starts the run and plays the script; after a simulated crash, restarts the engine on the
/// same store and goes on where an honest client would: an action that was not acknowledged
/// is sent again.
async fn play<W: Workflow>(
    te: &mut TestEngine,
    workflow: W,
    input: &W::Input,
    script: &Script,
) -> Result<bool, String>
where
    W::Input: Clone,
{
    let mut started = false;
    let mut pos = 0;
    let mut crashed = false;
    loop {
        if !started {
            match te.engine().start(workflow, RUN, input.clone()).await {
                Ok(_) => started = true,
                Err(StartError::ShutDown) if te.crashed() => {}
                Err(e) => return Err(format!("start failed: {e}")),
            }
            te.run_until_idle().await;
        }
        while started && pos < script.actions.len() && !te.crashed() {
            match &script.actions[pos] {
                ScriptAction::Signal {
                    name,
                    payload,
                    dedupe_key,
                } => {
                    let key = dedupe_key
                        .clone()
                        .unwrap_or_else(|| format!("script-{pos}"));
                    let signal = Signal::new(name.as_str(), payload.clone()).dedupe_key(key);
                    match te.engine().send(RUN, signal).await {
                        Ok(_) => pos += 1,
                        Err(SignalError::ShutDown) if te.crashed() => {}
                        Err(e) => {
                            return Err(format!(
                                "script action {pos} (signal `{name}`) failed: {e}"
                            ));
                        }
                    }
                }
                ScriptAction::Advance(by) => {
                    te.clock().advance(*by);
                    pos += 1;
                }
                ScriptAction::Cancel { reason } => match te.engine().cancel(RUN, reason).await {
                    Ok(_) => pos += 1,
                    Err(OpsError::ShutDown) if te.crashed() => {}
                    Err(e) => return Err(format!("script action {pos} (cancel) failed: {e}")),
                },
            }
            te.run_until_idle().await;
        }
        if !te.crashed() {
            return Ok(crashed);
        }
        if crashed {
            return Err("the engine crashed twice; only one crash was asked for".to_owned());
        }
        crashed = true;
        te.restart().await;
    }
}

async fn outcome<W: Workflow>(te: &TestEngine, workflow: W) -> Result<Value, String> {
    let status = te.engine().status(RUN).map_err(|e| e.to_string())?;
    if let RunStatus::Cancelled { .. } | RunStatus::Terminated { .. } = status {
        // A stopped run has no result; its status and how it ended (what a cancelled
        // workflow returned) are its outcome.
        let trace = te.engine().trace(RUN).map_err(|e| e.to_string())?;
        let last = trace.last().map(|e| e.kind.clone());
        return Ok(serde_json::json!({ "status": status, "end": last }));
    }
    if !matches!(status, RunStatus::Completed | RunStatus::Failed { .. }) {
        return Err(format!("the run did not finish: {status}"));
    }
    let handle = te
        .engine()
        .handle(workflow, RUN)
        .map_err(|e| e.to_string())?;
    let out = handle.result().await.map_err(|e| e.to_string())?;
    serde_json::to_value(out).map_err(|e| e.to_string())
}

/// Every run in the engine's store: the run and the child runs it started.
fn runs_of(te: &TestEngine) -> BTreeSet<String> {
    let filter = crate::RunFilter {
        limit: Some(crate::MAX_PAGE),
        ..crate::RunFilter::default()
    };
    te.engine()
        .runs(&filter)
        .map(|page| page.runs.into_iter().map(|r| r.run_id).collect())
        .unwrap_or_default()
}

/// The idempotency keys of every step call in the engine: the run's, and its child runs'
/// (whose effects must happen once too).
fn keys_of(te: &TestEngine) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for call in te.step_calls() {
        *keys.entry(call.idempotency_key).or_insert(0) += 1;
    }
    keys
}

/// Runs `workflow` on `input` with `script` once without a crash, then once per commit of that
/// run with a crash just before the commit and once with a crash just after it. Each crashed
/// engine is restarted on the same store, the rest of the script is played, and the run must
/// end with the crash-free outcome, without any step invocation under an idempotency key the
/// crash-free run did not use (that would be a second, different effect), and with the same
/// runs in the store as the crash-free run (a child run started twice, or lost, shows there).
/// The steps and runs counted are those of the run and of the child runs it starts.
///
/// Steps run for real unless the builder replaces them; steps with outside effects should be
/// replaced by doubles, or be idempotent on [`crate::StepContext::idempotency_key`].
///
/// # Panics
/// If the crash-free run itself does not finish: the report would mean nothing.
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
/// use workflow_runtime::testing::{Script, crash_test};
/// let builder = TestEngine::builder()
///     .register(checkout)
///     .replace::<charge>(|ctx, amount| Ok(format!("{amount} under {}", ctx.idempotency_key())));
/// let script = Script::new().signal("confirm", true);
/// let report = crash_test(builder, checkout, 40, script).await;
/// report.assert_ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub async fn crash_test<W: Workflow>(
    builder: TestEngineBuilder,
    workflow: W,
    input: W::Input,
    script: Script,
) -> CrashReport
where
    W::Input: Clone,
{
    let mut reference = builder.clone().build().await;
    let played = play(&mut reference, workflow, &input, &script).await;
    let expected = match played {
        Ok(_) => outcome(&reference, workflow).await,
        Err(e) => Err(e),
    };
    let trace = lines(&reference);
    assert!(
        expected.is_ok(),
        "the crash-free run of `{}` did not finish: {expected:?}\n{}",
        W::NAME,
        trace.join("\n")
    );
    let commits = reference.commits_begun();
    let ref_keys: BTreeSet<String> = keys_of(&reference).into_keys().collect();
    let ref_runs = runs_of(&reference);
    reference.shutdown().await;

    let mut cases = Vec::new();
    let mut violations = Vec::new();
    for commit in 1..=commits {
        for moment in [CrashMoment::BeforeCommit, CrashMoment::AfterCommit] {
            let mut te = builder.clone().crash_at(commit, moment).build().await;
            let played = play(&mut te, workflow, &input, &script).await;
            let (crashed, got) = match played {
                Ok(crashed) => (crashed, outcome(&te, workflow).await),
                Err(e) => (true, Err(e)),
            };
            let keys = keys_of(&te);
            let case_trace = lines(&te);
            let header = format!("crash {moment} commit {commit}");
            if got != expected {
                violations.push(format!(
                    "{header}: the outcome differs\n  crash-free: {expected:?}\n  crashed:    {got:?}\n  crash-free trace:\n    {}\n  trace after the crash:\n    {}",
                    trace.join("\n    "),
                    case_trace.join("\n    ")
                ));
            }
            let runs = runs_of(&te);
            if runs != ref_runs {
                violations.push(format!(
                    "{header}: the store holds other runs than the crash-free run's (a child started twice, or lost)\n  crash-free: {ref_runs:?}\n  crashed:    {runs:?}"
                ));
            }
            for key in keys.keys().filter(|k| !ref_keys.contains(*k)) {
                violations.push(format!(
                    "{header}: a step ran under the idempotency key `{key}`, which the crash-free run never used: its effect would happen twice\n  trace after the crash:\n    {}",
                    case_trace.join("\n    ")
                ));
            }
            let reruns = keys
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(k, _)| k.clone())
                .collect();
            cases.push(CrashCase {
                commit,
                moment,
                crashed,
                outcome: got,
                reruns,
                trace: case_trace,
            });
            te.shutdown().await;
        }
    }
    CrashReport {
        workflow: W::NAME.to_owned(),
        commits,
        outcome: expected,
        keys: ref_keys.into_iter().collect(),
        trace,
        cases,
        violations,
    }
}
