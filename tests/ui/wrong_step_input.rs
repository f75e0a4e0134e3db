use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[function]
async fn double(n: u64) -> Result<u64, StepError> {
    Ok(n * 2)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = ctx.step(double, "three".to_string()).await?;
    Ok(n)
}

fn main() {}
