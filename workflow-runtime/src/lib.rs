//! Durable workflows for Rust, compiled to explicit state machines and checkpointed into an
//! embedded redb file.
#![warn(unreachable_pub)]

extern crate self as workflow_runtime;

mod clock;
mod codec;
mod committer;
mod engine;
mod error;
mod model;
mod step;
mod store;
pub mod testing;
mod timers;
mod trace;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{FNV_OFFSET, fnv1a, mix};
pub use engine::{Engine, EngineBuilder, PendingWait, RunHandle, RunStatus, Signal, SignalOutcome};
pub use error::EngineError;
pub use model::{
    Command, Event, Transition, WaitError, Workflow, WorkflowContext, WorkflowError, WorkflowOutput,
};
pub use step::{
    Function, Out, Persist, StepContext, StepEntry, StepError, StepErrorKind, StepFuture,
};
pub use trace::{TraceEvent, TraceKind};
pub use workflow_macros::{function, workflow};

/// Everything a workflow author needs: `use workflow_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Engine, EngineBuilder, EngineError, Function, ManualClock, PendingWait, RunHandle,
        RunStatus, Signal, SignalOutcome, StepContext, StepError, TraceEvent, WaitError, Workflow,
        WorkflowContext, WorkflowError, function, workflow,
    };
    pub use serde_json::json;
    pub use std::time::Duration;
}
