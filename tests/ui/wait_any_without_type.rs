use workflow_runtime::prelude::*;

#[workflow]
async fn wf(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let d = ctx
        .wait_for_any(["approve", "reject"], Duration::from_secs(60), ())
        .await?;
    Ok(d)
}

fn main() {}
