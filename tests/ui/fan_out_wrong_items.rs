use workflow_runtime::prelude::*;

#[function]
async fn load(id: u64) -> Result<u64, StepError> {
    Ok(id)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, ids: Vec<String>) -> Result<usize, WorkflowError> {
    let all = ctx.fan_out(load, ids, 4).await?;
    Ok(all.len())
}

fn main() {}
