use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let found: u64 = loop {
        let n = ctx.step(one, ()).await?;
        if n > 0 {
            break;
        }
    };
    Ok(found)
}

fn main() {}
