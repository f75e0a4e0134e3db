use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let a = ctx.step(one, ()).await?;
    let b = ctx.step(one, ()).await?;
    Ok(a + b)
}

fn main() {}
