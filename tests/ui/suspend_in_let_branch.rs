use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[function]
async fn undo() -> Result<(), StepError> {
    Ok(())
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = match ctx.step(one, ()).await {
        Ok(n) => n,
        Err(e) => {
            ctx.step(undo, ()).await?;
            return Err(e.into());
        }
    };
    Ok(n)
}

fn main() {}
