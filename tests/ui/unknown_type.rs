use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let base = std::env::var("X").map(|v| v.len() as u64).unwrap_or(0);
    let n = ctx.step(one, ()).await?;
    Ok(base + n)
}

fn main() {}

// Using the broken workflow elsewhere adds no errors of its own.
#[allow(dead_code)]
fn uses_it() -> impl Workflow<Input = ()> {
    wf
}
