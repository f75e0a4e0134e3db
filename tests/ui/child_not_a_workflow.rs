use workflow_runtime::prelude::*;

#[function]
async fn price(sku: String) -> Result<u64, StepError> {
    Ok(sku.len() as u64)
}

// A step is not a workflow: it cannot be started as a child run.
#[workflow]
async fn order(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    let cents = ctx.child(price, sku).await?;
    Ok(cents)
}

fn main() {}
