use workflow_runtime::prelude::*;

#[function]
async fn load(id: u64) -> Result<u64, StepError> {
    Ok(id)
}

#[workflow]
async fn one_pair(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let (a,) = ctx.join((load, 1)).await?;
    Ok(a)
}

#[workflow]
async fn not_a_pair(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let (a, b) = ctx.join((load, 1), load).await?;
    Ok(a + b)
}

#[workflow]
async fn closure_step(ctx: &mut WorkflowContext, ids: Vec<u64>) -> Result<usize, WorkflowError> {
    let all = ctx.fan_out(|id: u64| id, ids, 4).await?;
    Ok(all.len())
}

#[workflow]
async fn no_bound(ctx: &mut WorkflowContext, ids: Vec<u64>) -> Result<usize, WorkflowError> {
    let all = ctx.fan_out(load, ids).await?;
    Ok(all.len())
}

fn main() {}
