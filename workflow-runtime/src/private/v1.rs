//! Version 1 of the support code for what `#[workflow]` and `#[function]` expand to. Not a
//! public API; see the parent module for what may change here.

use std::collections::VecDeque;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::children::{ChildError, ChildItem};
pub use crate::codec::{FNV_OFFSET, fnv1a, mix};
pub use crate::error::{MigrationError, PayloadError};
pub use crate::model::{
    BatchItem, Command, Event, Migration, Transition, WaitError, Workflow, WorkflowContext,
    WorkflowOutput,
};
pub use crate::retry::RetryPolicy;
pub use crate::step::{Function, Persist, StepContext, StepError};
pub use crate::step::{Out, StepEntry, StepFuture};
pub use serde;
pub use serde_json;

/// Builds the command that runs step `F` with `input`.
///
/// # Panics
/// If the input cannot be encoded as JSON (the engine fails the run with the message).
pub fn step_command<F: Function>(input: F::Input) -> Command {
    match serde_json::to_value(input) {
        Ok(input) => Command::Step {
            name: F::NAME.to_owned(),
            input,
            retry: None,
            attempt: 1,
            not_before_ms: None,
        },
        Err(e) => panic!("the input of step `{}` could not be encoded: {e}", F::NAME),
    }
}

/// Builds the command that runs step `F` with `input` under `policy` instead of the step's own
/// (`ctx.step(f, input).retry(policy)`).
///
/// # Panics
/// If the input cannot be encoded or the policy breaks a rule (the engine fails the run with
/// the message).
pub fn step_command_retry<F: Function>(input: F::Input, policy: RetryPolicy) -> Command {
    if let Err(e) = policy.check() {
        panic!("the retry policy for step `{}` is invalid: {e}", F::NAME);
    }
    let mut cmd = step_command::<F>(input);
    if let Command::Step { retry, .. } = &mut cmd {
        *retry = Some(policy);
    }
    cmd
}

/// Builds the command that waits for signal `name` until `timeout` after the transition's
/// time (`ctx.wait_for_signal(name, timeout, metadata)`).
///
/// # Panics
/// If the metadata cannot be encoded as JSON (the engine fails the run with the message).
pub fn wait_command<M: Serialize>(
    ctx: &WorkflowContext,
    name: impl Into<String>,
    timeout: Duration,
    metadata: M,
) -> Command {
    Command::wait(
        name,
        ctx.deadline(timeout),
        serde_json::to_value(metadata).expect("signal metadata encodes as JSON"),
    )
}

/// Builds the command that waits for whichever of the signals `names` arrives first, until
/// `timeout` after the transition's time (`ctx.wait_for_any::<T>([..], timeout, metadata)`).
///
/// # Panics
/// If the metadata cannot be encoded as JSON, or `T` is an enum without a variant for one of
/// the names (the engine fails the run with the message).
pub fn wait_any_command<T: DeserializeOwned, M: Serialize>(
    ctx: &WorkflowContext,
    names: &[&str],
    timeout: Duration,
    metadata: M,
) -> Command {
    if let Err(e) = crate::signals::check_variants::<T>(names) {
        panic!("{e}");
    }
    Command::wait_any(
        names,
        ctx.deadline(timeout),
        serde_json::to_value(metadata).expect("signal metadata encodes as JSON"),
    )
}

/// Checks that the payload of signal `name` decodes into `T`'s variant for it, the way a wait
/// on several signals receives it (`{ name: payload }`).
///
/// # Errors
/// The payload does not decode into that variant.
pub fn check_tagged<T: DeserializeOwned>(name: &str, payload: &Value) -> Result<(), PayloadError> {
    let mut tagged = serde_json::Map::new();
    tagged.insert(name.to_owned(), payload.clone());
    PayloadError::check::<T>(&Value::Object(tagged))
}

/// One step of a batch: step `F` with `input`.
///
/// # Panics
/// If the input cannot be encoded as JSON (the engine fails the run with the message).
pub fn batch_item<F: Function>(input: F::Input) -> BatchItem {
    match serde_json::to_value(input) {
        Ok(input) => BatchItem::new(F::NAME, input),
        Err(e) => panic!("the input of step `{}` could not be encoded: {e}", F::NAME),
    }
}

/// The batch of `ctx.fan_out(f, items, limit)`: step `F` once per item, at most `limit` at a
/// time (0: no bound).
pub fn fan_out_command<F: Function, I: IntoIterator<Item = F::Input>>(
    items: I,
    limit: usize,
) -> Command {
    batch_command(items.into_iter().map(batch_item::<F>).collect(), limit)
}

/// The batch of `ctx.join(..)` or `ctx.fan_out(..)`.
pub fn batch_command(items: Vec<BatchItem>, limit: usize) -> Command {
    Command::Batch {
        items,
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
    }
}

/// Takes the results of a batch of `n` steps; a cancellation gives each the cancellation
/// error. `Err` rejects the event.
pub fn take_batch(
    ev: &mut Option<Event>,
    n: usize,
) -> Result<VecDeque<Result<Value, StepError>>, Rejection> {
    match ev.take() {
        Some(Event::BatchDone(results)) if results.len() == n => Ok(results.into()),
        Some(Event::Cancelled { reason }) => Ok((0..n)
            .map(|_| Err(StepError::cancelled(reason.clone())))
            .collect()),
        other => Err(unexpected(&format!("the results of {n} steps"), other)),
    }
}

/// Takes the results of a fan-out, however many; a cancellation gives one cancellation error,
/// so that neither form of the fan-out mistakes it for success. `Err` rejects the event.
pub fn take_fan_out(
    ev: &mut Option<Event>,
) -> Result<VecDeque<Result<Value, StepError>>, Rejection> {
    match ev.take() {
        Some(Event::BatchDone(results)) => Ok(results.into()),
        Some(Event::Cancelled { reason }) => Ok([Err(StepError::cancelled(reason))].into()),
        other => Err(unexpected("the results of a fan-out", other)),
    }
}

/// The next result of a batch, decoded as step `F`'s output.
pub fn next_result<F: Function>(
    results: &mut VecDeque<Result<Value, StepError>>,
) -> Result<F::Output, StepError> {
    match results.pop_front() {
        Some(Ok(v)) => serde_json::from_value(v).map_err(|e| {
            StepError::permanent(format!(
                "the output of step `{}` could not be decoded: {e}",
                F::NAME
            ))
        }),
        Some(Err(e)) => Err(e),
        None => Err(StepError::permanent(format!(
            "the batch has no result for step `{}`",
            F::NAME
        ))),
    }
}

/// Every result of a fan-out of step `F`, in the order of its items.
pub fn fan_out_results<F: Function>(
    mut results: VecDeque<Result<Value, StepError>>,
) -> Vec<Result<F::Output, StepError>> {
    (0..results.len())
        .map(|_| next_result::<F>(&mut results))
        .collect()
}

/// The outputs of a fan-out, or the error of its first failed item (in item order).
///
/// # Errors
/// The first failed item's error.
pub fn first_error<T>(results: Vec<Result<T, StepError>>) -> Result<Vec<T>, StepError> {
    results.into_iter().collect()
}

/// The command of `ctx.child(w, input)` (awaited) or `ctx.start_child(w, input)` (detached),
/// with `.id(run_id)` when given, else a run id derived from the parent's and the checkpoint's.
///
/// # Panics
/// If the input cannot be encoded as JSON (the engine fails the run with the message).
pub fn child_command<W: Workflow>(
    ctx: &WorkflowContext,
    _workflow: W,
    input: W::Input,
    run_id: Option<String>,
    detached: bool,
) -> Command {
    let run_id = run_id
        .unwrap_or_else(|| crate::children::derived_id(ctx.run_id(), W::NAME, ctx.seq(), None));
    Command::Children {
        items: vec![child_item::<W>(input, run_id)],
        detached,
    }
}

/// The command of `ctx.fan_out_children(w, items)`: one awaited child of `W` per item, with
/// run ids derived from the parent's, the checkpoint's and the item's position.
pub fn fan_out_children_command<W: Workflow, I: IntoIterator<Item = W::Input>>(
    ctx: &WorkflowContext,
    _workflow: W,
    items: I,
) -> Command {
    let items = items
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let id = crate::children::derived_id(ctx.run_id(), W::NAME, ctx.seq(), Some(i));
            child_item::<W>(input, id)
        })
        .collect();
    Command::Children {
        items,
        detached: false,
    }
}

fn child_item<W: Workflow>(input: W::Input, run_id: String) -> crate::ChildItem {
    match serde_json::to_value(input) {
        Ok(input) => crate::ChildItem::new(W::NAME, run_id, input),
        Err(e) => panic!(
            "the input of child workflow `{}` could not be encoded: {e}",
            W::NAME
        ),
    }
}

/// A run id given with `.id(..)`; a `String`, `&str` or anything `Display`.
pub fn child_id(id: impl std::fmt::Display) -> Option<String> {
    Some(id.to_string())
}

/// Takes the outcomes of the children of a [`Command::Children`]. `Err` rejects the event.
pub fn take_children(
    ev: &mut Option<Event>,
) -> Result<VecDeque<Result<Value, crate::ChildError>>, Rejection> {
    match ev.take() {
        Some(Event::ChildrenDone(results)) => Ok(results.into()),
        other => Err(unexpected("the outcomes of child runs", other)),
    }
}

/// The next child outcome, decoded as the `Ok` type of `W`'s output.
pub fn next_child<W: Workflow>(
    results: &mut VecDeque<Result<Value, crate::ChildError>>,
) -> Result<<W::Output as ResultParts>::Ok, crate::ChildError>
where
    <W::Output as ResultParts>::Ok: DeserializeOwned,
    W::Output: ResultParts,
{
    match results.pop_front() {
        Some(Ok(v)) => serde_json::from_value(v).map_err(|e| {
            crate::ChildError::new(
                "",
                crate::ChildErrorKind::Failed,
                format!(
                    "the output of child workflow `{}` could not be decoded: {e}",
                    W::NAME
                ),
            )
        }),
        Some(Err(e)) => Err(e),
        None => Err(crate::ChildError::new(
            "",
            crate::ChildErrorKind::Unavailable,
            format!("no outcome for a child of workflow `{}`", W::NAME),
        )),
    }
}

/// The run id of a detached child, as `ctx.start_child` returns it.
pub fn next_child_id(results: &mut VecDeque<Result<Value, crate::ChildError>>) -> String {
    match results.pop_front() {
        Some(Ok(Value::String(id))) => id,
        _ => String::new(),
    }
}

/// Every outcome of `ctx.fan_out_children(w, items)`, in the order of its items.
pub fn children_results<W: Workflow>(
    mut results: VecDeque<Result<Value, crate::ChildError>>,
) -> Vec<Result<<W::Output as ResultParts>::Ok, crate::ChildError>>
where
    <W::Output as ResultParts>::Ok: DeserializeOwned,
    W::Output: ResultParts,
{
    (0..results.len())
        .map(|_| next_child::<W>(&mut results))
        .collect()
}

/// Builds the command that sleeps for `duration` from the transition's time
/// (`ctx.sleep(duration)`).
pub fn sleep_command(ctx: &WorkflowContext, duration: Duration) -> Command {
    Command::Sleep {
        deadline_ms: ctx.deadline(duration),
    }
}

/// Why a transition refused its event; the state is unchanged and the refusal's text becomes
/// [`Transition::Reject`]'s message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The event is not the kind the state waits for.
    #[error("expected {expected}, got {}", got.as_ref().map_or_else(|| "no event".to_owned(), |ev| format!("{ev:?}")))]
    Unexpected {
        /// What the state waits for.
        expected: String,
        /// The event that came instead.
        got: Option<Event>,
    },
    /// The signal's payload does not decode into the waited type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl Rejection {
    /// The refusal as [`Transition::Reject`] carries it: the message and its causes.
    pub fn into_message(self) -> String {
        crate::error::with_causes(&self)
    }
}

fn unexpected(expected: &str, got: Option<Event>) -> Rejection {
    Rejection::Unexpected {
        expected: expected.to_owned(),
        got,
    }
}

/// Takes the completion of step `F`; `Err` rejects the event.
pub fn take_step<F: Function>(
    ev: &mut Option<Event>,
) -> Result<Result<F::Output, StepError>, Rejection> {
    match ev.take() {
        Some(Event::StepDone(Ok(v))) => Ok(serde_json::from_value(v).map_err(|e| {
            StepError::permanent(format!(
                "the output of step `{}` could not be decoded: {e}",
                F::NAME
            ))
        })),
        Some(Event::StepDone(Err(e))) => Ok(Err(e)),
        Some(Event::Cancelled { reason }) => Ok(Err(StepError::cancelled(reason))),
        other => Err(unexpected(
            &format!("the result of step `{}`", F::NAME),
            other,
        )),
    }
}

/// Takes a signal payload or a timeout; `Err` rejects the event (wrong payload shape).
pub fn take_signal<T: DeserializeOwned>(
    ev: &mut Option<Event>,
) -> Result<Result<T, WaitError>, Rejection> {
    match ev.take() {
        Some(Event::Signal(v)) => match serde_json::from_value::<T>(v) {
            Ok(t) => Ok(Ok(t)),
            Err(e) => Err(Rejection::Payload(PayloadError::decoding::<T>(e))),
        },
        Some(Event::TimedOut) => Ok(Err(WaitError::TimedOut)),
        Some(Event::Cancelled { .. }) => Ok(Err(WaitError::Cancelled)),
        other => Err(unexpected("a signal or a timeout", other)),
    }
}

/// Takes the end of a sleep; `Err` rejects the event.
pub fn take_wake(ev: &mut Option<Event>) -> Result<(), Rejection> {
    match ev.take() {
        Some(Event::Woke) => Ok(()),
        other => Err(unexpected("the end of a sleep", other)),
    }
}

/// Takes the start event; `Err` rejects the event.
pub fn take_start(ev: &mut Option<Event>) -> Result<(), Rejection> {
    match ev.take() {
        Some(Event::Start) => Ok(()),
        other => Err(unexpected("the start of the run", other)),
    }
}

/// Checks that a payload decodes into `T`.
///
/// # Errors
/// The payload does not decode into `T`.
pub fn check_payload<T: DeserializeOwned>(payload: &Value) -> Result<(), PayloadError> {
    PayloadError::check::<T>(payload)
}

/// The value of a body that ends in a statement that never completes; never called.
///
/// # Panics
/// Always: reaching it means the body fell off its end, which the compiler would have refused
/// for the original `async fn`.
pub fn fell_off<T>() -> T {
    panic!("the workflow body ended without producing its result")
}

/// Whether two strings are equal, in a `const` (for compile-time checks on workflow names).
pub const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Migrates a stored state of workflow `Old` into `New`'s state with the user's `TryFrom`.
///
/// # Errors
/// The old state does not decode, the conversion refuses it, or the new state does not encode.
pub fn migrate_state<Old: Workflow, New: Workflow>(old: Value) -> Result<Value, MigrationError>
where
    New::State: TryFrom<Old::State>,
    <New::State as TryFrom<Old::State>>::Error: std::fmt::Display,
{
    let old: Old::State = serde_json::from_value(old).map_err(|e| {
        MigrationError::with_source(format!("the v{} state does not decode", Old::VERSION), e)
    })?;
    // The conversion's error is only `Display`, so its text joins the message.
    let new = New::State::try_from(old).map_err(|e| {
        MigrationError::new(format!(
            "the migration from v{} to v{} refused the state: {e}",
            Old::VERSION,
            New::VERSION
        ))
    })?;
    serde_json::to_value(new)
        .map_err(|e| MigrationError::with_source("the migrated state does not encode", e))
}

/// Compile-time check that a type can be stored.
pub const fn assert_persist<T: Persist>() {}

/// The element types of a tuple, so that `let (a, b) = ctx.step(..).await?;` can hold `a` and
/// `b` across suspension points; positions past the tuple's arity are `()`.
pub trait Elems {
    /// The first element's type.
    type E0;
    /// The second element's type.
    type E1;
    /// The third element's type.
    type E2;
    /// The fourth element's type.
    type E3;
    /// The fifth element's type.
    type E4;
    /// The sixth element's type.
    type E5;
}

macro_rules! elems {
    ($($t:ident),* ; $($unit:ident),*) => {
        impl<$($t),*> Elems for ($($t,)*) {
            elems!(@assign 0, $($t),* ; $($unit),*);
        }
    };
    (@assign $n:tt, ; $($unit:ident),*) => { $(type $unit = ();)* };
    (@assign 0, $a:ident $(, $rest:ident)* ; $($unit:ident),*) => { type E0 = $a; elems!(@assign 1, $($rest),* ; $($unit),*); };
    (@assign 1, $a:ident $(, $rest:ident)* ; $($unit:ident),*) => { type E1 = $a; elems!(@assign 2, $($rest),* ; $($unit),*); };
    (@assign 2, $a:ident $(, $rest:ident)* ; $($unit:ident),*) => { type E2 = $a; elems!(@assign 3, $($rest),* ; $($unit),*); };
    (@assign 3, $a:ident $(, $rest:ident)* ; $($unit:ident),*) => { type E3 = $a; elems!(@assign 4, $($rest),* ; $($unit),*); };
    (@assign 4, $a:ident $(, $rest:ident)* ; $($unit:ident),*) => { type E4 = $a; elems!(@assign 5, $($rest),* ; $($unit),*); };
    (@assign 5, $a:ident $(, $rest:ident)* ; $($unit:ident),*) => { type E5 = $a; };
}
elems!(A; E1, E2, E3, E4, E5);
elems!(A, B; E2, E3, E4, E5);
elems!(A, B, C; E3, E4, E5);
elems!(A, B, C, D; E4, E5);
elems!(A, B, C, D, E; E5);
elems!(A, B, C, D, E, F;);

/// The payload type of an `Option`, so that `Some(x)` bound from a value of a known type can be
/// held across suspension points.
pub trait OptionParts {
    /// The type inside `Some`.
    type Some;
}

impl<T> OptionParts for Option<T> {
    type Some = T;
}

/// The payload types of a `Result`, so that `Ok(v)` and `Err(e)` bound from a value of a known
/// type can be held across suspension points.
pub trait ResultParts {
    /// The type inside `Ok`.
    type Ok;
    /// The type inside `Err`.
    type Err;
}

impl<T, E> ResultParts for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// A `for` loop's remaining items, held across suspension points.
pub trait ForCursor {
    /// The loop variable's type.
    type Item;
    /// The next item, if any.
    fn next_item(&mut self) -> Option<Self::Item>;
}

impl<T> ForCursor for VecDeque<T> {
    type Item = T;
    fn next_item(&mut self) -> Option<T> {
        self.pop_front()
    }
}

/// Collects the items of a `for` loop that suspends.
pub fn vec_cursor<I: IntoIterator>(items: I) -> VecDeque<I::Item> {
    items.into_iter().collect()
}

/// Integer types a suspending `for` loop can range over.
pub trait RangeIdx: Copy + PartialOrd {
    /// The next value, if there is one.
    fn succ(self) -> Option<Self>;
}

macro_rules! range_idx {
    ($($t:ty),*) => {$(
        impl RangeIdx for $t {
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
        }
    )*};
}
range_idx!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

/// A range held across suspension points. `RangeInclusive` is not used because serde drops
/// its "exhausted" flag, which would repeat the last item after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeCursor<T> {
    next: Option<T>,
    end: T,
    inclusive: bool,
}

impl<T: RangeIdx> RangeCursor<T> {
    /// `start..end` or `start..=end`.
    pub fn new(start: T, end: T, inclusive: bool) -> Self {
        Self {
            next: Some(start),
            end,
            inclusive,
        }
    }
}

impl<T: RangeIdx> ForCursor for RangeCursor<T> {
    type Item = T;
    fn next_item(&mut self) -> Option<T> {
        let cur = self.next?;
        let in_range = if self.inclusive {
            cur <= self.end
        } else {
            cur < self.end
        };
        if !in_range {
            self.next = None;
            return None;
        }
        self.next = cur.succ();
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_cursor_survives_a_round_trip_at_the_last_item() {
        let mut c = RangeCursor::new(0u8, 255, true);
        for _ in 0..255 {
            c.next_item();
        }
        let json = serde_json::to_string(&c).unwrap();
        let mut c: RangeCursor<u8> = serde_json::from_str(&json).unwrap();
        assert_eq!(c.next_item(), Some(255));
        let json = serde_json::to_string(&c).unwrap();
        let mut c: RangeCursor<u8> = serde_json::from_str(&json).unwrap();
        assert_eq!(c.next_item(), None);
    }

    #[test]
    fn exclusive_range_stops_before_end() {
        let mut c = RangeCursor::new(2i64, 4, false);
        assert_eq!(
            (c.next_item(), c.next_item(), c.next_item()),
            (Some(2), Some(3), None)
        );
    }
}
