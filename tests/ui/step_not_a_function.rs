use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

async fn plain(n: u64) -> Result<u64, StepError> {
    Ok(n)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = ctx.step(plain, 1).await?;
    Ok(n)
}

fn main() {}
