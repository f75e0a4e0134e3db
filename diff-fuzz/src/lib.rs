//! Differential fuzzing of `#[workflow]`.
//!
//! `build.rs` generates a batch of random, well-typed workflow bodies (see `generator.rs`).
//! Each body is compiled twice: by the macro into a state machine, and as a plain async
//! function (its twin) whose context is a [`Twin`] that calls each step in place and answers
//! signal waits from a seeded stream. [`compare`] runs the twin first, then the state machine
//! on a [`TestEngine`] fed the same sleeps, signals and timeouts, and (optionally) under
//! [`crash_test`] crashed before and after every commit. The step calls, the input each step
//! saw and the output must be identical.
//!
//! The generated batch is compiled into the test `tests/differential.rs` (only once: the
//! library holds the steps and the harness). `DIFF_FUZZ_SEED` picks the batch (default 1) and
//! `DIFF_FUZZ_PROGRAMS` its size (default 200, also in `cargo test --workspace`);
//! `scripts/diff-fuzz-long` runs many batches of 200.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Script, TestEngine, crash_test};
use workflow_runtime::{Function, WaitError, Workflow};

/// `(a * 31 + b * 7 + 3) % 1000`.
#[function]
pub async fn mix(a: u64, b: u64) -> Result<u64, StepError> {
    Ok((a * 31 + b * 7 + 3) % 1000)
}

/// Fails permanently on multiples of 11, else `x % 1000 + 1`.
#[function]
pub async fn check(x: u64) -> Result<u64, StepError> {
    if x.is_multiple_of(11) {
        Err(StepError::permanent(format!("{x} is a multiple of 11")))
    } else {
        Ok(x % 1000 + 1)
    }
}

/// `Some(a)` when `a < n`.
#[function]
pub async fn below(a: u64, n: u64) -> Result<Option<u64>, StepError> {
    Ok((a < n).then_some(a))
}

/// `a < b`.
#[function]
pub async fn lt(a: u64, b: u64) -> Result<bool, StepError> {
    Ok(a < b)
}

/// `x` as text, with a length that depends on it.
#[function]
pub async fn text(x: u64) -> Result<String, StepError> {
    Ok(format!("t{}", "x".repeat((x % 5) as usize)))
}

/// A step whose output is discarded.
#[function]
pub async fn tick(x: u64) -> Result<(), StepError> {
    let _ = x;
    Ok(())
}

/// One thing the twin did that the engine must be fed the same way.
#[derive(Debug, Clone, PartialEq)]
enum Outside {
    Sleep(Duration),
    Signal(String, u64),
    Timeout(Duration),
}

#[derive(Debug, Default)]
struct TwinLog {
    rng: u64,
    calls: Vec<(String, Value)>,
    outside: Vec<Outside>,
}

/// The context of a twin: calls each step in place and records it, and answers each signal
/// wait from a seeded stream (a payload or a timeout).
#[derive(Debug, Clone, Default)]
pub struct Twin {
    log: Arc<Mutex<TwinLog>>,
}

impl Twin {
    /// A twin whose wait answers come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            log: Arc::new(Mutex::new(TwinLog {
                rng: seed,
                ..TwinLog::default()
            })),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, TwinLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the step `F` in place.
    ///
    /// # Panics
    /// If the input does not encode as JSON.
    pub async fn step<F: Function>(&mut self, input: F::Input) -> Result<F::Output, StepError> {
        let json = serde_json::to_value(&input).expect("a step input encodes");
        let position = {
            let mut log = self.log();
            log.calls.push((F::NAME.to_owned(), json));
            log.calls.len() as u64
        };
        F::call(StepContext::new("twin", F::NAME, position, 1), input).await
    }

    /// Records a sleep; the engine's clock is moved by `duration` at this point.
    pub async fn sleep(&mut self, duration: Duration) {
        self.log().outside.push(Outside::Sleep(duration));
    }

    /// Answers a wait: a payload below 100, or a timeout, each about half of the time.
    ///
    /// # Panics
    /// If a payload does not decode as `T` (the generator only waits for `u64`).
    pub async fn wait_for_signal<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        timeout: Duration,
        _metadata: (),
    ) -> Result<T, WaitError> {
        let mut log = self.log();
        let r = splitmix(&mut log.rng);
        if r.is_multiple_of(2) {
            let payload = (r >> 8) % 100;
            log.outside.push(Outside::Signal(name.to_owned(), payload));
            Ok(serde_json::from_value(json!(payload)).expect("a u64 payload"))
        } else {
            log.outside.push(Outside::Timeout(timeout));
            Err(WaitError::TimedOut)
        }
    }

    /// What the engine must be fed to take the path the twin took.
    fn script(&self) -> Script {
        let mut script = Script::new();
        for o in &self.log().outside {
            script = match o {
                Outside::Sleep(d) | Outside::Timeout(d) => script.advance(*d),
                Outside::Signal(name, payload) => script.signal(name, payload),
            };
        }
        script
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A program's check: `Ok` or what differed.
pub type Verdict = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Runs the workflow `w` the way its twin ran (the twin's output is `expected`) and compares
/// the step calls, their inputs and the output; with `crash`, also crashes it before and after
/// every commit and compares the outcome of each.
///
/// # Errors
/// What differed.
pub async fn compare<W>(
    w: W,
    input: W::Input,
    twin: Twin,
    expected: Result<u64, WorkflowError>,
    crash: bool,
) -> Result<(), String>
where
    W: Workflow<Output = Result<u64, WorkflowError>>,
    W::Input: Clone,
{
    let script = twin.script();
    let expected_json = serde_json::to_value(&expected).map_err(|e| e.to_string())?;
    let te = TestEngine::builder().register(w).build().await;
    let run = te
        .start(w, "diff", input.clone())
        .await
        .map_err(|e| format!("start: {e}"))?;
    let outside = twin.log().outside.clone();
    for (pos, o) in outside.iter().enumerate() {
        match o {
            Outside::Signal(name, payload) => {
                // The crash test's own default key, so both runs send the same signals.
                let signal = workflow_runtime::Signal::new(name.as_str(), json!(payload))
                    .dedupe_key(format!("script-{pos}"));
                te.send("diff", signal)
                    .await
                    .map_err(|e| format!("signal {pos}: {e}"))?;
            }
            Outside::Sleep(by) | Outside::Timeout(by) => te.advance(*by).await,
        }
    }
    let got = tokio::time::timeout(Duration::from_secs(60), run.result())
        .await
        .map_err(|_| format!("the run did not finish: {:?}", te.engine().status("diff")))?
        .map_err(|e| format!("result: {e}"))?;
    let calls: Vec<(String, Value)> = te
        .step_calls()
        .into_iter()
        .filter(|c| c.run_id == "diff")
        .map(|c| (c.step, c.input))
        .collect();
    te.shutdown().await;
    let twin_calls = twin.log().calls.clone();
    let mut diffs = Vec::new();
    if calls != twin_calls {
        diffs.push(format!(
            "step calls differ\n  twin:   {twin_calls:?}\n  engine: {calls:?}"
        ));
    }
    if got != expected {
        diffs.push(format!(
            "outputs differ\n  twin:   {expected:?}\n  engine: {got:?}"
        ));
    }
    if crash && diffs.is_empty() {
        let report = crash_test(TestEngine::builder().register(w), w, input, script).await;
        if !report.is_ok() {
            diffs.push(format!("crash test: {}", report.violations.join("\n")));
        }
        if report.outcome.as_ref() != Ok(&expected_json) {
            diffs.push(format!(
                "crash test outcome differs\n  twin:   {expected_json}\n  engine: {:?}",
                report.outcome
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}
