use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = ctx.step(one, ()).await?;
    tokio::time::sleep(Duration::from_millis(n)).await;
    Ok(n)
}

fn main() {}
