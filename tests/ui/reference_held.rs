use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, name: String) -> Result<u64, WorkflowError> {
    let first: &str = &name[..1];
    let n = ctx.step(one, ()).await?;
    Ok(n + first.len() as u64)
}

fn main() {}
