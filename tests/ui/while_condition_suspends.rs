use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

// A `while` condition may suspend as the first thing it evaluates; here the step runs after
// `total` is read, so the workflow could not stop at it.
#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let mut total: u64 = 0;
    while total < ctx.step(one, ()).await? {
        total += 1;
    }
    Ok(total)
}

fn main() {}
