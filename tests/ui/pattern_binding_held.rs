use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, maybe: Option<u64>) -> Result<u64, WorkflowError> {
    match maybe {
        Some(v) => {
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(v)
        }
        None => Ok(0),
    }
}

fn main() {}
