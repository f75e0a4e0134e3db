//! The steps and the `refund_review` workflow.

use workflow_runtime::prelude::*;

use super::domain::{
    Customer, Decision, DecisionStatus, Recommendation, RefundOutcome, RefundReceipt, Ticket,
};
use super::services::{Services, find_customer, find_ticket};

/// Loads a ticket from the helpdesk.
#[function]
pub async fn load_ticket(ctx: StepContext, ticket_id: String) -> Result<Ticket, StepError> {
    ctx.data::<Services>()?.steps.record(&ctx)?;
    find_ticket(&ticket_id)
        .ok_or_else(|| StepError::permanent(format!("ticket `{ticket_id}` not found")))
}

/// Loads the customer behind a ticket.
#[function]
pub async fn load_customer(ctx: StepContext, customer_id: String) -> Result<Customer, StepError> {
    ctx.data::<Services>()?.steps.record(&ctx)?;
    find_customer(&customer_id)
        .ok_or_else(|| StepError::permanent(format!("customer `{customer_id}` not found")))
}

/// Loads the customer behind a ticket from the ticket's id, so that it can be loaded at the
/// same time as the ticket.
#[function]
pub async fn load_customer_for_ticket(
    ctx: StepContext,
    ticket_id: String,
) -> Result<Customer, StepError> {
    ctx.data::<Services>()?.steps.record(&ctx)?;
    let ticket = find_ticket(&ticket_id)
        .ok_or_else(|| StepError::permanent(format!("ticket `{ticket_id}` not found")))?;
    find_customer(&ticket.customer_id)
        .ok_or_else(|| StepError::permanent(format!("customer `{}` not found", ticket.customer_id)))
}

/// Asks the agent for a refund recommendation, with the reviewer's notes on a redraft.
///
/// Language models rate-limit and stall: up to 4 attempts, 2 s apart and growing, spread by
/// jitter, each cut off after 2 minutes. An unparseable reply is permanent and reaches the
/// workflow at once.
#[function(max_attempts = 4, initial_backoff = "2s", jitter = 0.2, timeout = "2m")]
pub async fn draft_refund_recommendation(
    ctx: StepContext,
    ticket: Ticket,
    customer: Customer,
    reviewer_notes: Option<String>,
) -> Result<Recommendation, StepError> {
    let services = ctx.data::<Services>()?;
    services.steps.record(&ctx)?;
    services
        .agent
        .draft(&ticket, &customer, reviewer_notes.as_deref())
        .await
}

/// Pays the refund. The key is derived from the ticket (the business key) and the amount, not
/// from the run: every retry, restart or duplicate approval reaches the provider with the same
/// key, and so does a second review of the same ticket, so even that cannot pay the same refund
/// twice. A retry after a lost response (up to 5 attempts, each cut off after 30 s) returns the
/// original receipt.
#[function(
    max_attempts = 5,
    initial_backoff = "1s",
    max_backoff = "1m",
    timeout = "30s"
)]
pub async fn issue_refund_once(
    ctx: StepContext,
    ticket_id: String,
    amount_cents: u64,
) -> Result<RefundReceipt, StepError> {
    let services = ctx.data::<Services>()?;
    services.steps.record(&ctx)?;
    let key = refund_key(&ticket_id, amount_cents);
    let receipt = services.payments.refund(&key, &ticket_id, amount_cents)?;
    super::fault::crash_point("after_payment");
    Ok(receipt)
}

/// The payment provider's idempotency key for refunding `amount_cents` on `ticket_id`.
pub fn refund_key(ticket_id: &str, amount_cents: u64) -> String {
    format!("refund:{ticket_id}:{amount_cents}")
}

/// Reviews a refund request: draft, wait up to 7 days for a human decision, pay once on
/// approval, redraft on request-changes, stop on rejection or timeout.
///
/// Version 2 loads the ticket and its customer in parallel.
#[workflow(name = "refund_review", version = 2)]
pub async fn refund_review(
    ctx: &mut WorkflowContext,
    ticket_id: String,
) -> Result<RefundOutcome, WorkflowError> {
    let (ticket, customer) = ctx
        .join(
            (load_ticket, ticket_id.clone()),
            (load_customer_for_ticket, ticket_id),
        )
        .await?;
    let mut notes: Option<String> = None;
    loop {
        let rec = ctx
            .step(
                draft_refund_recommendation,
                (ticket.clone(), customer.clone(), notes.clone()),
            )
            .await?;
        let recommended: u64 = rec.amount_cents;
        let decision: Decision = match ctx
            .wait_for_signal::<Decision>(
                "refund_decision",
                Duration::from_secs(7 * 86_400),
                json!({
                    "ticket_id": ticket.id,
                    // The customer's id, not the name: metadata is traced and listed as is.
                    "customer_id": customer.id,
                    "amount_cents": rec.amount_cents,
                    "order_total_cents": ticket.order_total_cents,
                    "rule": rec.rule,
                    "rationale": rec.rationale,
                }),
            )
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok(RefundOutcome::TimedOut),
            Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
        };
        match decision.status {
            DecisionStatus::Approved => {
                let amount = decision
                    .approved_amount_cents
                    .unwrap_or(recommended)
                    .min(ticket.order_total_cents);
                let receipt = ctx
                    .step(issue_refund_once, (ticket.id.clone(), amount))
                    .await?;
                return Ok(RefundOutcome::Refunded {
                    receipt_id: receipt.receipt_id,
                    amount_cents: receipt.amount_cents,
                    reviewer_id: decision.reviewer_id,
                });
            }
            DecisionStatus::Rejected => {
                return Ok(RefundOutcome::NotApproved {
                    reason: decision.reason,
                    reviewer_id: decision.reviewer_id,
                });
            }
            DecisionStatus::RequestChanges => notes = Some(decision.reason),
        }
    }
}

/// Version 1 of [`refund_review`], which loaded the ticket, then its customer. Kept registered
/// so that reviews started before version 2 finish on the code they were checkpointed with.
#[workflow(name = "refund_review", version = 1)]
pub async fn refund_review_v1(
    ctx: &mut WorkflowContext,
    ticket_id: String,
) -> Result<RefundOutcome, WorkflowError> {
    let ticket = ctx.step(load_ticket, ticket_id).await?;
    let customer = ctx.step(load_customer, ticket.customer_id.clone()).await?;
    let mut notes: Option<String> = None;
    loop {
        let rec = ctx
            .step(
                draft_refund_recommendation,
                (ticket.clone(), customer.clone(), notes.clone()),
            )
            .await?;
        let recommended: u64 = rec.amount_cents;
        let decision: Decision = match ctx
            .wait_for_signal::<Decision>(
                "refund_decision",
                Duration::from_secs(7 * 86_400),
                json!({
                    "ticket_id": ticket.id,
                    // The customer's id, not the name: metadata is traced and listed as is.
                    "customer_id": customer.id,
                    "amount_cents": rec.amount_cents,
                    "order_total_cents": ticket.order_total_cents,
                    "rule": rec.rule,
                    "rationale": rec.rationale,
                }),
            )
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok(RefundOutcome::TimedOut),
            Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
        };
        match decision.status {
            DecisionStatus::Approved => {
                let amount = decision
                    .approved_amount_cents
                    .unwrap_or(recommended)
                    .min(ticket.order_total_cents);
                let receipt = ctx
                    .step(issue_refund_once, (ticket.id.clone(), amount))
                    .await?;
                return Ok(RefundOutcome::Refunded {
                    receipt_id: receipt.receipt_id,
                    amount_cents: receipt.amount_cents,
                    reviewer_id: decision.reviewer_id,
                });
            }
            DecisionStatus::Rejected => {
                return Ok(RefundOutcome::NotApproved {
                    reason: decision.reason,
                    reviewer_id: decision.reviewer_id,
                });
            }
            DecisionStatus::RequestChanges => notes = Some(decision.reason),
        }
    }
}
