use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = ctx.step(one, ()).await?;
    let n: u64 = n + 1;
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(n)
}

fn main() {}
