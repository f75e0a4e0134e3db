use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let later: u64;
    ctx.sleep(Duration::from_secs(1)).await;
    later = 3;
    Ok(later)
}

fn main() {}
