use workflow_runtime::prelude::*;

#[workflow]
async fn review(ctx: &mut WorkflowContext, line: String) -> Result<bool, WorkflowError> {
    Ok(line.is_empty())
}

#[workflow]
async fn closure_child(ctx: &mut WorkflowContext) -> Result<bool, WorkflowError> {
    Ok(ctx.child(|l: String| l, "a".to_owned()).await?)
}

#[workflow]
async fn retried_child(ctx: &mut WorkflowContext) -> Result<bool, WorkflowError> {
    let policy = RetryPolicy::DEFAULT;
    Ok(ctx.child(review, "a".to_owned()).retry(policy).await?)
}

#[workflow]
async fn no_input(ctx: &mut WorkflowContext) -> Result<String, WorkflowError> {
    Ok(ctx.start_child(review).await)
}

fn main() {}
