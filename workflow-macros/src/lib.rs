//! Procedural macros for `workflow-runtime`: `#[function]` and `#[workflow]`.
//!
//! Depend on `workflow-runtime`, which re-exports these; the expansions name its paths.

mod function;
mod hash;
mod runtime;
#[cfg(test)]
mod snapshots;
mod workflow;

use proc_macro::TokenStream;

/// Marks an async step function: a side effect (an API call, an LLM call, a payment).
///
/// The function stays callable as a plain `async fn`. Beside it the macro emits a struct of
/// the same name implementing `workflow_runtime::Function`, so a workflow can write
/// `ctx.step(load_ticket, id)` and the compiler knows the step's input and output types.
///
/// Rules: an `async fn`, not generic, no `self`; an optional first parameter
/// `ctx: StepContext` (run id, attempt, idempotency key); the remaining parameters form the
/// input (one parameter: its type; several: a tuple; none: `()`), owned and serializable;
/// the return type is `Result<T, E>` with `T` serializable and `E: Into<StepError>`.
///
/// Retry arguments (all optional; the rest comes from `RetryPolicy::DEFAULT`: 3 attempts,
/// 1 s doubling to at most 60 s, no jitter, no timeout): `max_attempts = 5`,
/// `initial_backoff = "500ms"`, `max_backoff = "1m"`, `multiplier = 2.0`, `jitter = 0.2`,
/// `timeout = "30s"` (per attempt) and `retry_panics = true`. Durations are strings of whole
/// numbers with units (`ms`, `s`, `m`, `h`, `d`, combinable: `"1m30s"`). A value out of range
/// is a compile error at the argument. The policy is not part of the stored layout.
///
/// `crate = path::to::runtime` names the runtime for a crate that reaches it through a
/// re-export (default `::workflow_runtime`).
#[proc_macro_attribute]
pub fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(attr.into(), item.into()).into()
}

/// Compiles an async workflow function into a serializable state enum and a synchronous
/// transition function.
///
/// `#[workflow]` on `async fn name(ctx: &mut WorkflowContext, params..) -> Result<T, E>`
/// emits `mod name` (holding `name::State` and `name::advance`) and a constant `name` that
/// implements `workflow_runtime::Workflow`, for `engine.start(name, run_id, input)`.
///
/// Suspension points are `ctx.step(f, input).await` (or `ctx.step(f, input).retry(policy)
/// .await` with a `RetryPolicy` for this call), `ctx.wait_for_signal::<T>(name,
/// timeout, metadata).await` and `ctx.sleep(duration).await`; each becomes a variant named
/// from the code (`LoadTicket`, `AwaitingRefundDecision`, `Sleeping`) holding the locals
/// still needed after it. Name one explicitly with `#[state(Name)]` on its statement.
///
/// Arguments: `name = "stored_name"` (default: the function's name), `version = N`
/// (default 1), `migrate_from = previous_version` and `crate = path::to::runtime` for a crate
/// that reaches the runtime through a re-export (default `::workflow_runtime`; the layout
/// fingerprint does not depend on it).
#[proc_macro_attribute]
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(attr.into(), item.into()).into()
}
