//! `crate = path`: a crate that reaches the runtime through its own re-export names that path
//! in the macros' arguments, and the expansions use it. (The expansion snapshot test in
//! `workflow-macros` pins that the rendered paths are the given ones.)

use integration_tests::{Input, drive};
use serde_json::json;

/// A platform crate's facade, as a user would build one.
mod platform {
    pub use workflow_runtime as durable;
}

use platform::durable::prelude::*;

#[function(crate = crate::platform::durable)]
async fn double(x: u32) -> Result<u32, StepError> {
    Ok(x * 2)
}

#[function(crate = "crate::platform::durable", max_attempts = 2)]
async fn describe(total: u32, note: String) -> Result<String, StepError> {
    Ok(format!("{note}: {total}"))
}

#[workflow(crate = crate::platform::durable, name = "reexported", version = 2)]
async fn reexported(ctx: &mut WorkflowContext, x: u32) -> Result<String, WorkflowError> {
    let mut total = 0u32;
    for i in 0..x {
        let d = ctx.step(double, i).await?;
        total += d;
    }
    let note: String = ctx
        .wait_for_signal::<String>("note", std::time::Duration::from_secs(60), json!({}))
        .await
        .unwrap_or_else(|_| "none".to_owned());
    ctx.sleep(std::time::Duration::from_secs(1)).await;
    let text = ctx.step(describe, (total, note)).await?;
    Ok(text)
}

#[test]
fn a_workflow_written_against_a_reexport_runs() {
    let run = drive(reexported, 3, vec![Input::Signal(json!("sum"))]);
    // 0*2 + 1*2 + 2*2
    assert_eq!(run.output, Ok("sum: 6".to_owned()));
    assert!(run.states.contains(&"AwaitingNote"));
    assert!(run.states.contains(&"Sleeping"));
}

#[test]
fn the_reexported_workflow_keeps_its_arguments() {
    use platform::durable::Workflow;
    assert_eq!(<reexported::Def as Workflow>::NAME, "reexported");
    assert_eq!(<reexported::Def as Workflow>::VERSION, 2);
    let run = drive(reexported, 0, vec![Input::Timeout]);
    assert_eq!(run.output, Ok("none: 0".to_owned()));
}
