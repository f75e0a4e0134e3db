use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

// Shadowing in the same block is fine; here the outer `n` is still needed after the `if`, and
// the state stores one `n`.
#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = ctx.step(one, ()).await?;
    if n > 0 {
        let n: u64 = 5;
        ctx.sleep(Duration::from_secs(1)).await;
        assert!(n > 0);
    }
    #[state(SleepAgain)]
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(n)
}

fn main() {}
