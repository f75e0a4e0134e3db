use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let d = ctx.wait_for_signal("approval", Duration::from_secs(60), ()).await?;
    Ok(d)
}

fn main() {}
