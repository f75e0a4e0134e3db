//! The calls a workflow body suspends at: `ctx.step(..)`, `ctx.wait_for_signal::<T>(..)` and
//! `ctx.sleep(..)`.
//!
//! `#[workflow]` recognises these calls in the body and compiles each into a checkpointed
//! suspension point; the methods below exist so that the calls users write are documented,
//! type-checked against the step's signature when read by tools, and completed by the IDE.
//! Awaited anywhere else, they do not suspend anything: see each method's `# Panics` and
//! `# Errors`.

use std::future::{Future, IntoFuture, Ready, ready};
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{WaitError, WorkflowContext};
use crate::retry::RetryPolicy;
use crate::step::{StepContext, StepError};

/// A `#[function]` step as [`WorkflowContext::step`] sees it: an `async fn` returning
/// `Result<T, E>` with `E: Into<StepError>`, with an optional leading [`StepContext`]
/// parameter. `Input` is what `ctx.step` takes: `()` for no parameter, the parameter's type
/// for one, a tuple for several.
///
/// Implemented for every such function; the `Marker` parameter only keeps the implementations
/// for different parameter lists apart, and is inferred.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// // Steps of every shape `ctx.step` accepts: no input, one, several (as a tuple), with a context.
/// #[function]
/// async fn ping() -> Result<(), StepError> {
///     Ok(())
/// }
/// #[function]
/// async fn add(a: u64, b: u64) -> Result<u64, StepError> {
///     Ok(a + b)
/// }
/// #[function]
/// async fn key(ctx: StepContext, n: u64) -> Result<String, StepError> {
///     Ok(format!("{n}@{}", ctx.idempotency_key()))
/// }
///
/// #[workflow]
/// async fn shapes(ctx: &mut WorkflowContext) -> Result<String, WorkflowError> {
///     ctx.step(ping, ()).await?;
///     let sum = ctx.step(add, (2, 3)).await?;
///     Ok(ctx.step(key, sum).await?)
/// }
/// # fn main() {}
/// ```
pub trait StepFn<Input, Marker> {
    /// The `T` of the step's `Result<T, E>`: what `ctx.step(..).await?` gives.
    type Output;
}

macro_rules! step_fn {
    ($input:ty; $($a:ident),*) => {
        impl<Func, Fut, T, E, $($a),*> StepFn<$input, fn($($a),*)> for Func
        where
            Func: Fn($($a),*) -> Fut,
            Fut: Future<Output = Result<T, E>>,
            E: Into<StepError>,
        {
            type Output = T;
        }

        impl<Func, Fut, T, E, $($a),*> StepFn<$input, fn(StepContext, $($a),*)> for Func
        where
            Func: Fn(StepContext, $($a),*) -> Fut,
            Fut: Future<Output = Result<T, E>>,
            E: Into<StepError>,
        {
            type Output = T;
        }
    };
}

step_fn!((););
step_fn!(A; A);
step_fn!((A, B); A, B);
step_fn!((A, B, C); A, B, C);
step_fn!((A, B, C, D); A, B, C, D);
step_fn!((A, B, C, D, E2); A, B, C, D, E2);
step_fn!((A, B, C, D, E2, F); A, B, C, D, E2, F);
step_fn!((A, B, C, D, E2, F, G); A, B, C, D, E2, F, G);
step_fn!((A, B, C, D, E2, F, G, H); A, B, C, D, E2, F, G, H);

/// What [`WorkflowContext::step`] returns: a step call to await, optionally with
/// [`StepPoint::retry`] first.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[function]
/// async fn charge(cents: u64) -> Result<String, StepError> {
///     Ok(format!("paid {cents}"))
/// }
///
/// #[workflow]
/// async fn pay(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
///     let patient = RetryPolicy::new().max_attempts(10).initial_backoff(Duration::from_secs(5));
///     Ok(ctx.step(charge, cents).retry(patient).await?)
/// }
/// # fn main() {}
/// ```
#[must_use = "a step runs only where it is awaited: `ctx.step(f, input).await`"]
pub struct StepPoint<T> {
    output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for StepPoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepPoint")
    }
}

impl<T> StepPoint<T> {
    /// Runs this call under `policy` instead of the step's own retry policy (the one its
    /// `#[function(..)]` arguments set). The policy is checked when the call is reached; an
    /// invalid one fails the run with the reason.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[function]
    /// async fn notify(user: String) -> Result<(), StepError> {
    ///     Ok(())
    /// }
    ///
    /// #[workflow]
    /// async fn welcome(ctx: &mut WorkflowContext, user: String) -> Result<(), WorkflowError> {
    ///     // A welcome mail is worth two tries, not the default three.
    ///     ctx.step(notify, user).retry(RetryPolicy::DEFAULT.max_attempts(2)).await?;
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub fn retry(self, policy: RetryPolicy) -> Self {
        let _ = policy;
        self
    }
}

impl<T> IntoFuture for StepPoint<T> {
    type Output = Result<T, StepError>;
    type IntoFuture = Ready<Result<T, StepError>>;

    fn into_future(self) -> Self::IntoFuture {
        ready(Err(StepError::permanent(
            "`ctx.step(..)` was awaited outside a `#[workflow]` body, where nothing can \
             checkpoint it; call the step from a workflow, or call the `#[function]` directly \
             as a plain `async fn`",
        )))
    }
}

/// What [`WorkflowContext::wait_for_signal`] returns: a wait to await.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn review(ctx: &mut WorkflowContext, ticket: String) -> Result<bool, WorkflowError> {
///     let meta = json!({ "ticket": ticket });
///     match ctx.wait_for_signal::<bool>("verdict", Duration::from_secs(7 * 86_400), meta).await {
///         Ok(verdict) => Ok(verdict),
///         Err(WaitError::TimedOut) => Ok(false),
///         Err(e) => Err(e.into()),
///     }
/// }
/// # fn main() {}
/// ```
#[must_use = "a wait happens only where it is awaited: `ctx.wait_for_signal::<T>(..).await`"]
pub struct WaitPoint<T> {
    payload: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for WaitPoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitPoint")
    }
}

impl<T> IntoFuture for WaitPoint<T> {
    type Output = Result<T, WaitError>;
    type IntoFuture = Ready<Result<T, WaitError>>;

    fn into_future(self) -> Self::IntoFuture {
        outside("wait_for_signal::<T>")
    }
}

/// What [`WorkflowContext::sleep`] returns: a durable timer to await.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn remind(ctx: &mut WorkflowContext, days: u64) -> Result<(), WorkflowError> {
///     // A durable timer: a restart in between does not shorten or repeat it.
///     ctx.sleep(Duration::from_secs(days * 86_400)).await;
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[must_use = "a sleep happens only where it is awaited: `ctx.sleep(duration).await`"]
#[derive(Debug)]
pub struct SleepPoint {
    _private: (),
}

impl IntoFuture for SleepPoint {
    type Output = ();
    type IntoFuture = Ready<()>;

    fn into_future(self) -> Self::IntoFuture {
        outside("sleep")
    }
}

/// What [`WorkflowContext::fan_out`] returns: a batch of steps to await.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[function]
/// async fn double(n: u64) -> Result<u64, StepError> {
///     Ok(n * 2)
/// }
///
/// #[workflow]
/// async fn doubles(ctx: &mut WorkflowContext, ns: Vec<u64>) -> Result<Vec<u64>, WorkflowError> {
///     Ok(ctx.fan_out(double, ns, 8).await?)
/// }
/// # fn main() {}
/// ```
#[must_use = "a fan-out happens only where it is awaited: `ctx.fan_out(f, items, limit).await`"]
pub struct FanOutPoint<T> {
    output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for FanOutPoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FanOutPoint")
    }
}

impl<T> IntoFuture for FanOutPoint<T> {
    type Output = Result<Vec<T>, StepError>;
    type IntoFuture = Ready<Result<Vec<T>, StepError>>;

    fn into_future(self) -> Self::IntoFuture {
        outside("fan_out")
    }
}

/// What [`WorkflowContext::fan_out_all`] returns: a batch of steps to await, each result on
/// its own.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[function]
/// async fn double(n: u64) -> Result<u64, StepError> {
///     Ok(n * 2)
/// }
///
/// #[workflow]
/// async fn doubles(ctx: &mut WorkflowContext, ns: Vec<u64>) -> Result<usize, WorkflowError> {
///     let results = ctx.fan_out_all(double, ns, 0).await;
///     Ok(results.into_iter().filter(Result::is_ok).count())
/// }
/// # fn main() {}
/// ```
#[must_use = "a fan-out happens only where it is awaited: `ctx.fan_out_all(f, items, limit).await`"]
pub struct FanOutAllPoint<T> {
    output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for FanOutAllPoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FanOutAllPoint")
    }
}

impl<T> IntoFuture for FanOutAllPoint<T> {
    type Output = Vec<Result<T, StepError>>;
    type IntoFuture = Ready<Vec<Result<T, StepError>>>;

    fn into_future(self) -> Self::IntoFuture {
        outside("fan_out_all")
    }
}

/// A wait or a sleep awaited outside a workflow body: there is no value to give and no error
/// channel to report it on, and going on as if it had waited would be wrong.
fn outside<T>(method: &str) -> T {
    panic!(
        "`ctx.{method}(..)` was awaited outside a `#[workflow]` body, where nothing can \
         checkpoint it; only the body of a `#[workflow]` function can wait durably"
    )
}

impl WorkflowContext {
    /// Runs the `#[function]` step `step` with `input` and gives its result: the workflow
    /// suspends here, the engine runs the step (retrying it under its policy), checkpoints the
    /// result and resumes the body with it. `input` is the step's single parameter, a tuple
    /// of several, or `()` for none; a leading `StepContext` parameter is not part of it.
    ///
    /// After a crash the step may run again (its checkpoint was not written yet): give
    /// external systems [`StepContext::idempotency_key`] so the effect happens once.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[function]
    /// async fn load_price(sku: String) -> Result<u64, StepError> {
    ///     Ok(if sku == "tea" { 450 } else { 900 })
    /// }
    ///
    /// #[function]
    /// async fn charge(ctx: StepContext, customer: String, cents: u64) -> Result<String, StepError> {
    ///     Ok(format!("{customer} paid {cents} ({})", ctx.idempotency_key()))
    /// }
    ///
    /// #[workflow]
    /// async fn buy(ctx: &mut WorkflowContext, customer: String) -> Result<String, WorkflowError> {
    ///     let cents = ctx.step(load_price, "tea".to_owned()).await?;
    ///     let receipt = ctx.step(charge, (customer, cents)).await?;
    ///     Ok(receipt)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(buy).open_in_memory().await?;
    /// let run = engine.start(buy, "order-1", "ada".to_owned()).await?;
    /// assert_eq!(run.result().await?, Ok("ada paid 450 (order-1:charge:2)".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// The step's error once its retries are used up (or at once for a permanent one), as the
    /// `Err` of the awaited result. Awaited outside a `#[workflow]` body, where nothing can
    /// checkpoint it, the call runs nothing and gives a permanent [`StepError`] saying so.
    pub fn step<F, I, M>(&mut self, step: F, input: I) -> StepPoint<F::Output>
    where
        F: StepFn<I, M>,
    {
        let _ = (step, input);
        StepPoint {
            output: PhantomData,
        }
    }

    /// Waits for the signal `name` (sent with [`Engine::signal`](crate::Engine::signal)) for
    /// at most `timeout`, and gives its payload decoded as `T`. The deadline is fixed when the
    /// wait is first checkpointed: restarts never extend it. `metadata` (anything
    /// serializable, `()` for none) is stored with the wait, and
    /// [`Engine::pending`](crate::Engine::pending) shows it, so an approval inbox can list what
    /// each run waits for.
    ///
    /// A signal sent before the wait is reached is kept and consumed by it. A payload that
    /// does not decode as `T` is refused to its sender and the run keeps waiting. Name the
    /// signal with a string literal so the engine can refuse names no wait uses.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[workflow]
    /// async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    ///     let decision = match ctx
    ///         .wait_for_signal::<bool>("approve", Duration::from_secs(86_400), json!({ "amount": amount }))
    ///         .await
    ///     {
    ///         Ok(true) => "approved",
    ///         Ok(false) => "rejected",
    ///         Err(WaitError::TimedOut) => "nobody answered",
    ///         Err(WaitError::Cancelled) => "cancelled by an operator",
    ///     };
    ///     Ok(decision.to_owned())
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// let run = engine.start(approval, "expense-7", 120).await?;
    /// let waiting = engine.pending()?;
    /// assert_eq!(waiting[0].metadata, json!({ "amount": 120 }));
    /// engine.signal("expense-7", "approve", true).await?;
    /// assert_eq!(run.result().await?, Ok("approved".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the deadline passes before a signal arrives.
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint the wait.
    pub fn wait_for_signal<T: DeserializeOwned>(
        &mut self,
        name: &str,
        timeout: Duration,
        metadata: impl Serialize,
    ) -> WaitPoint<T> {
        let _ = (name, timeout, metadata);
        WaitPoint {
            payload: PhantomData,
        }
    }

    /// Waits for whichever of several signals arrives first, for at most `timeout`, and gives
    /// it as the variant of the enum `T` that stands for it. `T` is an enum the workflow
    /// declares, deriving serde's `Deserialize` in its default (externally tagged) form, with
    /// one variant per name, as serde names them (`#[serde(rename_all = "snake_case")]` maps
    /// `Approve` to `"approve"`); the variant holds the signal's payload.
    ///
    /// The names are a literal array, so the engine knows them: a signal of any other name is
    /// refused, as with [`wait_for_signal`](WorkflowContext::wait_for_signal). Signals of the
    /// listed names that arrived earlier are buffered, and the oldest of them answers the wait
    /// at once; the others stay buffered for later waits. [`Engine::pending`](crate::Engine::pending)
    /// lists the wait with its first name as `signal` and every name in `any_of`.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Serialize, Deserialize)]
    /// #[serde(rename_all = "snake_case")]
    /// enum Review {
    ///     Approve { amount: u64 },
    ///     Reject { reason: String },
    ///     CustomerCancelled,
    /// }
    ///
    /// #[workflow]
    /// async fn refund(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    ///     let review = ctx
    ///         .wait_for_any::<Review>(["approve", "reject", "customer_cancelled"], Duration::from_secs(86_400), json!({ "amount": amount }))
    ///         .await;
    ///     Ok(match review {
    ///         Ok(Review::Approve { amount }) => format!("refund {amount}"),
    ///         Ok(Review::Reject { reason }) => format!("rejected: {reason}"),
    ///         Ok(Review::CustomerCancelled) => "withdrawn".to_owned(),
    ///         Err(WaitError::TimedOut) => "nobody answered".to_owned(),
    ///         Err(WaitError::Cancelled) => "cancelled by an operator".to_owned(),
    ///     })
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(refund).open_in_memory().await?;
    /// let run = engine.start(refund, "t-9", 120).await?;
    /// assert_eq!(engine.pending()?[0].any_of, ["approve", "reject", "customer_cancelled"]);
    /// engine.signal("t-9", "reject", json!({ "reason": "duplicate" })).await?;
    /// assert_eq!(run.result().await?, Ok("rejected: duplicate".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the deadline passes before any of the signals arrives.
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint the wait. Inside one,
    /// a name without a variant of `T` fails the run when the wait begins, with a message
    /// naming the name and `T`'s variants.
    pub fn wait_for_any<T: DeserializeOwned>(
        &mut self,
        names: impl AsRef<[&'static str]>,
        timeout: Duration,
        metadata: impl Serialize,
    ) -> WaitPoint<T> {
        let _ = (names.as_ref(), timeout, metadata);
        WaitPoint {
            payload: PhantomData,
        }
    }

    /// Runs the step `step` once per item of `items`, at most `limit` at a time (0: no
    /// bound), and gives their outputs in the order of the items, or the error of the first
    /// item (in item order) that failed. Each result is checkpointed as it arrives, in groups
    /// when several arrive during one commit; after a crash only the items without a result
    /// run again, under the same idempotency keys (`StepContext::item` tells them apart).
    ///
    /// Several different steps at once: `ctx.join((load_ticket, id), (load_customer, cid))`
    /// gives a tuple of outputs (`ctx.join_all` a tuple of results).
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[function]
    /// async fn summarize(doc: String) -> Result<usize, StepError> {
    ///     Ok(doc.len())
    /// }
    ///
    /// #[workflow]
    /// async fn digest(ctx: &mut WorkflowContext, docs: Vec<String>) -> Result<usize, WorkflowError> {
    ///     let lengths = ctx.fan_out(summarize, docs, 4).await?;
    ///     Ok(lengths.iter().sum())
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(digest).open_in_memory().await?;
    /// let run = engine.start(digest, "d-1", vec!["ab".into(), "cde".into()]).await?;
    /// assert_eq!(run.result().await?, Ok(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// The error of the first failed item, in item order (every item runs to its end).
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint the batch.
    pub fn fan_out<F, I>(&mut self, step: F, items: I, limit: usize) -> FanOutPoint<F::Output>
    where
        F: crate::Function,
        I: IntoIterator<Item = F::Input>,
    {
        let _ = (step, items.into_iter(), limit);
        FanOutPoint {
            output: PhantomData,
        }
    }

    /// As [`fan_out`](WorkflowContext::fan_out), but gives every item's result on its own,
    /// in item order.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[function(max_attempts = 1)]
    /// async fn check(n: u32) -> Result<u32, StepError> {
    ///     if n == 0 { Err(StepError::permanent("zero")) } else { Ok(n) }
    /// }
    ///
    /// #[workflow]
    /// async fn checks(ctx: &mut WorkflowContext, ns: Vec<u32>) -> Result<usize, WorkflowError> {
    ///     let results = ctx.fan_out_all(check, ns, 0).await;
    ///     Ok(results.iter().filter(|r| r.is_err()).count())
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(checks).open_in_memory().await?;
    /// let run = engine.start(checks, "c-1", vec![1, 0, 2]).await?;
    /// assert_eq!(run.result().await?, Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint the batch.
    pub fn fan_out_all<F, I>(
        &mut self,
        step: F,
        items: I,
        limit: usize,
    ) -> FanOutAllPoint<F::Output>
    where
        F: crate::Function,
        I: IntoIterator<Item = F::Input>,
    {
        let _ = (step, items.into_iter(), limit);
        FanOutAllPoint {
            output: PhantomData,
        }
    }

    /// Sleeps durably for `duration`: the run is checkpointed with an absolute deadline and
    /// costs nothing while it sleeps; a restart neither extends nor forgets the timer.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// use workflow_runtime::testing::TestEngine;
    ///
    /// #[function]
    /// async fn send_reminder(user: String) -> Result<(), StepError> {
    ///     Ok(())
    /// }
    ///
    /// #[workflow]
    /// async fn trial(ctx: &mut WorkflowContext, user: String) -> Result<(), WorkflowError> {
    ///     ctx.sleep(Duration::from_secs(13 * 86_400)).await;
    ///     ctx.step(send_reminder, user).await?;
    ///     Ok(())
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let te = TestEngine::builder().register(trial).build().await;
    /// let run = te.start(trial, "trial-ada", "ada".to_owned()).await.unwrap();
    /// assert_eq!(te.calls_of::<send_reminder>("trial-ada"), 0);
    /// te.advance(Duration::from_secs(13 * 86_400)).await;
    /// assert_eq!(te.calls_of::<send_reminder>("trial-ada"), 1);
    /// assert_eq!(run.result().await.unwrap(), Ok(()));
    /// # });
    /// # }
    /// ```
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint the timer.
    pub fn sleep(&mut self, duration: Duration) -> SleepPoint {
        let _ = duration;
        SleepPoint { _private: () }
    }
}

#[cfg(test)]
mod tests {
    //! The calls as users write them type-check against these signatures; awaited outside a
    //! workflow they report it instead of pretending to suspend.

    use super::*;
    use crate::model::WorkflowError;

    async fn no_input() -> Result<u8, StepError> {
        Ok(1)
    }
    async fn ctx_only(_: StepContext) -> Result<u16, StepError> {
        Ok(2)
    }
    async fn one(x: String) -> Result<String, StepError> {
        Ok(x)
    }
    async fn ctx_one(_: StepContext, x: u32) -> Result<u32, String> {
        Ok(x)
    }
    async fn ctx_two(_: StepContext, a: String, b: u64) -> Result<(String, u64), StepError> {
        Ok((a, b))
    }

    /// Mirrors a workflow body; compiled, never meant to finish (it is a type check).
    #[allow(dead_code, clippy::unused_async)]
    async fn as_users_write_it(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
        let a: u8 = ctx.step(no_input, ()).await?;
        let b: u16 = ctx.step(ctx_only, ()).await?;
        let c: String = ctx.step(one, "x".to_owned()).await?;
        let d: u32 = ctx
            .step(ctx_one, 4)
            .retry(RetryPolicy::DEFAULT.max_attempts(5))
            .await?;
        let (e, f): (String, u64) = ctx.step(ctx_two, (c.clone(), 7)).await?;
        let decided = match ctx
            .wait_for_signal::<u8>("decide", Duration::from_secs(1), ())
            .await
        {
            Ok(n) => n > 2,
            Err(WaitError::TimedOut) => false,
            Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
        };
        let note: String = ctx
            .wait_for_signal("note", Duration::from_secs(1), serde_json::json!({"k": 1}))
            .await?;
        ctx.sleep(Duration::from_secs(1)).await;
        Ok(u64::from(a)
            + u64::from(b)
            + u64::from(d)
            + f
            + e.len() as u64
            + note.len() as u64
            + u64::from(decided))
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_step_awaited_outside_a_workflow_is_a_permanent_error_saying_so() {
        let mut ctx = WorkflowContext::new("r", 0, 1);
        let err = block_on(async { ctx.step(one, "x".to_owned()).await }).unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.message.contains("outside a `#[workflow]` body"),
            "{err}"
        );
    }

    #[test]
    #[should_panic(expected = "`ctx.sleep(..)` was awaited outside a `#[workflow]` body")]
    fn a_sleep_awaited_outside_a_workflow_panics_with_the_reason() {
        let mut ctx = WorkflowContext::new("r", 0, 1);
        block_on(async { ctx.sleep(Duration::from_secs(1)).await });
    }

    #[test]
    #[should_panic(expected = "`ctx.wait_for_signal::<T>(..)` was awaited outside")]
    fn a_wait_awaited_outside_a_workflow_panics_with_the_reason() {
        let mut ctx = WorkflowContext::new("r", 0, 1);
        let _ = block_on(async {
            ctx.wait_for_signal::<u8>("x", Duration::from_secs(1), ())
                .await
        });
    }
}
