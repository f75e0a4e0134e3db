use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

// A `let` may take its value from `if`/`match` branches that suspend, but here the branch is
// an operand: `base` is read before the step runs, so the workflow could not stop there.
#[workflow]
async fn wf(ctx: &mut WorkflowContext, big: bool) -> Result<u64, WorkflowError> {
    let base: u64 = 2;
    let total = base
        + if big {
            ctx.step(one, ()).await?
        } else {
            0
        };
    Ok(total)
}

fn main() {}
