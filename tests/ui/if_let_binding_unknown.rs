use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    if let Some(name) = std::env::args().nth(1) {
        ctx.step(one, ()).await?;
        return Ok(name.len() as u64);
    }
    Ok(0)
}

fn main() {}
