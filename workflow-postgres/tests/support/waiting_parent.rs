//! A parent awaiting a child that never ends, for the tests of claims that must not starve
//! behind such parents (`fair_claims.rs`, `fair_claims_workers.rs`).

use std::time::Duration;

use workflow_runtime::prelude::*;

/// A child that waits for a signal nobody sends.
#[workflow]
pub async fn idle(ctx: &mut WorkflowContext, n: u64) -> Result<bool, WorkflowError> {
    let meta = serde_json::json!({ "n": n });
    Ok(ctx
        .wait_for_signal::<bool>("never", Duration::from_secs(3_600), meta)
        .await?)
}

/// Awaits its `idle` child.
#[workflow]
pub async fn parent(ctx: &mut WorkflowContext, n: u64) -> Result<bool, WorkflowError> {
    Ok(ctx.child(idle, n).await?)
}
