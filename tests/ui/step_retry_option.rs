use workflow_runtime::prelude::*;

#[function]
async fn fetch(id: u64) -> Result<u64, StepError> {
    Ok(id)
}

#[workflow]
async fn wrong_type(ctx: &mut WorkflowContext, id: u64) -> Result<u64, WorkflowError> {
    let n = ctx.step(fetch, id).retry(5).await?;
    Ok(n)
}

#[workflow]
async fn no_policy(ctx: &mut WorkflowContext, id: u64) -> Result<u64, WorkflowError> {
    let n = ctx.step(fetch, id).retry().await?;
    Ok(n)
}

#[workflow]
async fn other_option(ctx: &mut WorkflowContext, id: u64) -> Result<u64, WorkflowError> {
    let n = ctx.step(fetch, id).timeout(Duration::from_secs(1)).await?;
    Ok(n)
}

#[workflow]
async fn retry_a_sleep(ctx: &mut WorkflowContext, id: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).retry(RetryPolicy::DEFAULT).await;
    Ok(id)
}

const NEVER: RetryPolicy = RetryPolicy::DEFAULT.max_attempts(0);

#[workflow]
async fn invalid_const(ctx: &mut WorkflowContext, id: u64) -> Result<u64, WorkflowError> {
    let n = ctx.step(fetch, id).retry(NEVER).await?;
    Ok(n)
}

fn main() {}
