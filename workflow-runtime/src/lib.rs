//! Durable workflows for Rust, compiled to explicit state machines and checkpointed into an
//! embedded redb file.
#![warn(unreachable_pub)]

extern crate self as workflow_runtime;

mod clock;
mod codec;
mod model;
mod step;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{FNV_OFFSET, fnv1a, mix};
pub use model::{
    Command, Event, Transition, WaitError, Workflow, WorkflowContext, WorkflowError, WorkflowOutput,
};
pub use step::{
    Function, Out, Persist, StepContext, StepEntry, StepError, StepErrorKind, StepFuture,
};
pub use workflow_macros::{function, workflow};

/// Everything a workflow author needs: `use workflow_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Function, ManualClock, StepContext, StepError, WaitError, Workflow, WorkflowContext,
        WorkflowError, function, workflow,
    };
    pub use serde_json::json;
    pub use std::time::Duration;
}
