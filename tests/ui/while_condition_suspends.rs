use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    while ctx.step(one, ()).await? > 0 {
        break;
    }
    Ok(1)
}

fn main() {}
