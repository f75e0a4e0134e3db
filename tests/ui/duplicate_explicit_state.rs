use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[function]
async fn start() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    #[state(Charge)]
    let a = ctx.step(one, ()).await?;
    #[state(Charge)]
    let b = ctx.step(one, ()).await?;
    // A derived name may not take the run's first state's name either.
    ctx.step(start, ()).await?;
    Ok(a + b)
}

fn main() {}
