use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

// The scrutinee's type is not written anywhere the macro can see, so neither is `v`'s.
#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    match std::env::var("X").ok() {
        Some(v) => {
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(v.len() as u64)
        }
        None => Ok(0),
    }
}

fn main() {}
