use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let total = u64::max(2, ctx.step(one, ()).await?);
    Ok(total)
}

fn main() {}
