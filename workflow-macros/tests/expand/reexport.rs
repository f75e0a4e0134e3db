//! A step and a workflow that reach the runtime through a re-export (`crate = path`), for the
//! expansion snapshot (`reexport.expanded.rs`): every runtime path in it is under
//! `crate::platform::durable`. The integration test `tests/tests/reexport.rs` runs the same
//! shape.

#[function(crate = crate::platform::durable, max_attempts = 2)]
async fn double(x: u32) -> Result<u32, StepError> {
    Ok(x * 2)
}

#[workflow(crate = crate::platform::durable)]
async fn reexported(ctx: &mut WorkflowContext, x: u32) -> Result<u32, WorkflowError> {
    let d = ctx.step(double, x).await?;
    ctx.sleep(std::time::Duration::from_secs(1)).await;
    Ok(d)
}
