//! Child workflows as the model sees them: what a parent asks for (`ctx.child`,
//! `ctx.start_child`, `ctx.fan_out_children`) and what it gets back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One child run of a [`Command::Children`](crate::testing::Command::Children): which
/// workflow, under which run id, with which input, and its outcome once it is in.
///
/// # Examples
///
/// ```
/// use workflow_runtime::testing::ChildItem;
/// let item = ChildItem::new("line_review", "order-1/line_review-2.0", serde_json::json!("sku-1"));
/// assert!(item.result.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildItem {
    /// The child's workflow (`Workflow::NAME`).
    pub workflow: String,
    /// The child's run id: derived from the parent's (`<parent>/<workflow>-<seq>`, with
    /// `.<index>` for a fan-out), or the one the workflow gave (`.id(..)`).
    pub run_id: String,
    /// The child's input as JSON.
    pub input: Value,
    /// The child's outcome once it ended: its `Ok` value as JSON, or why it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Result<Value, ChildError>>,
    /// Not created yet: the process that ran the parent's transition shares its store and does
    /// not register the parent's workflow (a front end starting a run that asks for children
    /// at once), so the worker that next collects the parent's children creates it, in that
    /// commit. For detached children the parent waits for that commit, which also gives the
    /// workflow their run ids and lets it go on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

impl ChildItem {
    /// A child of workflow `workflow` at `run_id` with `input`, no outcome yet.
    pub fn new(workflow: impl Into<String>, run_id: impl Into<String>, input: Value) -> Self {
        Self {
            workflow: workflow.into(),
            run_id: run_id.into(),
            input,
            result: None,
            deferred: false,
        }
    }
}

/// Why an awaited child run did not give its parent an output.
///
/// `?` turns it into a [`WorkflowError`](crate::WorkflowError) whose details carry the
/// child's own error, so a parent can either handle it or pass it on.
///
/// # Examples
///
/// ```
/// use workflow_runtime::{ChildError, ChildErrorKind, WorkflowError};
/// let e = ChildError::new("order-1/review-2", ChildErrorKind::Cancelled, "the customer left");
/// assert_eq!(e.to_string(), "child run `order-1/review-2` was cancelled: the customer left");
/// let w: WorkflowError = e.into();
/// assert!(w.message.starts_with("child run"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("child run `{run_id}` {}: {message}", kind.verb())]
pub struct ChildError {
    /// The child's run id.
    pub run_id: String,
    /// How it ended.
    pub kind: ChildErrorKind,
    /// A readable account: the child's failure message, the cancellation's reason.
    pub message: String,
    /// The child's own error value (the `Err` of its output) as JSON, when it returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl ChildError {
    /// An error of kind `kind` for child `run_id`.
    pub fn new(
        run_id: impl Into<String>,
        kind: ChildErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            kind,
            message: message.into(),
            error: None,
        }
    }

    /// The child's own error decoded as `E` (the error type of the child workflow's
    /// `Result<T, E>`), when the child returned an `Err`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{ChildError, ChildErrorKind, WorkflowError};
    /// let mut e = ChildError::new("r/c", ChildErrorKind::Failed, "no stock");
    /// e.error = Some(serde_json::json!({ "message": "no stock" }));
    /// let inner: WorkflowError = e.error_as().unwrap();
    /// assert_eq!(inner.message, "no stock");
    /// ```
    pub fn error_as<E: serde::de::DeserializeOwned>(&self) -> Option<E> {
        self.error
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

/// How a child run ended without an output for its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildErrorKind {
    /// The child returned an `Err`, or failed (a step error it did not handle, a panic).
    Failed,
    /// An operator cancelled it (or its parent, which cancels its awaited children).
    Cancelled,
    /// An operator terminated it.
    Terminated,
    /// The run id was taken by a run of another workflow or with another input, or names the
    /// parent itself; nothing was started.
    Conflict,
    /// The child's workflow is not registered with the engine, or its run cannot be driven by
    /// the registered code, or its record is gone (purged).
    Unavailable,
}

impl ChildErrorKind {
    fn verb(self) -> &'static str {
        match self {
            ChildErrorKind::Failed => "failed",
            ChildErrorKind::Cancelled => "was cancelled",
            ChildErrorKind::Terminated => "was terminated",
            ChildErrorKind::Conflict => "could not be started",
            ChildErrorKind::Unavailable => "is unavailable",
        }
    }
}

impl From<ChildError> for crate::WorkflowError {
    fn from(e: ChildError) -> Self {
        let mut w = crate::WorkflowError::new(e.to_string());
        w.details = e.error;
        w
    }
}

/// The run id of a child that the parent `parent` starts at checkpoint `seq`: stable across
/// crashes, since a transition that is run again after a crash runs at the same `seq`.
pub(crate) fn derived_id(parent: &str, workflow: &str, seq: u64, index: Option<usize>) -> String {
    match index {
        None => format!("{parent}/{workflow}-{seq}"),
        Some(i) => format!("{parent}/{workflow}-{seq}.{i}"),
    }
}

/// What [`WorkflowContext::child`](crate::WorkflowContext::child) returns: a child run to
/// await for its output, or to give a run id with [`id`](ChildPoint::id) first.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn square(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
///     Ok(n * n)
/// }
///
/// #[workflow]
/// async fn area(ctx: &mut WorkflowContext, side: u64) -> Result<u64, WorkflowError> {
///     // A run id of our own instead of the derived one.
///     Ok(ctx.child(square, side).id(format!("square-{side}")).await?)
/// }
/// # fn main() {}
/// ```
#[must_use = "a child run starts only where it is awaited: `ctx.child(w, input).await`"]
pub struct ChildPoint<T> {
    output: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ChildPoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildPoint")
    }
}

impl<T> ChildPoint<T> {
    /// Starts the child under `run_id` instead of the id derived from the parent's. A run
    /// that has the id already is awaited if it is of the same workflow with the same input
    /// (adopted), and is a [`ChildErrorKind::Conflict`] otherwise.
    pub fn id(self, run_id: impl std::fmt::Display) -> Self {
        let _ = run_id;
        self
    }
}

impl<T> std::future::IntoFuture for ChildPoint<T> {
    type Output = Result<T, ChildError>;
    type IntoFuture = std::future::Ready<Result<T, ChildError>>;

    fn into_future(self) -> Self::IntoFuture {
        outside("child")
    }
}

/// What [`WorkflowContext::start_child`](crate::WorkflowContext::start_child) returns: a
/// detached child run to start, whose run id the `.await` gives.
#[must_use = "a child run starts only where it is awaited: `ctx.start_child(w, input).await`"]
#[derive(Debug)]
pub struct StartChildPoint {
    _private: (),
}

impl StartChildPoint {
    /// Starts the child under `run_id` instead of the id derived from the parent's.
    pub fn id(self, run_id: impl std::fmt::Display) -> Self {
        let _ = run_id;
        self
    }
}

impl std::future::IntoFuture for StartChildPoint {
    type Output = String;
    type IntoFuture = std::future::Ready<String>;

    fn into_future(self) -> Self::IntoFuture {
        outside("start_child")
    }
}

/// What [`WorkflowContext::fan_out_children`](crate::WorkflowContext::fan_out_children)
/// returns: child runs to await, each outcome on its own.
#[must_use = "child runs start only where they are awaited: `ctx.fan_out_children(w, items).await`"]
pub struct ChildrenPoint<T> {
    output: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ChildrenPoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildrenPoint")
    }
}

impl<T> std::future::IntoFuture for ChildrenPoint<T> {
    type Output = Vec<Result<T, ChildError>>;
    type IntoFuture = std::future::Ready<Vec<Result<T, ChildError>>>;

    fn into_future(self) -> Self::IntoFuture {
        outside("fan_out_children")
    }
}

fn outside<T>(method: &str) -> T {
    panic!(
        "`ctx.{method}(..)` was awaited outside a `#[workflow]` body, where nothing can \
         checkpoint it; only the body of a `#[workflow]` function can start child runs"
    )
}

impl crate::WorkflowContext {
    /// Starts a run of the registered workflow `workflow` with `input` as a child of this run,
    /// and gives its output once it ends: the `T` of its `Result<T, E>`, or a [`ChildError`]
    /// if it returned an `Err`, failed, or was cancelled or terminated.
    ///
    /// The child's run id is `<this run>/<workflow>-<checkpoint>` unless `.id(run_id)` gives
    /// one. It is created in the same commit as the checkpoint that waits for it, so a crash
    /// never starts it twice; its outcome reaches this run even across restarts. Cancelling or
    /// terminating this run does the same to the child while it is awaited.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[function]
    /// async fn price(sku: String) -> Result<u64, StepError> {
    ///     Ok(sku.len() as u64 * 100)
    /// }
    ///
    /// #[workflow]
    /// async fn quote(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    ///     Ok(ctx.step(price, sku).await?)
    /// }
    ///
    /// #[workflow]
    /// async fn checkout(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    ///     let cents = ctx.child(quote, sku).await?;
    ///     Ok(cents + 50)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(quote).register(checkout).open_in_memory().await?;
    /// let run = engine.start(checkout, "c-1", "lamp".to_owned()).await?;
    /// assert_eq!(run.result().await?, Ok(450));
    /// assert_eq!(engine.inspect("c-1/quote-1")?.parent.as_deref(), Some("c-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// A [`ChildError`] saying how the child ended, or why it could not be started.
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint it.
    pub fn child<W, T, E>(&mut self, workflow: W, input: W::Input) -> ChildPoint<T>
    where
        W: crate::Workflow<Output = Result<T, E>>,
    {
        let _ = (workflow, input);
        ChildPoint {
            output: std::marker::PhantomData,
        }
    }

    /// Starts a run of `workflow` with `input` detached: nothing awaits it, this run goes on
    /// at once with the child's run id, and cancelling this run leaves the child alone. The
    /// child is created in the same commit as this run's next checkpoint.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[workflow]
    /// async fn audit(ctx: &mut WorkflowContext, what: String) -> Result<(), WorkflowError> {
    ///     ctx.sleep(Duration::from_secs(86_400)).await;
    ///     Ok(())
    /// }
    ///
    /// #[workflow]
    /// async fn signup(ctx: &mut WorkflowContext, user: String) -> Result<String, WorkflowError> {
    ///     let audit_run = ctx.start_child(audit, user).await;
    ///     Ok(audit_run)
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(audit).register(signup).open_in_memory().await?;
    /// let run = engine.start(signup, "s-1", "ada".to_owned()).await?;
    /// assert_eq!(run.result().await?, Ok("s-1/audit-1".to_owned()));
    /// assert_eq!(engine.status("s-1/audit-1")?.kind(), "sleeping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint it.
    pub fn start_child<W: crate::Workflow>(
        &mut self,
        workflow: W,
        input: W::Input,
    ) -> StartChildPoint {
        let _ = (workflow, input);
        StartChildPoint { _private: () }
    }

    /// Starts one child run of `workflow` per item, all in one checkpoint, and gives every
    /// outcome in item order once all have ended. The children run at the same time (each is
    /// a run of its own; no bound applies). Their run ids are
    /// `<this run>/<workflow>-<checkpoint>.<index>`.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    ///
    /// #[workflow]
    /// async fn review(ctx: &mut WorkflowContext, line: String) -> Result<bool, WorkflowError> {
    ///     Ok(ctx.wait_for_signal::<bool>("ok", Duration::from_secs(3_600), ()).await?)
    /// }
    ///
    /// #[workflow]
    /// async fn order(ctx: &mut WorkflowContext, lines: Vec<String>) -> Result<usize, WorkflowError> {
    ///     let reviews = ctx.fan_out_children(review, lines).await;
    ///     Ok(reviews.into_iter().filter(|r| *r == Ok(true)).count())
    /// }
    ///
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(review).register(order).open_in_memory().await?;
    /// let run = engine.start(order, "o-1", vec!["a".into(), "b".into()]).await?;
    /// while engine.pending()?.len() < 2 {
    ///     tokio::task::yield_now().await;
    /// }
    /// engine.signal("o-1/review-1.0", "ok", true).await?;
    /// engine.signal("o-1/review-1.1", "ok", false).await?;
    /// assert_eq!(run.result().await?, Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Panics
    /// Awaited outside a `#[workflow]` body, where nothing can checkpoint it.
    pub fn fan_out_children<W, T, E, I>(&mut self, workflow: W, items: I) -> ChildrenPoint<T>
    where
        W: crate::Workflow<Output = Result<T, E>>,
        I: IntoIterator<Item = W::Input>,
    {
        let _ = (workflow, items.into_iter());
        ChildrenPoint {
            output: std::marker::PhantomData,
        }
    }
}
