use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

// Three calls that nothing tells apart (no binding, arm, label or wait): each but the first gets
// its own hint. The fourth is named by its binding (`OneA`) and needs nothing.
#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    ctx.step(one, ()).await?;
    ctx.step(one, ()).await?;
    ctx.step(one, ()).await?;
    let a = ctx.step(one, ()).await?;
    Ok(a)
}

fn main() {}
