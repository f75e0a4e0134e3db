//! Workspace-level integration tests, and a small synchronous driver that runs a workflow's
//! transition function directly (no engine, no store), round-tripping the state through JSON
//! at every suspension point as a checkpoint would.

pub mod fixture;
pub mod workflows;

use std::collections::VecDeque;

use serde_json::Value;
use workflow_runtime::testing::{Command, Event, Transition};
use workflow_runtime::{StepContext, Workflow, WorkflowContext};

/// What the driver feeds a run when it waits or sleeps.
#[derive(Debug, Clone)]
pub enum Input {
    /// Deliver this payload to the pending wait.
    Signal(Value),
    /// Let the pending wait time out.
    Timeout,
}

/// The record of one driven run.
#[derive(Debug)]
pub struct Driven<O> {
    /// The run's output.
    pub output: O,
    /// The variant of every checkpoint, in order.
    pub states: Vec<&'static str>,
    /// The commands the run issued, in order.
    pub commands: Vec<Command>,
}

/// Runs `W` from `input` to completion, executing steps inline and answering waits from
/// `script`.
///
/// # Panics
/// If the workflow rejects an event, waits with an empty script, or a state does not survive
/// a JSON round trip.
pub fn drive<W: Workflow>(_w: W, input: W::Input, script: Vec<Input>) -> Driven<W::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut script: VecDeque<Input> = script.into();
    let mut state = W::start(input);
    let mut event = Event::Start;
    let mut states = Vec::new();
    let mut commands = Vec::new();
    let steps = W::steps();
    for seq in 1.. {
        let mut ctx = WorkflowContext::new("driven", 0, seq);
        match W::advance(state, event, &mut ctx) {
            Transition::Complete(output) => {
                return Driven {
                    output,
                    states,
                    commands,
                };
            }
            Transition::Reject(m) => panic!("event rejected: {m}"),
            Transition::Suspend(next, cmd) => {
                states.push(W::variant_name(&next));
                let json = serde_json::to_string(&next).expect("state encodes");
                state = serde_json::from_str(&json).expect("state decodes");
                event = match &cmd {
                    Command::Step { name, input, .. } => {
                        let entry = steps.iter().find(|s| s.name == name).expect("a known step");
                        let ctx = StepContext::new("driven", name.clone(), seq, 1);
                        Event::StepDone(rt.block_on((entry.call)(ctx, input.clone())))
                    }
                    Command::Wait { .. } => match script.pop_front().expect("a scripted signal") {
                        Input::Signal(v) => Event::Signal(v),
                        Input::Timeout => Event::TimedOut,
                    },
                    Command::Sleep { .. } => Event::Woke,
                    other => panic!("a command this driver does not know: {other:?}"),
                };
                commands.push(cmd);
            }
        }
    }
    unreachable!("the loop above only ends by returning")
}
