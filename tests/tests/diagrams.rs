//! The state diagram `#[workflow]` derives from the body, pinned for a refund review: draft,
//! wait for a decision, pay on approval, redraft on request-changes, end on rejection or
//! timeout.

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decision {
    approved: bool,
    changes: Option<String>,
}

#[function]
async fn load_ticket(id: String) -> Result<u64, StepError> {
    Ok(id.len() as u64)
}

#[function]
async fn draft(total: u64, notes: Option<String>) -> Result<u64, StepError> {
    Ok(total / if notes.is_some() { 2 } else { 1 })
}

#[function]
async fn issue_refund_once(amount: u64) -> Result<String, StepError> {
    Ok(format!("paid {amount}"))
}

#[workflow]
async fn refund_review(ctx: &mut WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let total = ctx.step(load_ticket, id).await?;
    let mut notes: Option<String> = None;
    loop {
        let amount = ctx.step(draft, (total, notes.clone())).await?;
        let decision = match ctx
            .wait_for_signal::<Decision>("refund_decision", Duration::from_secs(604_800), ())
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok("timed out".to_owned()),
            Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
        };
        if decision.approved {
            let receipt = ctx.step(issue_refund_once, amount).await?;
            return Ok(receipt);
        }
        match decision.changes {
            Some(c) => notes = Some(c),
            None => return Ok("rejected".to_owned()),
        }
    }
}

#[workflow]
async fn nap(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[test]
fn the_refund_review_diagram_is_pinned() {
    assert_eq!(refund_review::MERMAID, PINNED);
    assert_eq!(
        <refund_review::Def as Workflow>::MERMAID,
        refund_review::MERMAID
    );
}

#[test]
fn a_body_without_branches_is_a_chain() {
    let text = nap::MERMAID;
    assert!(text.starts_with("stateDiagram-v2\n"), "{text}");
    assert!(text.contains("[*] --> Start"), "{text}");
    assert!(text.contains(": sleep"), "{text}");
    assert_eq!(text.matches(" --> [*]").count(), 1, "{text}");
}

#[tokio::test]
async fn the_engine_serves_the_diagram_of_a_registered_workflow() {
    let engine = Engine::builder()
        .register(refund_review)
        .open_in_memory()
        .await
        .unwrap();
    assert_eq!(engine.diagram("refund_review"), Some(PINNED));
    assert_eq!(engine.diagram("nope"), None);
    engine
        .start(refund_review, "r-1", "T-1".into())
        .await
        .unwrap();
    workflow_runtime::testing::settle(&engine).await;
    let state = engine.state_name("r-1").unwrap();
    assert!(
        PINNED.contains(&format!("    {state}: wait refund_decision")),
        "{state} is not the wait in\n{PINNED}"
    );
    engine.shutdown().await;
}

const PINNED: &str = "\
stateDiagram-v2
    Start: start
    LoadTicket: step load_ticket
    Draft: step draft
    AwaitingRefundDecision: wait refund_decision
    IssueRefundOnce: step issue_refund_once
    [*] --> Start
    Start --> LoadTicket
    LoadTicket --> Draft
    LoadTicket --> [*]
    Draft --> AwaitingRefundDecision
    Draft --> [*]
    AwaitingRefundDecision --> Draft
    AwaitingRefundDecision --> IssueRefundOnce
    AwaitingRefundDecision --> [*]
    IssueRefundOnce --> [*]
";
