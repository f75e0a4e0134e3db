//! Layout fingerprints see what is stored (variants, held locals and their types, step
//! signatures, input and output) and ignore code between suspension points.

use workflow_runtime::Workflow;
use workflow_runtime::prelude::*;

#[function]
async fn fetch(id: String) -> Result<u64, StepError> {
    Ok(id.len() as u64)
}

#[function]
async fn fetch_text(id: String) -> Result<String, StepError> {
    Ok(id)
}

#[workflow(name = "pricing")]
async fn pricing_v1(ctx: &mut WorkflowContext, id: String) -> Result<u64, WorkflowError> {
    let base = ctx.step(fetch, id.clone()).await?;
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(base * 2)
}

/// The same stored layout with a different computation after the sleep (a bug fix).
#[workflow(name = "pricing")]
async fn pricing_bugfix(ctx: &mut WorkflowContext, id: String) -> Result<u64, WorkflowError> {
    let base = ctx.step(fetch, id.clone()).await?;
    ctx.sleep(Duration::from_secs(60)).await;
    let doubled = base.saturating_mul(2);
    Ok(doubled)
}

/// Holds one more local across the sleep.
#[workflow(name = "pricing")]
async fn pricing_more_state(ctx: &mut WorkflowContext, id: String) -> Result<u64, WorkflowError> {
    let base = ctx.step(fetch, id.clone()).await?;
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(base * 2 + id.len() as u64)
}

/// Calls a step with another output type.
#[workflow(name = "pricing")]
async fn pricing_other_step(ctx: &mut WorkflowContext, id: String) -> Result<u64, WorkflowError> {
    #[state(Fetch)]
    let base = ctx.step(fetch_text, id.clone()).await?;
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(base.len() as u64 * 2)
}

#[workflow(name = "pricing", version = 2)]
async fn pricing_v2(ctx: &mut WorkflowContext, id: String) -> Result<u64, WorkflowError> {
    let base = ctx.step(fetch, id.clone()).await?;
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(base * 2)
}

fn layout<W: Workflow>(_: W) -> u64 {
    W::LAYOUT_HASH
}

fn body<W: Workflow>(_: W) -> u64 {
    W::BODY_HASH
}

#[test]
fn a_body_only_change_keeps_the_layout() {
    assert_eq!(layout(pricing_v1), layout(pricing_bugfix));
    assert_ne!(body(pricing_v1), body(pricing_bugfix));
}

#[test]
fn stored_changes_change_the_layout() {
    assert_ne!(layout(pricing_v1), layout(pricing_more_state));
    assert_ne!(layout(pricing_v1), layout(pricing_other_step));
    assert_ne!(layout(pricing_v1), layout(pricing_v2));
}

#[test]
fn names_and_versions_come_from_the_attribute() {
    fn meta<W: Workflow>(_: W) -> (&'static str, u32) {
        (W::NAME, W::VERSION)
    }
    assert_eq!(meta(pricing_v1), ("pricing", 1));
    assert_eq!(meta(pricing_v2), ("pricing", 2));
}
