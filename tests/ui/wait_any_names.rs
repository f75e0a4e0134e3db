use workflow_runtime::prelude::*;

#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Review {
    Approve(u64),
    Reject(String),
}

#[workflow]
async fn computed(ctx: &mut WorkflowContext, names: Vec<String>) -> Result<u64, WorkflowError> {
    let _ = ctx.wait_for_any::<Review>(names, Duration::from_secs(60), ()).await?;
    Ok(1)
}

#[workflow]
async fn single(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let _ = ctx.wait_for_any::<Review>(["approve"], Duration::from_secs(60), ()).await?;
    Ok(1)
}

#[workflow]
async fn twice(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let _ = ctx
        .wait_for_any::<Review>(["approve", "reject", "approve"], Duration::from_secs(60), ())
        .await?;
    Ok(1)
}

fn main() {}
