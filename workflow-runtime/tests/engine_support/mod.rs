//! Hand-written workflows and steps for the engine tests, shaped like what `#[workflow]` and
//! `#[function]` expand to (see `research/target-expansion.rs`), so the engine can be tested
//! without the macros.
#![allow(dead_code, non_camel_case_types)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;
use workflow_runtime::__private::v1::{StepEntry, StepFuture, Transition};
use workflow_runtime::__private::v1::{
    check_payload, sleep_command, step_command, take_signal, take_start, take_step, take_wake,
    wait_command,
};
use workflow_runtime::prelude::*;

// ---------------------------------------------------------------- steps

/// How often each step input was executed, across the whole test binary.
static CALLS: LazyLock<Mutex<HashMap<String, u32>>> = LazyLock::new(Mutex::default);

fn count_call(key: &str) -> u32 {
    let mut calls = CALLS.lock().unwrap();
    let n = calls.entry(key.to_owned()).or_default();
    *n += 1;
    *n
}

/// How many times a step ran with this key.
pub fn calls(key: &str) -> u32 {
    CALLS.lock().unwrap().get(key).copied().unwrap_or(0)
}

pub struct double {}
impl Function for double {
    const NAME: &'static str = "double";
    const SIG_HASH: u64 = 1;
    type Input = u64;
    type Output = u64;
    fn call(_ctx: StepContext, n: u64) -> StepFuture<u64> {
        Box::pin(async move { Ok(n * 2) })
    }
}

pub struct add {}
impl Function for add {
    const NAME: &'static str = "add";
    const SIG_HASH: u64 = 2;
    type Input = (u64, u64);
    type Output = u64;
    fn call(_ctx: StepContext, (a, b): (u64, u64)) -> StepFuture<u64> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            Ok(a + b)
        })
    }
}

static GATES: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> = LazyLock::new(Mutex::default);

fn gate(key: &str) -> Arc<Semaphore> {
    GATES
        .lock()
        .unwrap()
        .entry(key.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(0)))
        .clone()
}

/// Lets the `prepare` step of a ticket named `gated-*` finish.
pub fn open_gate(ticket: &str) {
    gate(ticket).add_permits(1);
}

/// Looks up the amount of a ticket; for a ticket named `gated-*`, only once [`open_gate`] is
/// called, so that tests can act while the step runs.
pub struct prepare {}
impl Function for prepare {
    const NAME: &'static str = "prepare";
    const SIG_HASH: u64 = 3;
    type Input = String;
    type Output = u64;
    fn call(_ctx: StepContext, ticket: String) -> StepFuture<u64> {
        Box::pin(async move {
            if ticket.starts_with("gated-") {
                gate(&ticket).acquire().await.unwrap().forget();
            }
            Ok(ticket.len() as u64 * 10)
        })
    }
}

/// An external effect, counted per input so tests can check it happened once.
pub struct record_effect {}
impl Function for record_effect {
    const NAME: &'static str = "record_effect";
    const SIG_HASH: u64 = 4;
    type Input = String;
    type Output = String;
    fn call(ctx: StepContext, what: String) -> StepFuture<String> {
        Box::pin(async move {
            count_call(&what);
            Ok(format!("receipt:{}", ctx.idempotency_key()))
        })
    }
}

/// Never finishes the first time it runs for a key; finishes on later runs.
pub struct slow_once {}
impl Function for slow_once {
    const NAME: &'static str = "slow_once";
    const SIG_HASH: u64 = 5;
    type Input = String;
    type Output = String;
    fn call(_ctx: StepContext, key: String) -> StepFuture<String> {
        Box::pin(async move {
            if count_call(&key) == 1 {
                std::future::pending::<()>().await;
            }
            Ok(format!("done:{key}"))
        })
    }
}

/// Panics.
pub struct boom {}
impl Function for boom {
    const NAME: &'static str = "boom";
    const SIG_HASH: u64 = 6;
    type Input = String;
    type Output = String;
    fn call(_ctx: StepContext, key: String) -> StepFuture<String> {
        Box::pin(async move { panic!("kaboom {key}") })
    }
}

// ---------------------------------------------------------------- pipeline

/// `n` -> `double(n)` -> `add(a, 1)`; 13 returns `Err`, 666 panics in the workflow body.
pub mod pipeline {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Start { n: u64 },
        Double { n: u64 },
        Add {},
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Def;

    impl Workflow for Def {
        const NAME: &'static str = "pipeline";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = 0x1111;
        const BODY_HASH: u64 = 0x2222;
        type Input = u64;
        type Output = Result<u64, WorkflowError>;
        type State = State;

        fn start(n: u64) -> State {
            State::Start { n }
        }

        fn advance(
            state: State,
            ev: Event,
            _ctx: &mut WorkflowContext,
        ) -> Transition<State, Self::Output> {
            let mut ev = Some(ev);
            match state {
                State::Start { n } => {
                    if let Err(m) = take_start(&mut ev) {
                        return Transition::Reject(m.into_message());
                    }
                    Transition::Suspend(State::Double { n }, step_command::<double>(n))
                }
                State::Double { n } => {
                    let a = match take_step::<double>(&mut ev) {
                        Err(m) => return Transition::Reject(m.into_message()),
                        Ok(Err(e)) => return Transition::Complete(Err(e.into())),
                        Ok(Ok(a)) => a,
                    };
                    if n == 13 {
                        return Transition::Complete(Err(WorkflowError::new("unlucky 13")));
                    }
                    assert!(n != 666, "the number of the beast");
                    Transition::Suspend(State::Add {}, step_command::<add>((a, 1)))
                }
                State::Add {} => match take_step::<add>(&mut ev) {
                    Err(m) => Transition::Reject(m.into_message()),
                    Ok(Err(e)) => Transition::Complete(Err(e.into())),
                    Ok(Ok(b)) => Transition::Complete(Ok(b)),
                },
            }
        }

        fn steps() -> Vec<StepEntry> {
            vec![StepEntry::of::<double>(), StepEntry::of::<add>()]
        }

        fn check_signal(
            _name: &str,
            _payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            None
        }

        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => "Start",
                State::Double { .. } => "Double",
                State::Add { .. } => "Add",
            }
        }
    }
}

// ---------------------------------------------------------------- approval

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Approve,
    Reject,
    Changes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: String,
}

impl Decision {
    pub fn approve() -> Self {
        Self {
            verdict: Verdict::Approve,
            reason: "ok".into(),
        }
    }
    pub fn reject(reason: &str) -> Self {
        Self {
            verdict: Verdict::Reject,
            reason: reason.into(),
        }
    }
    pub fn changes() -> Self {
        Self {
            verdict: Verdict::Changes,
            reason: "again".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Refunded { receipt: String },
    Rejected { reason: String },
    TimedOut,
}

pub const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// `prepare(ticket)`, then wait up to a week for a `decision`: approve -> `record_effect`,
/// reject -> done, changes -> wait again, timeout -> `Outcome::TimedOut`.
pub mod approval {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Start { ticket: String },
        Prepare { ticket: String },
        AwaitingDecision { ticket: String, amount: u64 },
        RecordEffect {},
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Def;

    fn wait(ctx: &WorkflowContext, ticket: &str, amount: u64) -> Command {
        wait_command(
            ctx,
            "decision",
            WEEK,
            json!({"ticket": ticket, "amount": amount}),
        )
    }

    pub fn advance(state: State, ev: Event, ctx: &mut WorkflowContext) -> Transition<State, Out> {
        let mut ev = Some(ev);
        match state {
            State::Start { ticket } => {
                if let Err(m) = take_start(&mut ev) {
                    return Transition::Reject(m.into_message());
                }
                let cmd = step_command::<prepare>(ticket.clone());
                Transition::Suspend(State::Prepare { ticket }, cmd)
            }
            State::Prepare { ticket } => {
                let amount = match take_step::<prepare>(&mut ev) {
                    Err(m) => return Transition::Reject(m.into_message()),
                    Ok(Err(e)) => return Transition::Complete(Err(e.into())),
                    Ok(Ok(a)) => a,
                };
                let cmd = wait(ctx, &ticket, amount);
                Transition::Suspend(State::AwaitingDecision { ticket, amount }, cmd)
            }
            State::AwaitingDecision { ticket, amount } => {
                let decision = match take_signal::<Decision>(&mut ev) {
                    Err(m) => return Transition::Reject(m.into_message()),
                    Ok(Err(WaitError::TimedOut)) => {
                        return Transition::Complete(Ok(Outcome::TimedOut));
                    }
                    Ok(Err(cancelled @ WaitError::Cancelled)) => {
                        return Transition::Complete(Err(cancelled.into()));
                    }
                    Ok(Ok(d)) => d,
                };
                match decision.verdict {
                    Verdict::Approve => Transition::Suspend(
                        State::RecordEffect {},
                        step_command::<record_effect>(format!("refund:{ticket}:{amount}")),
                    ),
                    Verdict::Reject => Transition::Complete(Ok(Outcome::Rejected {
                        reason: decision.reason,
                    })),
                    Verdict::Changes => {
                        let cmd = wait(ctx, &ticket, amount);
                        Transition::Suspend(State::AwaitingDecision { ticket, amount }, cmd)
                    }
                }
            }
            State::RecordEffect {} => match take_step::<record_effect>(&mut ev) {
                Err(m) => Transition::Reject(m.into_message()),
                Ok(Err(e)) => Transition::Complete(Err(e.into())),
                Ok(Ok(receipt)) => Transition::Complete(Ok(Outcome::Refunded { receipt })),
            },
        }
    }

    pub type Out = Result<Outcome, WorkflowError>;

    impl Workflow for Def {
        const NAME: &'static str = "approval";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = 0xA11;
        const BODY_HASH: u64 = 0xB11;
        type Input = String;
        type Output = Out;
        type State = State;

        fn start(ticket: String) -> State {
            State::Start { ticket }
        }

        fn advance(state: State, ev: Event, ctx: &mut WorkflowContext) -> Transition<State, Out> {
            advance(state, ev, ctx)
        }

        fn steps() -> Vec<StepEntry> {
            vec![StepEntry::of::<prepare>(), StepEntry::of::<record_effect>()]
        }

        fn check_signal(
            name: &str,
            payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            match name {
                "decision" => Some(check_payload::<Decision>(payload)),
                _ => None,
            }
        }

        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => "Start",
                State::Prepare { .. } => "Prepare",
                State::AwaitingDecision { .. } => "AwaitingDecision",
                State::RecordEffect { .. } => "RecordEffect",
            }
        }
    }

    /// `approval` under another name, for a workflow that cannot check payloads before they
    /// are buffered (as with signal names computed at run time).
    #[derive(Debug, Clone, Copy)]
    pub struct Unchecked;

    impl Workflow for Unchecked {
        const NAME: &'static str = "approval_unchecked";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = 0xA13;
        const BODY_HASH: u64 = 0xB13;
        type Input = String;
        type Output = Out;
        type State = State;

        fn start(ticket: String) -> State {
            Def::start(ticket)
        }

        fn advance(state: State, ev: Event, ctx: &mut WorkflowContext) -> Transition<State, Out> {
            advance(state, ev, ctx)
        }

        fn steps() -> Vec<StepEntry> {
            Def::steps()
        }

        fn check_signal(
            _name: &str,
            _payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            None
        }

        fn variant_name(state: &State) -> &'static str {
            Def::variant_name(state)
        }
    }

    /// The same workflow name compiled with another state layout.
    #[derive(Debug, Clone, Copy)]
    pub struct V2;

    impl Workflow for V2 {
        const NAME: &'static str = "approval";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = 0xA12;
        const BODY_HASH: u64 = 0xB12;
        type Input = String;
        type Output = Out;
        type State = State;

        fn start(ticket: String) -> State {
            panic!("V2 must not start a run of {ticket} in these tests")
        }

        fn advance(_: State, _: Event, _: &mut WorkflowContext) -> Transition<State, Out> {
            panic!("V2 must never be handed a state written by Def")
        }

        fn steps() -> Vec<StepEntry> {
            Def::steps()
        }

        fn check_signal(
            name: &str,
            payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            Def::check_signal(name, payload)
        }

        fn variant_name(state: &State) -> &'static str {
            Def::variant_name(state)
        }
    }
}

/// The name and fingerprint of `approval`, with a state enum that cannot decode its states: a
/// layout change the fingerprint missed.
pub mod liar {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Elsewhere { x: u64 },
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Def;

    impl Workflow for Def {
        const NAME: &'static str = "approval";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = <approval::Def as Workflow>::LAYOUT_HASH;
        const BODY_HASH: u64 = 0xB13;
        type Input = String;
        type Output = approval::Out;
        type State = State;

        fn start(ticket: String) -> State {
            panic!("the liar must not start a run of {ticket}")
        }

        fn advance(_: State, _: Event, _: &mut WorkflowContext) -> Transition<State, Self::Output> {
            panic!("the liar cannot have decoded a state of `approval`")
        }

        fn steps() -> Vec<StepEntry> {
            Vec::new()
        }

        fn check_signal(
            _name: &str,
            _payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            None
        }

        fn variant_name(_: &State) -> &'static str {
            "Elsewhere"
        }
    }
}

// ---------------------------------------------------------------- nap

/// Sleeps for `minutes`, then returns the workflow clock's time.
pub mod nap {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Start { minutes: u64 },
        Sleeping {},
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Def;

    impl Workflow for Def {
        const NAME: &'static str = "nap";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = 0x5A;
        const BODY_HASH: u64 = 0x5B;
        type Input = u64;
        type Output = Result<u64, WorkflowError>;
        type State = State;

        fn start(minutes: u64) -> State {
            State::Start { minutes }
        }

        fn advance(
            state: State,
            ev: Event,
            ctx: &mut WorkflowContext,
        ) -> Transition<State, Self::Output> {
            let mut ev = Some(ev);
            match state {
                State::Start { minutes } => {
                    if let Err(m) = take_start(&mut ev) {
                        return Transition::Reject(m.into_message());
                    }
                    let cmd = sleep_command(ctx, Duration::from_secs(minutes * 60));
                    Transition::Suspend(State::Sleeping {}, cmd)
                }
                State::Sleeping {} => match take_wake(&mut ev) {
                    Err(m) => Transition::Reject(m.into_message()),
                    Ok(()) => Transition::Complete(Ok(ctx.now_millis())),
                },
            }
        }

        fn steps() -> Vec<StepEntry> {
            Vec::new()
        }

        fn check_signal(
            _name: &str,
            _payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            None
        }

        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => "Start",
                State::Sleeping { .. } => "Sleeping",
            }
        }
    }
}

// ---------------------------------------------------------------- single step

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    SlowOnce,
    Boom,
}

/// Runs one step (`slow_once` or `boom`) on `key` and returns its output; its error propagates.
pub mod single {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Start { kind: StepKind, key: String },
        Running {},
    }

    #[derive(Debug, Clone, Copy)]
    pub struct Def;

    impl Workflow for Def {
        const NAME: &'static str = "single";
        const VERSION: u32 = 1;
        const LAYOUT_HASH: u64 = 0x51;
        const BODY_HASH: u64 = 0x52;
        type Input = (StepKind, String);
        type Output = Result<String, WorkflowError>;
        type State = State;

        fn start((kind, key): (StepKind, String)) -> State {
            State::Start { kind, key }
        }

        fn advance(
            state: State,
            ev: Event,
            _ctx: &mut WorkflowContext,
        ) -> Transition<State, Self::Output> {
            let mut ev = Some(ev);
            match state {
                State::Start { kind, key } => {
                    if let Err(m) = take_start(&mut ev) {
                        return Transition::Reject(m.into_message());
                    }
                    let cmd = match kind {
                        StepKind::SlowOnce => step_command::<slow_once>(key),
                        StepKind::Boom => step_command::<boom>(key),
                    };
                    Transition::Suspend(State::Running {}, cmd)
                }
                // Both steps output a `String`.
                State::Running {} => match take_step::<slow_once>(&mut ev) {
                    Err(m) => Transition::Reject(m.into_message()),
                    Ok(Err(e)) => Transition::Complete(Err(e.into())),
                    Ok(Ok(out)) => Transition::Complete(Ok(out)),
                },
            }
        }

        fn steps() -> Vec<StepEntry> {
            vec![StepEntry::of::<slow_once>(), StepEntry::of::<boom>()]
        }

        fn check_signal(
            _name: &str,
            _payload: &Value,
        ) -> Option<Result<(), workflow_runtime::PayloadError>> {
            None
        }

        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => "Start",
                State::Running { .. } => "Running",
            }
        }
    }
}

// ---------------------------------------------------------------- helpers

/// An engine over an in-memory store with every test workflow and a manual clock.
pub async fn memory_engine(clock: &ManualClock) -> Engine {
    with_all(Engine::builder().clock(clock.clone()))
        .open_in_memory()
        .await
        .expect("in-memory engine opens")
}

/// Registers every test workflow.
pub fn with_all(b: EngineBuilder) -> EngineBuilder {
    b.register(pipeline::Def)
        .register(approval::Def)
        .register(approval::Unchecked)
        .register(nap::Def)
        .register(single::Def)
}

/// Polls `f` until it returns `Some`, for up to five seconds.
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(t) = f() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}")
}

/// Waits until the run waits for a signal and returns the wait id.
pub async fn wait_id(engine: &Engine, run_id: &str) -> String {
    eventually(&format!("run `{run_id}` to wait"), || {
        match engine.status(run_id).unwrap() {
            RunStatus::Waiting { wait_id, .. } => Some(wait_id),
            _ => None,
        }
    })
    .await
}

/// The trace of a run as its event names.
pub fn event_names(engine: &Engine, run_id: &str) -> Vec<String> {
    engine
        .trace(run_id)
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

pub use serde_json::Value;
use workflow_runtime::__private::v1::{Command, Event};
