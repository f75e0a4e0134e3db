//! A registered workflow with its types erased: the engine stores and moves JSON, and only this
//! module decodes a state into `W::State`.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;

use crate::codec;
use crate::error::with_causes;
use crate::model::{
    Command, Event, Migration, Transition, Workflow, WorkflowContext, WorkflowOutput,
};
use crate::step::StepEntry;
use crate::stored_state::StoredState;
use crate::types::{RunRecord, panic_text};

/// What one call of the transition function produced, in stored form.
#[derive(Debug)]
pub(crate) enum Advanced {
    /// Suspended: the next state and what it waits for.
    Suspend(StoredState, Command),
    /// Returned. `failure` is the error's JSON when the output is an `Err`.
    Complete {
        output: Value,
        failure: Option<String>,
    },
    /// The event does not fit the state; nothing changed.
    Reject(String),
    /// The transition panicked or its result could not be encoded.
    Fail(String),
    /// The stored state does not decode into `W::State`; the run must be parked.
    Undecodable(String),
}

/// A workflow as the engine drives it.
pub(crate) trait Driver: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    fn layout_hash(&self) -> u64;
    fn body_hash(&self) -> u64;
    fn mermaid(&self) -> &'static str;
    /// Runs `W::advance` on a stored state; never panics.
    fn advance(&self, state: &StoredState, event: Event, ctx: &mut WorkflowContext) -> Advanced;
    fn step(&self, name: &str) -> Option<StepEntry>;
    /// Why a payload for the wait named `name` is refused, if the workflow names that wait
    /// literally and the payload does not fit it (or the check panicked).
    fn refuse_payload(&self, name: &str, payload: &Value) -> Option<String>;
    /// `W::SIGNALS`: the names waited on, `None` if some are computed.
    fn signals(&self) -> Option<&'static [&'static str]>;
    /// The migrations into this version.
    fn migrations(&self) -> Vec<Migration>;
    /// Whether a stored state decodes into this version's state.
    fn decodes(&self, state: &StoredState) -> Result<(), serde_json::Error>;
    /// The start state for an input given as JSON (a schedule stores its input that way):
    /// `Err` when the input does not decode into `W::Input`, else what [`start_state`] gives.
    fn start_json(&self, input: &Value) -> Result<Result<StoredState, StartFailure>, String>;

    /// Why a stored run must not be decoded with this code, if it must not.
    fn incompatibility(&self, rec: &RunRecord) -> Option<String> {
        if rec.workflow == self.name()
            && rec.version == self.version()
            && rec.layout_hash == self.layout_hash()
        {
            return None;
        }
        Some(format!(
            "the checkpoint was written by `{}` v{} (layout {:016x}), the registered code is `{}` \
             v{} (layout {:016x})",
            rec.workflow,
            rec.version,
            rec.layout_hash,
            self.name(),
            self.version(),
            self.layout_hash()
        ))
    }
}

/// The [`Driver`] of `W`.
pub(crate) struct Typed<W> {
    /// `W::steps()`, built once since every step execution looks one up.
    steps: Vec<StepEntry>,
    workflow: PhantomData<fn() -> W>,
}

impl<W: Workflow> Typed<W> {
    pub(crate) fn new() -> Self {
        Typed {
            steps: W::steps(),
            workflow: PhantomData,
        }
    }
}

impl<W: Workflow> Driver for Typed<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn version(&self) -> u32 {
        W::VERSION
    }

    fn layout_hash(&self) -> u64 {
        W::LAYOUT_HASH
    }

    fn mermaid(&self) -> &'static str {
        W::MERMAID
    }

    fn body_hash(&self) -> u64 {
        W::BODY_HASH
    }

    fn advance(&self, state: &StoredState, event: Event, ctx: &mut WorkflowContext) -> Advanced {
        // Straight from the stored text: no JSON tree is built on the way.
        let state: W::State = match state.decode() {
            Ok(s) => s,
            Err(e) => {
                return Advanced::Undecodable(format!(
                    "the stored state does not decode into `{}`: {e}",
                    std::any::type_name::<W::State>()
                ));
            }
        };
        let transition = catch_unwind(AssertUnwindSafe(|| W::advance(state, event, ctx)));
        match transition {
            Err(panic) => Advanced::Fail(format!("workflow panicked: {}", panic_text(&*panic))),
            Ok(Transition::Reject(msg)) => Advanced::Reject(msg),
            Ok(Transition::Suspend(state, cmd)) => match StoredState::encode(&state) {
                Ok(state) => Advanced::Suspend(state, cmd),
                Err(e) => Advanced::Fail(format!(
                    "the state `{}` could not be encoded: {e}",
                    W::variant_name(&state)
                )),
            },
            Ok(Transition::Complete(out)) => complete::<W>(&out),
        }
    }

    fn step(&self, name: &str) -> Option<StepEntry> {
        self.steps.iter().find(|s| s.name == name).copied()
    }

    fn signals(&self) -> Option<&'static [&'static str]> {
        W::SIGNALS
    }

    fn refuse_payload(&self, name: &str, payload: &Value) -> Option<String> {
        match catch_unwind(AssertUnwindSafe(|| W::check_signal(name, payload))) {
            Ok(Some(Err(e))) => Some(with_causes(&e)),
            Ok(Some(Ok(())) | None) => None,
            Err(p) => Some(format!("the payload check panicked: {}", panic_text(&*p))),
        }
    }
    fn migrations(&self) -> Vec<Migration> {
        W::migrations()
    }

    fn decodes(&self, state: &StoredState) -> Result<(), serde_json::Error> {
        state.decode::<W::State>().map(drop)
    }

    fn start_json(&self, input: &Value) -> Result<Result<StoredState, StartFailure>, String> {
        let input: W::Input = codec::from_value_ref(input).map_err(|e| {
            format!(
                "the input does not decode into `{}`: {e}",
                std::any::type_name::<W::Input>()
            )
        })?;
        Ok(start_state::<W>(input))
    }
}

/// Encodes an output; an `Err` output also yields the error's JSON as the failure message.
fn complete<W: Workflow>(out: &W::Output) -> Advanced {
    match codec::to_value(out) {
        Ok(output) => {
            // The message is shown (status, trace, errors): a secret in the error stays hidden.
            let failure = (!out.is_success()).then(|| match &output {
                Value::Object(m) if m.len() == 1 && m.contains_key("Err") => {
                    crate::secret::redacted(&m["Err"]).to_string()
                }
                other => crate::secret::redacted(other).to_string(),
            });
            Advanced::Complete { output, failure }
        }
        Err(e) => Advanced::Fail(format!("the workflow's output could not be encoded: {e}")),
    }
}

/// Why a run could not be given its start state; the run is created failed with this message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartFailure {
    /// The start state has no JSON form.
    #[error("the start state could not be encoded: {0}")]
    Encode(serde_json::Error),
    /// `W::start` panicked; the panic's message.
    #[error("workflow panicked: {0}")]
    Panicked(String),
}

/// Runs `W::start` on a typed input, catching a panic.
pub(crate) fn start_state<W: Workflow>(input: W::Input) -> Result<StoredState, StartFailure> {
    match catch_unwind(AssertUnwindSafe(|| W::start(input))) {
        Ok(state) => StoredState::encode(&state).map_err(StartFailure::Encode),
        Err(panic) => Err(StartFailure::Panicked(panic_text(&*panic))),
    }
}
