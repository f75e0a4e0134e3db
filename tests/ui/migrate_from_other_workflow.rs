use workflow_runtime::prelude::*;

#[workflow(name = "invoice", version = 1)]
async fn invoice_v1(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(1)
}

#[workflow(name = "refund", version = 2, migrate_from = invoice_v1)]
async fn refund_v2(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(2)
}

impl TryFrom<invoice_v1::State> for refund_v2::State {
    type Error = String;
    fn try_from(_: invoice_v1::State) -> Result<Self, String> {
        Err("never".into())
    }
}

fn main() {}
