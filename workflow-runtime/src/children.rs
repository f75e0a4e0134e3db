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
}

impl ChildItem {
    /// A child of workflow `workflow` at `run_id` with `input`, no outcome yet.
    pub fn new(workflow: impl Into<String>, run_id: impl Into<String>, input: Value) -> Self {
        Self {
            workflow: workflow.into(),
            run_id: run_id.into(),
            input,
            result: None,
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
