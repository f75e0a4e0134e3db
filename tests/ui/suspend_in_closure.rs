use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let g = || async { ctx.step(one, ()).await };
    let _ = g;
    Ok(1)
}

fn main() {}
