//! Steps: the `#[function]` side of the model.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::retry::RetryPolicy;

/// Values that can live in a checkpoint: step inputs and outputs, workflow inputs, outputs and
/// held locals.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type; it exists so
/// that a missing derive is reported in the terms of this library.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use workflow_runtime::Persist;
///
/// #[derive(Serialize, Deserialize)]
/// struct Ticket {
///     id: String,
/// }
///
/// fn storable<T: Persist>() {}
/// storable::<Ticket>();
/// storable::<(u64, Vec<String>)>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in a workflow checkpoint",
    label = "this type must implement serde's `Serialize` and `Deserialize` and be `Send + 'static`",
    note = "step inputs and outputs, workflow inputs and outputs, and locals held across a suspension point are written to the checkpoint; add `#[derive(Serialize, Deserialize)]` or hold a serializable value instead"
)]
pub trait Persist: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Persist for T {}

/// Whether a failed step may be tried again.
///
/// ```
/// use workflow_runtime::{StepError, StepErrorKind};
/// assert_eq!(StepError::retryable("503").kind, StepErrorKind::Retryable);
/// assert_eq!(StepError::permanent("card declined").kind, StepErrorKind::Permanent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepErrorKind {
    /// A transient failure (rate limit, timeout, connection reset).
    Retryable,
    /// A failure that will not go away by trying again (bad request, refused payment).
    Permanent,
    /// An operator cancelled the run while this step was pending (`Engine::cancel`): the step's
    /// attempt was stopped, or never started. Never retried; the run ends `Cancelled` whatever
    /// the workflow returns, after the steps it runs to compensate.
    Cancelled,
}

/// The error a step returns; it reaches the workflow at its `ctx.step(..).await`.
///
/// A retryable error is tried again under the step's [`RetryPolicy`]; a permanent one (or the
/// last allowed attempt's) reaches the workflow. A `String` or `&str` converts into a
/// retryable error, so `?` works on them.
///
/// ```
/// use serde_json::json;
/// use workflow_runtime::StepError;
///
/// fn classify(status: u16) -> Result<(), StepError> {
///     match status {
///         200 => Ok(()),
///         429 | 503 => Err(StepError::retryable(format!("provider busy ({status})"))),
///         _ => Err(StepError::permanent("provider refused the refund")
///             .with_details(json!({ "status": status }))),
///     }
/// }
/// assert!(classify(503).unwrap_err().is_retryable());
/// let refused = classify(400).unwrap_err();
/// assert!(!refused.is_retryable());
/// assert_eq!(refused.details, Some(json!({ "status": 400 })));
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepError;
    /// let e = StepError::retryable("the provider answered 503");
    /// assert!(e.is_retryable());
    /// ```
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: StepErrorKind::Retryable,
            details: None,
        }
    }

    /// A permanent error with the given message.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepError;
    /// let e = StepError::permanent("card declined");
    /// assert!(!e.is_retryable());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: StepErrorKind::Permanent,
            details: None,
        }
    }

    /// The error a step pending at a cancellation resolves with.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepError;
    /// let e = StepError::cancelled("withdrawn");
    /// assert!(e.is_cancelled());
    /// assert_eq!(e.message, "the run was cancelled: withdrawn");
    /// ```
    pub fn cancelled(reason: impl Into<String>) -> Self {
        Self {
            message: format!("the run was cancelled: {}", reason.into()),
            kind: StepErrorKind::Cancelled,
            details: None,
        }
    }

    /// Whether the step resolved this way because the run was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepError;
    /// assert!(!StepError::retryable("timeout").is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.kind == StepErrorKind::Cancelled
    }

    /// Attaches structured details.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use workflow_runtime::StepError;
    /// let e = StepError::permanent("refused").with_details(json!({ "code": "insufficient_funds" }));
    /// assert_eq!(e.details.unwrap()["code"], "insufficient_funds");
    /// ```
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Whether trying again may help.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepError;
    /// assert!(StepError::from("a string error is retryable".to_owned()).is_retryable());
    /// ```
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

/// The values an engine hands to its steps (`EngineBuilder::data`), one per type.
///
/// Cheap to clone: every step context of an engine shares one map.
#[derive(Clone, Default)]
pub(crate) struct DataMap {
    values: Arc<HashMap<TypeId, Entry>>,
}

#[derive(Clone)]
struct Entry {
    type_name: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl DataMap {
    /// Adds `value`, replacing an earlier value of the same type.
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        let entry = Entry {
            type_name: std::any::type_name::<T>(),
            value,
        };
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), entry);
    }

    /// Adds every value of `other` whose type this map has none of.
    pub(crate) fn keep_missing(&mut self, other: &DataMap) {
        for (id, entry) in other.values.iter() {
            if !self.values.contains_key(id) {
                Arc::make_mut(&mut self.values).insert(*id, entry.clone());
            }
        }
    }

    fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let entry = self.values.get(&TypeId::of::<T>())?;
        entry.value.clone().downcast::<T>().ok()
    }

    fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.values.values().map(|e| e.type_name).collect();
        names.sort_unstable();
        names
    }
}

impl std::fmt::Debug for DataMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

/// What a step invocation knows about itself.
///
/// Take it as the first parameter of a `#[function]` to read the idempotency key or the
/// attempt number, or to reach the dependencies the engine was given; it is not part of the
/// step's input.
///
/// ```
/// use std::sync::Arc;
/// use workflow_runtime::prelude::*;
///
/// struct Payments {
///     currency: &'static str,
/// }
///
/// #[function]
/// async fn charge(ctx: StepContext, cents: u64) -> Result<String, StepError> {
///     let payments: Arc<Payments> = ctx.data::<Payments>()?;
///     Ok(format!("{cents} {} under key {}", payments.currency, ctx.idempotency_key()))
/// }
///
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // A unit test calls the step directly, with a context built by hand.
/// let ctx = StepContext::new("order-1", "charge", 1, 1).with_data(Payments { currency: "EUR" });
/// assert_eq!(charge(ctx, 250).await.unwrap(), "250 EUR under key order-1:charge:1");
/// # });
/// # }
/// ```
#[derive(Clone)]
pub struct StepContext {
    run_id: String,
    step: String,
    position: u64,
    attempt: u32,
    /// The step's index in a batch (`ctx.join`, `ctx.fan_out`), which shares its position.
    item: Option<usize>,
    data: DataMap,
}

impl PartialEq for StepContext {
    // Two contexts of the same invocation are equal whatever dependencies they carry:
    // dependencies are services, not part of what identifies an attempt.
    fn eq(&self, other: &Self) -> bool {
        (
            &self.run_id,
            &self.step,
            self.position,
            self.attempt,
            self.item,
        ) == (
            &other.run_id,
            &other.step,
            other.position,
            other.attempt,
            other.item,
        )
    }
}

impl Eq for StepContext {}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("run_id", &self.run_id)
            .field("step", &self.step)
            .field("position", &self.position)
            .field("attempt", &self.attempt)
            .field("data", &self.data)
            .finish()
    }
}

impl StepContext {
    /// Builds a context; the engine does this for every invocation, tests may too.
    ///
    /// ```
    /// # use workflow_runtime::StepContext;
    /// let ctx = StepContext::new("order-1", "charge", 3, 1);
    /// assert_eq!(ctx.idempotency_key(), "order-1:charge:3");
    /// ```
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
            item: None,
            data: DataMap::default(),
        }
    }

    /// The context of the step at `index` in a batch (`ctx.join`, `ctx.fan_out`): the
    /// steps of a batch share a position, and the index keeps their idempotency keys apart.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepContext;
    /// let ctx = StepContext::new("order-1", "review", 3, 1).with_item(2);
    /// assert_eq!(ctx.idempotency_key(), "order-1:review:3.2");
    /// assert_eq!(ctx.item(), Some(2));
    /// ```
    #[must_use]
    pub fn with_item(mut self, index: usize) -> Self {
        self.item = Some(index);
        self
    }

    /// The step's index in its batch, `None` for a step called alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepContext;
    /// assert_eq!(StepContext::new("order-1", "charge", 3, 1).item(), None);
    /// ```
    pub fn item(&self) -> Option<usize> {
        self.item
    }

    /// Adds a dependency that [`StepContext::data`] returns, replacing one of the same type;
    /// for unit tests that call a step directly. The engine gives its steps the values of
    /// [`EngineBuilder::data`](crate::EngineBuilder::data) instead.
    ///
    /// ```
    /// # use workflow_runtime::StepContext;
    /// let ctx = StepContext::new("run-1", "load", 1, 1).with_data(String::from("db://test"));
    /// assert_eq!(*ctx.data::<String>().unwrap(), "db://test");
    /// ```
    #[must_use]
    pub fn with_data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.data.insert(Arc::new(value));
        self
    }

    pub(crate) fn with_data_map(mut self, data: DataMap) -> Self {
        self.data = data;
        self
    }

    /// The dependency of type `T` the engine was given with
    /// [`EngineBuilder::data`](crate::EngineBuilder::data): an HTTP client, a payment
    /// provider, an LLM client. Every step of the engine shares the same value.
    ///
    /// ```
    /// # use workflow_runtime::StepContext;
    /// # #[derive(Debug)] struct Mailer;
    /// let ctx = StepContext::new("run-1", "notify", 1, 1);
    /// let err = ctx.data::<Mailer>().unwrap_err();
    /// assert!(err.message.contains("Mailer"), "{err}");
    /// ```
    ///
    /// # Errors
    /// A permanent [`StepError`] naming `T` and the types the engine was given, when it was
    /// given no value of type `T`: a missing dependency is a set-up mistake that no retry
    /// repairs.
    pub fn data<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, StepError> {
        self.data.get::<T>().ok_or_else(|| {
            let given = self.data.type_names();
            let given = if given.is_empty() {
                "none".to_owned()
            } else {
                given
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            StepError::permanent(format!(
                "step `{}` asked for a `{}`, which the engine was not given; add \
                 `.data(value)` of that type to the engine builder (given: {given})",
                self.step,
                std::any::type_name::<T>()
            ))
        })
    }

    /// The run this invocation belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepContext;
    /// assert_eq!(StepContext::new("order-1", "charge", 3, 1).run_id(), "order-1");
    /// ```
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The step's name (the function's name).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepContext;
    /// assert_eq!(StepContext::new("order-1", "charge", 3, 1).step_name(), "charge");
    /// ```
    pub fn step_name(&self) -> &str {
        &self.step
    }

    /// The step's position in the run: the sequence number of the checkpoint that scheduled it.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StepContext;
    /// assert_eq!(StepContext::new("order-1", "charge", 3, 1).position(), 3);
    /// ```
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Which attempt this is, starting at 1. A step that is re-run after a restart (its attempt
    /// never reported back) sees the same number again.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[function(max_attempts = 3)]
    /// async fn flaky(ctx: StepContext) -> Result<u32, StepError> {
    ///     if ctx.attempt() < 3 {
    ///         return Err(StepError::retryable("not yet"));
    ///     }
    ///     Ok(ctx.attempt())
    /// }
    /// # fn main() {}
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A key that is the same for every attempt and every restart of this step invocation,
    /// and different for every other invocation; pass it to external systems so they
    /// de-duplicate.
    ///
    /// ```
    /// # use workflow_runtime::StepContext;
    /// let first = StepContext::new("order-1", "charge", 3, 1);
    /// let retry = StepContext::new("order-1", "charge", 3, 2);
    /// assert_eq!(first.idempotency_key(), retry.idempotency_key());
    /// ```
    pub fn idempotency_key(&self) -> String {
        match self.item {
            None => format!("{}:{}:{}", self.run_id, self.step, self.position),
            Some(i) => format!("{}:{}:{}.{i}", self.run_id, self.step, self.position),
        }
    }
}

/// The boxed future a step invocation returns.
pub type StepFuture<T> = Pin<Box<dyn Future<Output = Result<T, StepError>> + Send + 'static>>;

/// Metadata and entry point of a `#[function]`; the macro implements it on a struct with the
/// function's name.
///
/// Name it to read a step's policy, or to pick a step in the testing toolkit
/// (`TestEngine::calls_of::<F>`, `TestEngineBuilder::replace::<F>`).
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[function(max_attempts = 5, timeout = "30s")]
/// async fn charge(cents: u64) -> Result<String, StepError> {
///     Ok(format!("paid {cents}"))
/// }
///
/// assert_eq!(<charge as Function>::NAME, "charge");
/// assert_eq!(<charge as Function>::RETRY.max_attempts, 5);
/// ```
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
