use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let fut = async { ctx.sleep(Duration::from_secs(1)).await };
    drop(fut);
    Ok(1)
}

fn main() {}
