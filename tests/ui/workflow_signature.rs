use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

#[workflow]
fn not_async(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    Ok(1)
}

#[workflow]
async fn no_context(id: String) -> Result<u64, WorkflowError> {
    Ok(id.len() as u64)
}

#[workflow]
async fn generic<T>(ctx: &mut WorkflowContext, t: T) -> Result<u64, WorkflowError> {
    Ok(1)
}

#[workflow]
async fn borrowed(ctx: &mut WorkflowContext, id: &str) -> u64 {
    1
}

fn main() {}
