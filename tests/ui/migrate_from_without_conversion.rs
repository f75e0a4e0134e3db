use workflow_runtime::prelude::*;

#[workflow(name = "refund", version = 1)]
async fn refund_v1(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(1)
}

#[workflow(name = "refund", version = 2, migrate_from = refund_v1)]
async fn refund_v2(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(2)
}

fn main() {}
