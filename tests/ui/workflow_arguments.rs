use workflow_runtime::prelude::*;

#[workflow(retries = 3)]
async fn unknown(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[workflow(version = 0)]
async fn version_zero(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[workflow(name = " ")]
async fn empty_name(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[workflow(name = "a", name = "b")]
async fn name_twice(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[workflow(crate = ::workflow_runtime, crate = ::workflow_runtime)]
async fn crate_twice(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[workflow(crate = "not a path")]
async fn crate_not_a_path(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

fn main() {}
