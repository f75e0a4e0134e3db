//! Steps: the `#[function]` side of the model.

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::retry::RetryPolicy;

/// Values that can live in a checkpoint: step inputs and outputs, workflow inputs, outputs and
/// held locals.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type; it exists so
/// that a missing derive is reported in the terms of this library.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in a workflow checkpoint",
    label = "this type must implement serde's `Serialize` and `Deserialize` and be `Send + 'static`",
    note = "step inputs and outputs, workflow inputs and outputs, and locals held across a suspension point are written to the checkpoint; add `#[derive(Serialize, Deserialize)]` or hold a serializable value instead"
)]
pub trait Persist: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Persist for T {}

/// Whether a failed step may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepErrorKind {
    /// A transient failure (rate limit, timeout, connection reset).
    Retryable,
    /// A failure that will not go away by trying again (bad request, refused payment).
    Permanent,
}

/// The error a step returns; it reaches the workflow at its `ctx.step(..).await`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Human-readable description of the failure.
    pub message: String,
    /// Whether trying again may help.
    pub kind: StepErrorKind,
    /// Optional structured details (an error code, a provider response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl StepError {
    /// A retryable error with the given message.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: StepErrorKind::Retryable,
            details: None,
        }
    }

    /// A permanent error with the given message.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: StepErrorKind::Permanent,
            details: None,
        }
    }

    /// Attaches structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        self.kind == StepErrorKind::Retryable
    }
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        Self::retryable(message)
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> Self {
        Self::retryable(message)
    }
}

/// What a step invocation knows about itself.
///
/// Take it as the first parameter of a `#[function]` to read the idempotency key or the
/// attempt number; it is not part of the step's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    run_id: String,
    step: String,
    position: u64,
    attempt: u32,
}

impl StepContext {
    /// Builds a context; the engine does this for every invocation, tests may too.
    pub fn new(
        run_id: impl Into<String>,
        step: impl Into<String>,
        position: u64,
        attempt: u32,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            step: step.into(),
            position,
            attempt,
        }
    }

    /// The run this invocation belongs to.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The step's name (the function's name).
    pub fn step_name(&self) -> &str {
        &self.step
    }

    /// The step's position in the run: the sequence number of the checkpoint that scheduled it.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Which attempt this is, starting at 1. A step that is re-run after a restart (its attempt
    /// never reported back) sees the same number again.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A key that is the same for every attempt and every restart of this step invocation,
    /// and different for every other invocation; pass it to external systems so they
    /// de-duplicate.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}:{}", self.run_id, self.step, self.position)
    }
}

/// The boxed future a step invocation returns.
pub type StepFuture<T> = Pin<Box<dyn Future<Output = Result<T, StepError>> + Send + 'static>>;

/// Metadata and entry point of a `#[function]`; the macro implements it on a struct with the
/// function's name.
#[diagnostic::on_unimplemented(
    message = "a step must be an `async fn` marked `#[function]`",
    label = "not a `#[function]`",
    note = "`ctx.step(f, input)` takes the name of a `#[function] async fn`: the engine records each call under the step's name, so a plain `fn`, a closure or a local holding a function cannot be a step"
)]
pub trait Function: Send + Sync + 'static {
    /// The stored name of the step.
    const NAME: &'static str;
    /// A fingerprint of the step's input and output types.
    const SIG_HASH: u64;
    /// The step's input: its single parameter, a tuple of several, or `()`.
    type Input: Persist;
    /// The `T` of the step's `Result<T, StepError>`.
    type Output: Persist;
    /// How the engine retries the step; `#[function(max_attempts = .., ..)]` sets it. Not part
    /// of the stored layout: changing it reaches runs that are already parked.
    const RETRY: RetryPolicy = RetryPolicy::DEFAULT;
    /// Runs the step.
    fn call(ctx: StepContext, input: Self::Input) -> StepFuture<Self::Output>;
}

/// The output type of a `#[function]`.
pub type Out<F> = <F as Function>::Output;

/// A step with its types erased, as the engine executes it.
#[derive(Clone, Copy)]
pub struct StepEntry {
    /// The step's name.
    pub name: &'static str,
    /// The step's own retry policy ([`Function::RETRY`]).
    pub retry: RetryPolicy,
    /// Decodes the JSON input, runs the step and encodes its output.
    pub call: fn(StepContext, Value) -> StepFuture<Value>,
}

impl std::fmt::Debug for StepEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepEntry")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .finish()
    }
}

impl StepEntry {
    /// The erased entry of a `#[function]`.
    pub fn of<F: Function>() -> Self {
        Self {
            name: F::NAME,
            retry: F::RETRY,
            call: call_erased::<F>,
        }
    }
}

fn call_erased<F: Function>(ctx: StepContext, input: Value) -> StepFuture<Value> {
    match serde_json::from_value::<F::Input>(input) {
        Ok(input) => {
            let fut = F::call(ctx, input);
            Box::pin(async move {
                let out = fut.await?;
                serde_json::to_value(out).map_err(|e| {
                    StepError::permanent(format!(
                        "step `{}` output could not be encoded: {e}",
                        F::NAME
                    ))
                })
            })
        }
        Err(e) => {
            let err = StepError::permanent(format!(
                "step `{}` input could not be decoded: {e}",
                F::NAME
            ));
            Box::pin(async move { Err(err) })
        }
    }
}
