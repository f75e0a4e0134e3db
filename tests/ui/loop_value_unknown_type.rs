use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let found = loop {
        let n = ctx.step(one, ()).await?;
        if n > 0 {
            break n + 1;
        }
    };
    Ok(found)
}

fn main() {}
